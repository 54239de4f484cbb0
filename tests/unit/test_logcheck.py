"""The pure log check: each kind of damage is found, charged to what was damaged, and
reported as its exact range; the damage map answers overlaps."""

from __future__ import annotations

import hashlib

import pytest

from gateway.core import merkle
from gateway.core.dsse import pae
from gateway.core.logcheck import (
    NODES,
    RECORDS,
    Damage,
    DamageMap,
    EntryRow,
    check_span,
    describe,
    merge,
    span_node_ranges,
)

TYPE = "application/vnd.alliance.listing.v1+protobuf"


def _log(size: int) -> tuple[dict[int, EntryRow], dict[merkle.NodeId, bytes]]:
    entries: dict[int, EntryRow] = {}
    nodes: dict[merkle.NodeId, bytes] = {}
    tree = merkle.CompactRange()
    for i in range(size):
        payload = f"entry {i}".encode()
        encoded = pae(TYPE, payload)
        entries[i] = EntryRow(i, hashlib.sha256(encoded).hexdigest(), TYPE, payload)
        nodes.update(tree.append(merkle.leaf_hash(encoded)))
    return entries, nodes


def _check(
    entries: dict[int, EntryRow], nodes: dict[merkle.NodeId, bytes], size: int, span: int = 8
) -> list[Damage]:
    """The log checked span by span, as the scrubber walks it."""
    found = DamageMap()
    out: list[Damage] = []
    for start in range(0, size, span):
        end = min(size, start + span)
        wanted = {
            (level, idx)
            for level, first, stop in span_node_ranges(start, end)
            for idx in range(first, stop)
        }
        fresh = check_span(
            start,
            end,
            {i: e for i, e in entries.items() if start <= i < end},
            {n: h for n, h in nodes.items() if n in wanted},
            known_bad_node=found.is_bad_node,
        )
        found.add(fresh)
        out += fresh
    return merge(out)


@pytest.mark.parametrize("size", [1, 2, 7, 8, 13, 32, 37])
def test_an_intact_log_has_no_damage(size: int) -> None:
    entries, nodes = _log(size)
    assert _check(entries, nodes, size) == []
    assert _check(entries, nodes, size, span=size + (size % 2)) == []


def test_the_spans_read_every_stored_node_once_as_a_parent_or_leaf() -> None:
    _, nodes = _log(37)
    checked: list[merkle.NodeId] = []
    for start in range(0, 37, 8):
        end = min(37, start + 8)
        for level, _, stop in span_node_ranges(start, end):
            checked += [(level, idx) for idx in range(start >> level, stop)]
    assert sorted(checked) == sorted(nodes)


def test_missing_records_are_one_range() -> None:
    entries, nodes = _log(20)
    for i in range(15, 20):
        del entries[i]
    assert _check(entries, nodes, 20) == [Damage(RECORDS, 15, 20, "missing from storage")]


def test_an_altered_record_is_charged_to_the_record() -> None:
    entries, nodes = _log(20)
    e = entries[9]
    entries[9] = EntryRow(9, e.record_id, e.payload_type, e.payload + b"!")
    (damage,) = _check(entries, nodes, 20)
    assert damage == Damage(RECORDS, 9, 10, "record bytes do not hash to its record id")
    assert describe(damage) == "entry 9: record bytes do not hash to its record id"


def test_a_replaced_record_with_a_matching_id_is_charged_to_the_record() -> None:
    entries, nodes = _log(20)
    payload = b"another history"
    entries[6] = EntryRow(6, hashlib.sha256(pae(TYPE, payload)).hexdigest(), TYPE, payload)
    assert _check(entries, nodes, 20) == [
        Damage(RECORDS, 6, 7, "record does not match the leaf hash the tree was built from")
    ]


def test_an_altered_leaf_hash_is_charged_to_the_leaf_not_its_parents() -> None:
    entries, nodes = _log(20)
    nodes[(0, 11)] = b"\x42" * 32
    (damage,) = _check(entries, nodes, 20)
    assert damage == Damage(NODES, 11, 12, "stored leaf hash does not match its record", 0)
    assert describe(damage) == (
        "node (0, 11) over leaves [11, 12): stored leaf hash does not match its record"
    )


@pytest.mark.parametrize(("level", "idx"), [(1, 0), (2, 1), (3, 0), (4, 0), (3, 2)])
def test_an_altered_inner_node_is_charged_to_that_node(level: int, idx: int) -> None:
    entries, nodes = _log(37)
    nodes[(level, idx)] = b"\x07" * 32
    assert _check(entries, nodes, 37) == [
        Damage(
            NODES,
            idx << level,
            (idx + 1) << level,
            "stored node does not match its children",
            level,
        )
    ]


def test_missing_nodes_are_reported_and_explain_their_parents() -> None:
    entries, nodes = _log(16)
    del nodes[(0, 4)]
    del nodes[(2, 3)]
    assert _check(entries, nodes, 16) == [
        Damage(NODES, 4, 5, "stored node missing", 0),
        Damage(NODES, 12, 16, "stored node missing", 2),
    ]


def test_the_newest_leaf_of_an_odd_tree_has_no_parent_to_decide_so_both_are_reported() -> None:
    entries, nodes = _log(9)
    nodes[(0, 8)] = b"\x01" * 32
    assert _check(entries, nodes, 9) == [
        Damage(NODES, 8, 9, "stored leaf hash does not match its record", 0),
        Damage(RECORDS, 8, 9, "record does not match the leaf hash the tree was built from"),
    ]


def test_a_span_must_start_at_an_even_index() -> None:
    with pytest.raises(ValueError, match="even"):
        check_span(3, 5, {}, {})


def test_damage_ranges_check_themselves() -> None:
    with pytest.raises(ValueError, match="empty"):
        Damage(RECORDS, 5, 5, "x")
    with pytest.raises(ValueError, match="multiples of 4"):
        Damage(NODES, 2, 6, "x", 2)
    with pytest.raises(ValueError, match="no level"):
        Damage(RECORDS, 0, 4, "x", 2)


def test_the_damage_map_answers_overlaps_of_entries_and_exact_nodes() -> None:
    damage = DamageMap(
        [
            Damage(RECORDS, 10, 20, "a"),
            Damage(RECORDS, 40, 41, "b"),
            Damage(NODES, 8, 16, "c", 3),
            Damage(NODES, 5, 6, "d", 0),
        ]
    )
    assert damage.entries(0, 10) is None
    assert damage.entries(19, 30) is not None and damage.entries(19, 30).detail == "a"  # type: ignore[union-attr]
    assert damage.entries(20, 40) is None
    assert damage.entries(35, 100) is not None
    assert damage.entries(5, 5) is None
    assert damage.node((3, 1)) is not None
    assert damage.node((3, 0)) is None and damage.node((2, 2)) is None
    assert damage.is_bad_node((0, 5)) and not damage.is_bad_node((0, 6))
    damage.replace([])
    assert damage.entries(0, 100) is None and len(damage) == 0


def test_the_damage_map_finds_a_long_range_behind_short_ones() -> None:
    damage = DamageMap(
        [Damage(RECORDS, 0, 1000, "long"), Damage(RECORDS, 5, 6, "x"), Damage(RECORDS, 7, 8, "y")]
    )
    found = damage.entries(500, 501)
    assert found is not None and found.detail == "long"
