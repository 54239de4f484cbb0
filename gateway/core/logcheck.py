"""Integrity of a stored Merkle log: records against their ids and leaves, nodes
against their children, and the map of ranges found damaged.

Pure: ``check_span`` is handed the stored rows of one span of the log and returns what
is missing or altered in it; the start-up check, the background scrubber and the
offline ``check-log`` all feed it (``gateway.service.integrity``). ``DamageMap`` is what
the storage adapter consults before it hands out entries or nodes.

What is checked for the span ``[start, end)`` of a log (``start`` even):

- each record is present and its bytes hash to its record id
  (``SHA-256(PAE(payload_type, payload))``);
- the stored leaf hash ``(0, i)`` is present and equals ``SHA-256(0x00 ‖ PAE)``;
- every stored perfect-subtree node whose right end lies in ``(start, end]`` is present
  and equals ``SHA-256(0x01 ‖ left child ‖ right child)`` of its stored children.

Spans that tile ``[0, size)`` therefore check every record and every stored node once.

Attribution: a mismatch is charged to the deepest thing that explains it, so the report
names what was damaged rather than everything that hashes over it. A parent that does
not match a damaged (missing or altered) child is not reported again. A record whose
bytes hash to its id but not to its stored leaf was replaced when the leaf's parent
still agrees with the stored leaf; when the parent disagrees too, the stored leaf was
altered. With no parent yet (the newest leaf of an odd-sized tree) both are reported.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from gateway.core.dsse import pae
from gateway.core.merkle import NodeId, leaf_hash, node_hash

__all__ = [
    "NODES",
    "RECORDS",
    "Damage",
    "DamageKind",
    "DamageMap",
    "EntryRow",
    "check_span",
    "describe",
    "merge",
    "span_node_ranges",
]

DamageKind = Literal["records", "nodes"]
RECORDS: Final[DamageKind] = "records"
NODES: Final[DamageKind] = "nodes"

MISSING_RECORD: Final = "missing from storage"
ALTERED_RECORD: Final = "record bytes do not hash to its record id"
REPLACED_RECORD: Final = "record does not match the leaf hash the tree was built from"
MISSING_NODE: Final = "stored node missing"
ALTERED_LEAF: Final = "stored leaf hash does not match its record"
ALTERED_NODE: Final = "stored node does not match its children"


@dataclass(frozen=True, slots=True)
class Damage:
    """A damaged range of the log.

    ``records``: the entries ``[start, end)`` are missing or altered. ``nodes``: the
    stored nodes of ``level`` covering leaves ``[start, end)`` (both multiples of
    ``2**level``) are missing or altered.
    """

    kind: DamageKind
    start: int
    end: int
    detail: str
    level: int = 0

    def __post_init__(self) -> None:
        if self.kind not in (RECORDS, NODES):
            raise ValueError(f"damage kind {self.kind!r} is not records or nodes")
        if not 0 <= self.start < self.end:
            raise ValueError(f"damaged range [{self.start}, {self.end}) is empty or negative")
        if self.kind == RECORDS and self.level:
            raise ValueError("a records range has no level")
        width = 1 << self.level
        if self.kind == NODES and (self.start % width or self.end % width):
            raise ValueError(f"nodes of level {self.level} cover multiples of {width} leaves")


def describe(d: Damage) -> str:
    """One line for operators: the exact range and what is wrong with it."""
    count = d.end - d.start
    if d.kind == RECORDS:
        what = f"entry {d.start}" if count == 1 else f"entries [{d.start}, {d.end})"
        return f"{what}: {d.detail}"
    first, last = d.start >> d.level, (d.end >> d.level) - 1
    nodes = f"node ({d.level}, {first})" if first == last else f"nodes ({d.level}, {first}..{last})"
    return f"{nodes} over leaves [{d.start}, {d.end}): {d.detail}"


@dataclass(frozen=True, slots=True)
class EntryRow:
    """A stored record as the check needs it (its signatures do not enter the log)."""

    log_index: int
    record_id: str
    payload_type: str
    payload: bytes


def span_node_ranges(start: int, end: int) -> list[tuple[int, int, int]]:
    """``(level, first idx, end idx)`` of the stored nodes ``check_span`` reads: per
    level, the nodes whose right end lies in ``(start, end]`` and their children."""
    ranges: list[tuple[int, int, int]] = []
    level = 0
    while end >> level:
        first, stop = (start >> (level + 1)) << 1, end >> level
        if first < stop:
            ranges.append((level, first, stop))
        level += 1
    return ranges


def check_span(
    start: int,
    end: int,
    entries: Mapping[int, EntryRow],
    nodes: Mapping[NodeId, bytes],
    *,
    known_bad_node: Callable[[NodeId], bool] = lambda _: False,
) -> list[Damage]:
    """What is missing or altered among the records and nodes of ``[start, end)``.

    ``entries`` and ``nodes`` are the stored rows (anything absent is missing);
    ``nodes`` must hold every stored node of ``span_node_ranges(start, end)``.
    ``known_bad_node`` tells about nodes of earlier spans already found damaged, so a
    parent over one of them is not charged again.
    """
    if start % 2 or not 0 <= start <= end:
        raise ValueError(f"a checked span starts at an even index: [{start}, {end})")
    records: dict[int, str] = {}  # index -> what is wrong with the record
    leaves: dict[int, bytes] = {}
    for i in range(start, end):
        row = entries.get(i)
        if row is None:
            records[i] = MISSING_RECORD
            continue
        encoded = pae(row.payload_type, row.payload)
        if hashlib.sha256(encoded).hexdigest() != row.record_id:
            records[i] = ALTERED_RECORD
        else:
            leaves[i] = leaf_hash(encoded)

    def agrees(node: NodeId) -> bool | None:
        """Does a stored inner node equal the hash of its stored children (None: unknown)?"""
        level, idx = node
        h, left, right = (
            nodes.get(node),
            nodes.get((level - 1, 2 * idx)),
            nodes.get((level - 1, 2 * idx + 1)),
        )
        if h is None or left is None or right is None:
            return None
        return node_hash(left, right) == h

    bad: dict[NodeId, str] = {}
    for i in range(start, end):
        stored = nodes.get((0, i))
        if stored is None:
            bad[(0, i)] = MISSING_NODE
            continue
        leaf = leaves.get(i)
        if leaf is None or leaf == stored:
            continue
        parent = agrees((1, i >> 1))
        if parent is True:
            records[i] = REPLACED_RECORD
        else:
            bad[(0, i)] = ALTERED_LEAF
            if parent is None:
                records[i] = REPLACED_RECORD
    for level, first, stop in span_node_ranges(start, end):
        if level == 0:
            continue
        for idx in range(max(first, start >> level), stop):
            node = (level, idx)
            if node not in nodes:
                bad[node] = MISSING_NODE
                continue
            if agrees(node) is not False:
                continue
            children = ((level - 1, 2 * idx), (level - 1, 2 * idx + 1))
            if any(c in bad or known_bad_node(c) for c in children):
                continue  # the damaged child explains it
            bad[node] = ALTERED_NODE
    found = [Damage(RECORDS, i, i + 1, why) for i, why in sorted(records.items())]
    found += [
        Damage(NODES, idx << level, (idx + 1) << level, why, level)
        for (level, idx), why in sorted(bad.items())
    ]
    return merge(found)


def merge(damages: Iterable[Damage]) -> list[Damage]:
    """Adjacent or overlapping ranges of one kind, level and detail as one range."""
    ordered = sorted(damages, key=lambda d: (d.kind, d.level, d.detail, d.start, d.end))
    out: list[Damage] = []
    for d in ordered:
        last = out[-1] if out else None
        if (
            last is not None
            and (last.kind, last.level, last.detail) == (d.kind, d.level, d.detail)
            and d.start <= last.end
        ):
            out[-1] = Damage(d.kind, last.start, max(last.end, d.end), d.detail, d.level)
        else:
            out.append(d)
    return sorted(out, key=lambda d: (d.start, d.kind, d.level))


class _Ranges:
    """Disjoint sorted ``[start, end)`` ranges, each with the damage that covers it."""

    __slots__ = ("_damages", "_ends", "_starts")

    def __init__(self, damages: Sequence[Damage]) -> None:
        ordered = sorted(damages, key=lambda d: d.start)
        self._starts = [d.start for d in ordered]
        self._ends: list[int] = []
        reach = -1
        for d in ordered:  # the furthest end so far: ranges may overlap
            reach = max(reach, d.end)
            self._ends.append(reach)
        self._damages = ordered

    def overlapping(self, start: int, end: int) -> Damage | None:
        """A damage overlapping ``[start, end)``, the earliest-starting such one."""
        i = bisect.bisect_left(self._ends, start + 1)  # first whose reach passes start
        while i < len(self._damages) and self._starts[i] < end:
            d = self._damages[i]
            if d.end > start:
                return d
            i += 1
        return None


class DamageMap:
    """The damaged ranges of a log, replaced as a whole (reads need no lock)."""

    __slots__ = ("_all", "_nodes", "_records")

    def __init__(self, damages: Iterable[Damage] = ()) -> None:
        self._all: tuple[Damage, ...] = ()
        self._records = _Ranges(())
        self._nodes: dict[int, _Ranges] = {}
        self.replace(damages)

    def replace(self, damages: Iterable[Damage]) -> None:
        items = tuple(damages)
        by_level: dict[int, list[Damage]] = {}
        for d in items:
            if d.kind == NODES:
                by_level.setdefault(d.level, []).append(d)
        # Each attribute is swapped in one assignment; a reader sees the old map or the new.
        self._records = _Ranges([d for d in items if d.kind == RECORDS])
        self._nodes = {level: _Ranges(ds) for level, ds in by_level.items()}
        self._all = items

    def add(self, damages: Iterable[Damage]) -> None:
        self.replace((*self._all, *damages))

    def __iter__(self) -> Iterator[Damage]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def entries(self, start: int, end: int) -> Damage | None:
        """A records damage overlapping the entries ``[start, end)``, if any."""
        return self._records.overlapping(start, end) if start < end else None

    def node(self, node: NodeId) -> Damage | None:
        """The nodes damage covering the stored node ``(level, idx)``, if any."""
        level, idx = node
        ranges = self._nodes.get(level)
        return None if ranges is None else ranges.overlapping(idx << level, (idx + 1) << level)

    def is_bad_node(self, node: NodeId) -> bool:
        return self.node(node) is not None
