"""The SQL side of log integrity: raw rows for the checks, where the records stop
covering the log, the damaged ranges, and the scrubber's position.

Reads here are deliberately unguarded (they look at what ``SqlStore`` refuses to hand
out); the findings go to the ``log_damage`` table and to the ``SqlStore``'s own
``DamageMap``, which every guarded read consults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.logcheck import Damage, DamageMap, EntryRow, span_node_ranges
from gateway.core.merkle import NodeId
from gateway.errors import StorageError
from gateway.storage.checkpoints import StoredCheckpoint
from gateway.storage.models import (
    Base,
    CheckpointRow,
    LogStateRow,
    ScrubStateRow,
)
from gateway.storage.store import SqlStore

__all__ = ["Coverage", "IntegrityStore", "ScrubPosition"]

_TABLES = Base.metadata.tables
_RECORDS = _TABLES["records"]
_NODES = _TABLES["log_nodes"]
_DAMAGE = _TABLES["log_damage"]
_SCRUB = _TABLES["scrub_state"]
_SCRUB_FIELDS = ("next_index", "round_end", "rounds_completed")


# Reads of the records past the log's size, while appends keep moving it (``coverage``).
_COVERAGE_ATTEMPTS = 20


@dataclass(frozen=True)
class Coverage:
    """What the records table holds below and beyond the log's size."""

    size: int  # log_state.tree_size
    newest_checkpoint: int | None
    count: int  # records below size
    beyond: tuple[int, int] | None  # (first, last) log index of records at or past size


@dataclass(frozen=True)
class ScrubPosition:
    """Where the scrubber is: ``[next_index, round_end)`` is left of the current round."""

    next_index: int
    round_end: int
    rounds_completed: int
    round_started_at: datetime | None
    last_round_completed_at: datetime | None


class IntegrityStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.engine = store.engine

    @contextmanager
    def _conn(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    # -- coverage ----------------------------------------------------------------------

    def log_size(self) -> int:
        return self.store.log_size()

    def newest_checkpoint(self) -> StoredCheckpoint | None:
        return self.store.latest_checkpoint()

    def coverage(self) -> Coverage:
        """Count the records below the log's size, and find any past it (one scan of the
        log index; about 0.1 s per million entries on SQLite).

        A running gateway may append while this reads (an operator command checks the
        log beside it), and the reads are separate statements, not one snapshot. So the
        newest checkpoint is read first (a checkpoint never exceeds the size it was
        signed at, and the size only grows), and records found past the size count as
        stored beyond it only when the size has not moved since: if it grew, they were
        appended meanwhile, and the count is taken again at the new size."""
        index = _RECORDS.c.log_index
        with self._conn() as conn:
            newest = conn.execute(select(func.max(CheckpointRow.tree_size))).scalar()
            size = self._size(conn)
            for _ in range(_COVERAGE_ATTEMPTS):
                count = conn.execute(select(func.count()).where(index < size)).scalar() or 0
                first, last = conn.execute(
                    select(func.min(index), func.max(index)).where(index >= size)
                ).one()
                if first is None:
                    break
                now = self._size(conn)
                if now == size:
                    break  # past a size that did not move: stored beyond the log
                size = now
        beyond = None if first is None else (int(first), int(last))
        return Coverage(size, newest, int(count), beyond)

    def _size(self, conn: Connection) -> int:
        size = conn.execute(select(LogStateRow.tree_size).where(LogStateRow.id == 1)).scalar()
        if size is None:
            raise StorageError("log_state row is missing: the schema was not migrated")
        return int(size)

    def missing_ranges(self, size: int) -> list[tuple[int, int]]:
        """The ``[start, end)`` runs of indexes below ``size`` without a record."""
        index = _RECORDS.c.log_index
        previous = func.lag(index).over(order_by=index).label("previous")
        steps = select(index.label("at"), previous).where(index < size).subquery()
        gaps = select(steps.c.previous, steps.c.at).where(steps.c.at - steps.c.previous > 1)
        with self._conn() as conn:
            bounds = conn.execute(
                select(func.min(index), func.max(index)).where(index < size)
            ).one()
            if bounds[0] is None:
                return [(0, size)] if size else []
            runs = [(int(p) + 1, int(a)) for p, a in conn.execute(gaps.order_by(steps.c.at))]
        low, high = int(bounds[0]), int(bounds[1])
        head = [(0, low)] if low > 0 else []
        tail = [(high + 1, size)] if high + 1 < size else []
        return head + runs + tail

    # -- rows of one span ----------------------------------------------------------------

    def span_rows(self, start: int, end: int) -> tuple[dict[int, EntryRow], dict[NodeId, bytes]]:
        """The stored records of ``[start, end)`` and the nodes ``check_span`` reads."""
        c = _RECORDS.c
        entries: dict[int, EntryRow] = {}
        nodes: dict[NodeId, bytes] = {}
        with self._conn() as conn:
            rows = conn.execute(
                select(c.log_index, c.record_id, c.payload_type, c.payload).where(
                    c.log_index >= start, c.log_index < end
                )
            )
            for i, record_id, payload_type, payload in rows:
                entries[i] = EntryRow(i, record_id, payload_type, bytes(payload))
            n = _NODES.c
            for level, first, stop in span_node_ranges(start, end):
                found = conn.execute(
                    select(n.idx, n.hash).where(n.level == level, n.idx >= first, n.idx < stop)
                )
                nodes.update({(level, idx): bytes(h) for idx, h in found})
        return entries, nodes

    # -- damaged ranges ----------------------------------------------------------------

    def damage(self) -> list[Damage]:
        """The recorded damaged ranges, oldest finding first."""
        with self._conn() as conn:
            rows = conn.execute(
                select(
                    _DAMAGE.c.kind,
                    _DAMAGE.c.first_index,
                    _DAMAGE.c.end_index,
                    _DAMAGE.c.detail,
                    _DAMAGE.c.level,
                ).order_by(_DAMAGE.c.id)
            ).all()
        return [Damage(kind, first, end, detail, level) for kind, first, end, detail, level in rows]

    def known_damage(self) -> DamageMap:
        """The ranges the store's guarded reads refuse (as last loaded or added)."""
        return self.store.damage

    def load_damage(self) -> int:
        """Make the store's guarded reads refuse the recorded ranges; how many there are."""
        found = self.damage()
        self.store.damage.replace(found)
        return len(found)

    def add_damage(self, damages: Sequence[Damage], *, found_by: str, at: datetime) -> None:
        """Record new findings (those already recorded are not repeated)."""
        known = set(self.store.damage)
        fresh = [d for d in damages if d not in known]
        if not fresh:
            return
        with self._write() as conn:
            conn.execute(insert(_DAMAGE), [_damage_row(d, found_by, at) for d in fresh])
        self.store.damage.add(fresh)

    def replace_damage(self, damages: Sequence[Damage], *, found_by: str, at: datetime) -> None:
        """Replace every recorded range with ``damages`` (a complete check's findings)."""
        with self._write() as conn:
            conn.execute(delete(_DAMAGE))
            if damages:
                conn.execute(insert(_DAMAGE), [_damage_row(d, found_by, at) for d in damages])
        self.store.damage.replace(damages)

    # -- the scrubber's position -------------------------------------------------------

    def scrub_position(self) -> ScrubPosition:
        with self._conn() as conn:
            row = conn.execute(
                select(
                    ScrubStateRow.next_index,
                    ScrubStateRow.round_end,
                    ScrubStateRow.rounds_completed,
                    ScrubStateRow.round_started_at,
                    ScrubStateRow.last_round_completed_at,
                ).where(ScrubStateRow.id == 1)
            ).first()
        if row is None:
            raise StorageError("scrub_state row is missing: the schema was not migrated")
        return ScrubPosition(*row)

    def save_scrub_position(self, new: ScrubPosition, *, expected: ScrubPosition) -> bool:
        """Move the position from ``expected`` to ``new``; False when another process
        (a replica on the same database) moved it first."""
        values = dataclasses.asdict(new)
        with self._write() as conn:
            changed = conn.execute(
                update(_SCRUB)
                .where(
                    _SCRUB.c.id == 1,
                    *(_SCRUB.c[f] == getattr(expected, f) for f in _SCRUB_FIELDS),
                )
                .values(values)
            )
        return bool(changed.rowcount)


def _damage_row(d: Damage, found_by: str, at: datetime) -> dict[str, object]:
    return {
        "kind": d.kind,
        "level": d.level,
        "first_index": d.start,
        "end_index": d.end,
        "detail": d.detail,
        "found_by": found_by,
        "found_at": at,
    }
