"""Proof-verifier rejections found by mutation testing (docs/TESTING.md).

A monitor that is handed a proof for an impossible index or size must be told that,
not a later, misleading reason; and an empty tree whose root is not SHA-256("") is a
forged checkpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest

from gateway.core.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeStore,
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_and_inclusion_proof,
    leaf_hash,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from gateway.errors import LogIntegrityError, RecordError

LEAF = hashlib.sha256(b"leaf").digest()
ROOT = hashlib.sha256(b"root").digest()


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [
        (-1, 4, "invalid index -1 or size 4"),
        (True, 4, "invalid index True or size 4"),
        (0, -1, "invalid index 0 or size -1"),
        (0, 0, "leaf index 0 is not below tree size 0"),
    ],
)
def test_an_impossible_inclusion_position_is_named(index: int, size: int, message: str) -> None:
    with pytest.raises(LogIntegrityError) as caught:
        verify_inclusion(index, size, LEAF, [], ROOT)
    assert str(caught.value) == message


@pytest.mark.parametrize(("m", "n"), [(-1, 4), (4, -1), (-2, -1)])
def test_negative_tree_sizes_are_named(m: int, n: int) -> None:
    with pytest.raises(LogIntegrityError) as caught:
        verify_consistency(m, n, ROOT, ROOT, [])
    assert str(caught.value) == f"invalid tree sizes {m} and {n}"


def test_a_forged_empty_tree_root_is_refused_as_such() -> None:
    with pytest.raises(LogIntegrityError) as caught:
        verify_consistency(0, 3, ROOT, ROOT, [])
    assert str(caught.value) == "root hash of the empty tree is not SHA-256 of nothing"
    verify_consistency(0, 3, EMPTY_ROOT, ROOT, [])


def test_a_short_hash_is_named_by_its_role() -> None:
    """Which of the hashes a monitor was given is malformed: leaf, first or second root."""
    short = b"\x00" * 3
    cases: list[tuple[Callable[[], None], str]] = [
        (lambda: verify_inclusion(0, 1, short, [], ROOT), "leaf hash is 3 bytes, not 32"),
        (lambda: verify_consistency(1, 2, short, ROOT, []), "first root hash is 3 bytes, not 32"),
        (
            lambda: verify_consistency(1, 2, ROOT, short, []),
            "second root hash is 3 bytes, not 32",
        ),
    ]
    for call, message in cases:
        with pytest.raises(LogIntegrityError) as caught:
            call()
        assert str(caught.value) == message


def _store(n: int) -> tuple[CompactRange, MemoryNodeStore, list[bytes]]:
    tree, store = CompactRange(), MemoryNodeStore()
    leaves = [leaf_hash(f"entry {i}".encode()) for i in range(n)]
    store.put_many(tree.extend(leaves))
    return tree, store, leaves


def test_the_audit_read_returns_the_stored_leaf_and_its_path() -> None:
    """GetEntries serves a leaf with its proof from one read: the leaf must be the one at
    ``index`` and the path the one a monitor verifies against the signed root."""
    tree, store, leaves = _store(13)
    for index in range(13):
        leaf, path = leaf_and_inclusion_proof(index, 13, store)
        assert leaf == leaves[index]
        assert path == inclusion_proof(index, 13, store)
        verify_inclusion(index, 13, leaf, path, tree.root())


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [
        (-1, 4, "index must be a non-negative integer, got -1"),
        (True, 4, "index must be a non-negative integer, got True"),
        (0, -1, "size must be a non-negative integer, got -1"),
        (0, True, "size must be a non-negative integer, got True"),
        (4, 4, "leaf index 4 is outside a tree of size 4"),
        (5, 4, "leaf index 5 is outside a tree of size 4"),
    ],
)
def test_a_proof_for_an_impossible_position_is_refused_before_reading(
    index: int, size: int, message: str
) -> None:
    """A client asking for leaf ``size`` (one past the end) or a negative one gets a
    RecordError naming it, not a store error or a proof for another position."""
    _, store, _ = _store(4)
    for generate in (inclusion_proof, leaf_and_inclusion_proof):
        with pytest.raises(RecordError) as caught:
            generate(index, size, store)
        assert str(caught.value) == message


def test_compact_ranges_of_different_sizes_are_not_equal() -> None:
    """Sizes 1 and 2 both have one edge hash: equal hashes with different sizes are two
    different trees (a restored range that lost a leaf must not compare equal)."""
    h = leaf_hash(b"x")
    assert CompactRange(1, [h]) != CompactRange(2, [h])
    assert CompactRange(1, [h]) != CompactRange(1, [leaf_hash(b"y")])
    assert CompactRange(1, [h]) == CompactRange(1, [h])


def test_a_leaf_hash_of_the_wrong_length_is_not_appended() -> None:
    tree = CompactRange()
    with pytest.raises(LogIntegrityError) as caught:
        tree.append(b"x" * 31)
    assert str(caught.value) == "leaf hash is 31 bytes, not 32"
    assert tree.size == 0


def test_a_node_put_one_by_one_is_read_back() -> None:
    store = MemoryNodeStore()
    h = leaf_hash(b"x")
    store.put((0, 0), h)
    assert store.get_nodes([(0, 0)]) == [h]
    assert len(store) == 1


@pytest.mark.parametrize(
    ("m", "n", "message"),
    [
        (-1, 4, "first size must be a non-negative integer, got -1"),
        (1, -1, "second size must be a non-negative integer, got -1"),
        (5, 4, "first size 5 is larger than second size 4"),
    ],
)
def test_a_consistency_proof_between_impossible_sizes_is_refused_by_name(
    m: int, n: int, message: str
) -> None:
    _, store, _ = _store(5)
    with pytest.raises(RecordError) as caught:
        consistency_proof(m, n, store)
    assert str(caught.value) == message


def test_a_malformed_compact_range_is_refused_by_name() -> None:
    """A restored right edge with a missing or truncated hash would give a wrong root for
    every later checkpoint; it is refused where it is built, saying what is wrong."""
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (
            lambda: CompactRange(3, [LEAF]),
            LogIntegrityError,
            "a compact range of size 3 has 2 hashes, got 1",
        ),
        (
            lambda: CompactRange(1, [LEAF[:31]]),
            LogIntegrityError,
            "compact range hash is 31 bytes, not 32",
        ),
        (lambda: CompactRange(-1), RecordError, "size must be a non-negative integer, got -1"),
        (
            lambda: CompactRange.from_reader(-1, MemoryNodeStore()),
            RecordError,
            "size must be a non-negative integer, got -1",
        ),
    ]
    for build, error, message in cases:
        with pytest.raises(error) as caught:
            build()
        assert str(caught.value) == message


class _BadStore:
    """A node store (database) that answers with too few hashes or a truncated one."""

    def __init__(self, hashes: list[bytes]) -> None:
        self.hashes = hashes

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        return self.hashes


def test_a_corrupt_node_store_is_an_integrity_error_naming_the_node() -> None:
    with pytest.raises(LogIntegrityError) as caught:
        root_at(3, _BadStore([LEAF]))
    assert str(caught.value) == "node store returned 1 hashes for 2 ids"
    with pytest.raises(LogIntegrityError) as caught:
        root_at(3, _BadStore([LEAF, LEAF[:31]]))
    assert str(caught.value) == "stored node (0, 2) is 31 bytes, not 32"


def test_a_short_proof_hash_is_named_by_its_position() -> None:
    with pytest.raises(LogIntegrityError) as caught:
        verify_inclusion(0, 4, LEAF, [LEAF, LEAF[:31]], ROOT)
    assert str(caught.value) == "proof hash 1 is 31 bytes, not 32"
    with pytest.raises(LogIntegrityError) as caught:
        verify_consistency(3, 4, ROOT, ROOT, [LEAF, LEAF, LEAF[:31]])
    assert str(caught.value) == "proof hash 2 is 31 bytes, not 32"
