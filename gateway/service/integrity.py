"""Checking the stored log: the start-up check, and the whole-log check of ``check-log``.

Both walk spans of the log through ``gateway.core.logcheck.check_span`` (records against
their ids and leaves, nodes against their children) over rows a ``LogRows`` store hands
in; the scrubber (``gateway.service.scrubber``) walks the same spans slowly, for ever.

The start-up check is bounded: it counts the records (one index scan), then rehashes
only the newest ``entries`` of the log, the part new appends build on. Damage there, a
hole anywhere, or records past the log's size stop the gateway (``LogDamageError``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.core import merkle
from gateway.core.logcheck import Damage, DamageMap, EntryRow, check_span, describe, merge
from gateway.core.merkle import NodeId
from gateway.core.notes import Checkpoint, parse_signed_note
from gateway.errors import LogDamageError
from gateway.storage import StoredCheckpoint
from gateway.storage.integrity import Coverage

__all__ = [
    "SPAN",
    "LogReport",
    "LogRows",
    "check_log",
    "check_range",
    "coverage_damage",
    "signed_root",
    "startup_check",
]

logger = logging.getLogger(__name__)

SPAN = 1024
"""Entries per span: each span is one read of records and one of nodes per level."""

_LISTED = 10  # damaged ranges named in a refusal; check-log lists all of them


class LogRows(Protocol):
    """What the checks read (``gateway.storage.integrity.IntegrityStore``)."""

    def coverage(self) -> Coverage: ...

    def missing_ranges(self, size: int) -> list[tuple[int, int]]: ...

    def span_rows(
        self, start: int, end: int
    ) -> tuple[dict[int, EntryRow], dict[NodeId, bytes]]: ...

    def newest_checkpoint(self) -> StoredCheckpoint | None: ...


def check_range(
    rows: LogRows,
    start: int,
    end: int,
    *,
    known: DamageMap | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Damage]:
    """Every damage among the records of ``[start, end)`` and the nodes ending there."""
    found = DamageMap(known or ())
    damages: list[Damage] = []
    a = start - start % 2
    while a < end:
        b = min(end, (a // SPAN + 1) * SPAN)
        entries, nodes = rows.span_rows(a, b)
        fresh = check_span(a, b, entries, nodes, known_bad_node=found.is_bad_node)
        found.add(fresh)
        damages.extend(fresh)
        if progress is not None:
            progress(b)
        a = b
    return merge(damages)


def coverage_damage(rows: LogRows, coverage: Coverage) -> list[Damage]:
    """Holes below the log's size, and records stored past it."""
    damages = []
    if coverage.count != coverage.size:
        damages += [
            Damage("records", a, b, "missing from storage")
            for a, b in rows.missing_ranges(coverage.size)
        ]
    if coverage.beyond is not None:
        first, last = coverage.beyond
        damages.append(
            Damage("records", first, last + 1, f"stored beyond the log's size ({coverage.size})")
        )
    return damages


def _refuse(what: str, damages: Sequence[Damage]) -> LogDamageError:
    lines = [describe(d) for d in damages[:_LISTED]]
    more = len(damages) - _LISTED
    if more > 0:
        lines.append(f"and {more} more")
    return LogDamageError(f"{what}: " + "; ".join(lines))


def startup_check(rows: LogRows, *, entries: int) -> Coverage:
    """Refuse to start on a log whose records do not cover its signed tree, or whose
    newest ``entries`` do not rehash to their ids, leaves and nodes."""
    coverage = rows.coverage()
    size, newest = coverage.size, coverage.newest_checkpoint
    if newest is not None and newest > size:
        raise LogDamageError(
            f"the log holds {size} entries but checkpoint {newest} was signed: the database "
            "was rolled back or truncated"
        )
    holes = coverage_damage(rows, coverage)
    if holes:
        raise _refuse(
            f"the records do not cover the log's {size} entries"
            + (f" (newest checkpoint {newest})" if newest is not None else ""),
            holes,
        )
    start = max(0, size - entries)
    damages = check_range(rows, start, size) if entries > 0 else []
    if damages:
        raise _refuse(f"the newest entries [{start}, {size}) of the log are damaged", damages)
    logger.info("log check at start: %s entries covered, [%s, %s) rehashed", size, start, size)
    return coverage


@dataclass
class LogReport:
    """What ``check-log`` found over the whole database."""

    size: int
    newest_checkpoint: int | None
    records: int
    damages: list[Damage] = field(default_factory=list)
    # Set when the stored tree does not reproduce the newest signed checkpoint although
    # no node or record was found damaged (a consistently rewritten history), or when
    # that checkpoint is larger than the log.
    checkpoint_problem: str = ""

    @property
    def intact(self) -> bool:
        return not self.damages and not self.checkpoint_problem


def check_log(
    rows: LogRows,
    nodes: merkle.NodeReader,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> LogReport:
    """The whole log: coverage, every span, and the root of the newest checkpoint."""
    coverage = rows.coverage()
    size, newest = coverage.size, coverage.newest_checkpoint
    report = LogReport(size, newest, coverage.count)
    damages = coverage_damage(rows, coverage)
    damages += check_range(
        rows, 0, size, progress=None if progress is None else lambda at: progress(at, size)
    )
    report.damages = merge(damages)
    cp = rows.newest_checkpoint()
    if cp is not None:
        if cp.tree_size > size:
            report.checkpoint_problem = (
                f"checkpoint {cp.tree_size} was signed but the log holds {size} entries"
            )
        elif not report.damages:
            root = merkle.root_at(cp.tree_size, nodes)
            if root != signed_root(cp):
                report.checkpoint_problem = (
                    f"the stored tree does not reproduce the signed checkpoint {cp.tree_size} "
                    "although every record and node agrees with its neighbours: the log was "
                    "rewritten"
                )
    return report


def signed_root(cp: StoredCheckpoint) -> bytes:
    """The root hash as the checkpoint's signed text states it."""
    text, _ = parse_signed_note(cp.note)
    return Checkpoint.parse(text).root_hash
