"""The access log's tables: who read what, compactly (docs/OPERATIONS.md, "Access log").

Per member, UTC day and RPC one row counts the calls and the items read
(``access_days``); each call that read subjects or records is one row holding their
keyed digests back to back, 16 bytes each (``access_reads``). The digests are made by
the service (``gateway.service.access_log``); this module never sees a subject in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.errors import StorageError
from gateway.storage.models import AccessDayRow, AccessLogRow, AccessMemberRow, AccessReadRow

__all__ = ["AccessEntry", "AccessStore", "DayReads", "LegacyRow", "Read"]

_SECONDS_A_DAY = 86_400


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One call: who, when, which RPC (a small code), and the digests of what it read."""

    at: datetime
    member_id: str
    rpc: int
    digests: tuple[bytes, ...] = ()

    @property
    def day(self) -> int:
        return int(self.at.timestamp()) // _SECONDS_A_DAY


@dataclass(frozen=True, slots=True)
class DayReads:
    day: int
    member_id: str
    rpc: int
    calls: int
    items: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class Read:
    """One stored call that read items."""

    member_id: str
    day: int
    second: int
    rpc: int
    digests: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class LegacyRow:
    id: int
    at: datetime
    member_id: str
    rpc: str
    detail: str


class AccessStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._member_nos: dict[str, int] = {}

    def append(self, entries: Sequence[AccessEntry]) -> None:
        """Count ``entries`` into their days and note their items, in one transaction."""
        if not entries:
            return
        try:
            with Session(self.engine) as s, s.begin():
                numbers = self._append(s, entries)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e
        self._member_nos.update(numbers)  # only once committed

    def _append(self, s: Session, entries: Sequence[AccessEntry]) -> dict[str, int]:
        numbers = self._numbers(s, {e.member_id for e in entries})
        days: dict[tuple[int, int, int], _Day] = {}
        reads = []
        for e in entries:
            day, member = e.day, numbers[e.member_id]
            row = days.get((day, member, e.rpc))
            if row is None:
                row = days[(day, member, e.rpc)] = _Day(first_at=e.at, last_at=e.at)
            row.calls += 1
            row.items += len(e.digests)
            row.last_at = max(row.last_at, e.at)
            if e.digests:
                reads.append(
                    {
                        "day": day,
                        "member_no": member,
                        "second": int(e.at.timestamp()) - day * _SECONDS_A_DAY,
                        "rpc": e.rpc,
                        "digests": b"".join(e.digests),
                    }
                )
        self._upsert_days(s, days)
        if reads:
            s.execute(insert(AccessReadRow), reads)
        return numbers

    def _upsert_days(self, s: Session, days: dict[tuple[int, int, int], _Day]) -> None:
        if not days:
            return
        stmt = self._insert(AccessDayRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "member_no", "rpc"],
            set_={
                "calls": AccessDayRow.calls + stmt.excluded["calls"],
                # (excluded.items would be the column collection's items() method)
                "items": AccessDayRow.items + stmt.excluded["items"],
                "last_at": stmt.excluded["last_at"],
            },
        )
        s.execute(
            stmt,
            [
                {
                    "day": d,
                    "member_no": m,
                    "rpc": r,
                    "calls": v.calls,
                    "items": v.items,
                    "first_at": v.first_at,
                    "last_at": v.last_at,
                }
                for (d, m, r), v in days.items()
            ],
        )

    def _numbers(self, s: Session, member_ids: set[str]) -> dict[str, int]:
        known = {m: n for m in member_ids if (n := self._member_nos.get(m)) is not None}
        missing = [m for m in member_ids if m not in known]
        if missing:
            s.execute(
                self._insert(AccessMemberRow).on_conflict_do_nothing(),
                [{"member_id": m} for m in missing],
            )
            rows = s.execute(
                select(AccessMemberRow.member_id, AccessMemberRow.id).where(
                    AccessMemberRow.member_id.in_(missing)
                )
            )
            known.update({m: n for m, n in rows})
        return known

    def items_read(self, member_id: str, day: int, rpcs: Sequence[int]) -> int:
        """Items ``member_id`` read on ``day`` through ``rpcs``, as stored so far."""
        q = (
            select(func.coalesce(func.sum(AccessDayRow.items), 0))
            .join(AccessMemberRow, AccessMemberRow.id == AccessDayRow.member_no)
            .where(
                AccessMemberRow.member_id == member_id,
                AccessDayRow.day == day,
                AccessDayRow.rpc.in_(rpcs),
            )
        )
        try:
            with Session(self.engine) as s:
                return int(s.scalar(q) or 0)
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e

    def days(self, member_id: str | None = None) -> list[DayReads]:
        """Every day row, oldest first (for operators and tests)."""
        q = select(AccessDayRow, AccessMemberRow.member_id).join(
            AccessMemberRow, AccessMemberRow.id == AccessDayRow.member_no
        )
        if member_id is not None:
            q = q.where(AccessMemberRow.member_id == member_id)
        q = q.order_by(AccessDayRow.day, AccessMemberRow.member_id, AccessDayRow.rpc)
        with Session(self.engine) as s:
            return [
                DayReads(r.day, m, r.rpc, r.calls, r.items, r.first_at, r.last_at)
                for r, m in s.execute(q)
            ]

    def reads(self, member_id: str | None = None) -> list[Read]:
        """Every stored call that read items, in the order stored."""
        q = select(AccessReadRow, AccessMemberRow.member_id).join(
            AccessMemberRow, AccessMemberRow.id == AccessReadRow.member_no
        )
        if member_id is not None:
            q = q.where(AccessMemberRow.member_id == member_id)
        with Session(self.engine) as s:
            return [
                Read(m, r.day, r.second, r.rpc, _split(bytes(r.digests)))
                for r, m in s.execute(q.order_by(AccessReadRow.id))
            ]

    def prune(self, before_day: int) -> int:
        """Delete the days (and their items) before ``before_day``; rows deleted."""
        try:
            with Session(self.engine) as s, s.begin():
                a = s.execute(delete(AccessReadRow).where(AccessReadRow.day < before_day))
                b = s.execute(delete(AccessDayRow).where(AccessDayRow.day < before_day))
                return int(getattr(a, "rowcount", 0) or 0) + int(getattr(b, "rowcount", 0) or 0)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def convert_legacy(
        self, convert: Callable[[Sequence[LegacyRow]], list[AccessEntry]], batch: int = 1000
    ) -> int:
        """Move the rows of the old ``access_log`` table through ``convert`` into the new
        tables, ``batch`` at a time, each batch in one transaction; rows converted."""
        done = 0
        while True:
            with Session(self.engine) as s:
                rows = [
                    LegacyRow(r.id, r.at, r.member_id, r.rpc, r.detail)
                    for r in s.scalars(select(AccessLogRow).order_by(AccessLogRow.id).limit(batch))
                ]
            if not rows:
                return done
            try:
                with Session(self.engine) as s, s.begin():
                    numbers = self._append(s, convert(rows))
                    s.execute(delete(AccessLogRow).where(AccessLogRow.id.in_([r.id for r in rows])))
            except SQLAlchemyError as e:
                raise StorageError(f"database write failed: {e}") from e
            self._member_nos.update(numbers)
            done += len(rows)


@dataclass(slots=True)
class _Day:
    first_at: datetime
    last_at: datetime
    calls: int = 0
    items: int = 0


def _split(packed: bytes) -> tuple[bytes, ...]:
    return tuple(packed[i : i + 16] for i in range(0, len(packed), 16))
