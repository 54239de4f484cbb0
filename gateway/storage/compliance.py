"""SQL reads for compliance: escalation candidates, listings that owe sanctions or
lifts, step times, and counts for the gauges. Reads the projections the sequencer keeps
(``listings``, ``listing_steps``, ``sanctions``, ``records``); writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, Engine, and_, exists, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.errors import StorageError
from gateway.storage.listings import ListingProjection, listing_projection
from gateway.storage.models import ListingRow, RecordRow, SanctionRow, StepRow

__all__ = ["ComplianceStore", "ListingCount", "StepTime", "prefix_pattern"]

# SQLite limits bound parameters per statement; stay well below it.
_CHUNK = 500
# Lifecycle step numbers (alliance.v1.LifecycleStep) used in queries.
_NOTICE, _ESCALATED = 2, 6
_APPLIED = 1


@dataclass(frozen=True)
class StepTime:
    record_id: str
    step: int
    effective_at: datetime


@dataclass(frozen=True)
class ListingCount:
    list_kind: int
    unit: str
    count: int


def prefix_pattern(prefix: str) -> str:
    """A LIKE pattern (escape character ``\\``) for the strings starting with ``prefix``."""
    # Member ids and region codes never contain LIKE wildcards or the escape character
    # (their character sets are checked), but escape anyway.
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class NoticeCandidate(NamedTuple):
    """An own listing in force, identified, with no notice served (late-notice count)."""

    log_index: int
    issuer: str
    identified_at: datetime
    list_kind: int
    region_code: str


class ComplianceStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self._engine) as session:
                yield session
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e

    def escalation_candidates(
        self, issuer_prefix: str, now: datetime, *, limit: int
    ) -> list[ListingProjection]:
        """In force, no escalation in effect, the deadline in force before ``now`` (so
        identified and no dispute open), issued by a member whose id starts with
        ``issuer_prefix``; oldest deadline first."""
        q = (
            select(ListingRow)
            .where(
                ListingRow.in_force.is_(True),
                ListingRow.step != _ESCALATED,
                ListingRow.due_at < now,
                ListingRow.issuer.like(prefix_pattern(issuer_prefix), escape="\\"),
            )
            .order_by(ListingRow.due_at, ListingRow.listing_id)
            .limit(limit)
        )
        with self._read() as s:
            return [listing_projection(r) for r in s.scalars(q)]

    def obligation_candidates(
        self, *, region_prefix: str, after_index: int, limit: int
    ) -> list[ListingProjection]:
        """Listings that can owe something, in log order after a cursor: in force and
        ESCALATED, or closed with a sanction still APPLIED."""
        still_applied = exists().where(
            SanctionRow.listing_id == ListingRow.listing_id, SanctionRow.action == _APPLIED
        )
        q = select(ListingRow).where(
            ListingRow.log_index > after_index,
            or_(
                and_(ListingRow.in_force.is_(True), ListingRow.step == _ESCALATED),
                and_(ListingRow.in_force.is_(False), still_applied),
            ),
        )
        if region_prefix:
            q = q.where(ListingRow.region_code.like(prefix_pattern(region_prefix), escape="\\"))
        with self._read() as s:
            rows = s.scalars(q.order_by(ListingRow.log_index).limit(limit))
            return [listing_projection(r) for r in rows]

    def step_times(self, listing_ids: Sequence[str]) -> dict[str, list[StepTime]]:
        """Every status change of the listings (their history), oldest first."""
        out: dict[str, list[StepTime]] = defaultdict(list)
        with self._read() as s:
            for i in range(0, len(listing_ids), _CHUNK):
                rows = s.execute(
                    select(
                        StepRow.listing_id, StepRow.record_id, StepRow.step, StepRow.effective_at
                    )
                    .where(StepRow.listing_id.in_(listing_ids[i : i + _CHUNK]))
                    .order_by(StepRow.effective_at, StepRow.record_id)
                )
                for listing_id, record_id, step, at in rows:
                    out[listing_id].append(StepTime(record_id, step, at))
        return out

    def notice_candidates(
        self, issuer_prefix: str, identified_before: datetime, *, after_index: int, limit: int
    ) -> list[NoticeCandidate]:
        """In force, identified before ``identified_before``, no NOTICE_SERVED step,
        issued by a member whose id starts with ``issuer_prefix``; in log order after a
        cursor. Plain rows of what the late-notice count reads (no ORM objects: it runs
        over every own listing on each refresh of the gauges)."""
        served = exists().where(
            StepRow.listing_id == ListingRow.listing_id, StepRow.step == _NOTICE
        )
        q = (
            select(
                ListingRow.log_index,
                ListingRow.issuer,
                ListingRow.identified_at,
                ListingRow.list_kind,
                ListingRow.region_code,
            )
            .where(
                ListingRow.log_index > after_index,
                ListingRow.in_force.is_(True),
                ListingRow.identified_at.is_not(None),
                ListingRow.identified_at < identified_before,
                ListingRow.issuer.like(prefix_pattern(issuer_prefix), escape="\\"),
                ~served,
            )
            .order_by(ListingRow.log_index)
            .limit(limit)
        )
        with self._read() as s:
            return [
                NoticeCandidate(index, issuer, at, kind, region)
                for index, issuer, at, kind, region in s.execute(q)
                if at is not None  # the query asks for identified listings only
            ]

    def retirement_candidates(
        self, issuer_prefix: str, identified_before: datetime, *, after_index: int, limit: int
    ) -> list[ListingProjection]:
        """In force, identified before ``identified_before``, issued by a member whose id
        starts with ``issuer_prefix``; in log order after a cursor (the caller checks
        each one's own maximum publication period)."""
        q = (
            select(ListingRow)
            .where(
                ListingRow.log_index > after_index,
                ListingRow.in_force.is_(True),
                ListingRow.identified_at.is_not(None),
                ListingRow.identified_at < identified_before,
                ListingRow.issuer.like(prefix_pattern(issuer_prefix), escape="\\"),
            )
            .order_by(ListingRow.log_index)
            .limit(limit)
        )
        with self._read() as s:
            return [listing_projection(r) for r in s.scalars(q)]

    def open_disputes(self) -> list[tuple[str, str, str, datetime]]:
        """``(listing_id, issuer, region_code, dispute_since)`` of every listing in force
        with a dispute open."""
        q = select(
            ListingRow.listing_id,
            ListingRow.issuer,
            ListingRow.region_code,
            ListingRow.dispute_since,
        ).where(ListingRow.in_force.is_(True), ListingRow.dispute_since.is_not(None))
        with self._read() as s:
            return [(str(i), str(who), str(r), at) for i, who, r, at in s.execute(q) if at]

    def overdue_counts(self, now: datetime) -> list[ListingCount]:
        """In force and past the deadline, by list and reporting unit."""
        return self._counts(ListingRow.in_force.is_(True), ListingRow.due_at < now)

    def escalated_counts(self) -> list[ListingCount]:
        """In force and ESCALATED, by list and reporting unit."""
        return self._counts(ListingRow.in_force.is_(True), ListingRow.step == _ESCALATED)

    def _counts(self, *conditions: ColumnElement[bool]) -> list[ListingCount]:
        unit = func.substr(ListingRow.region_code, 1, 2)
        q = (
            select(ListingRow.list_kind, unit, func.count())
            .where(*conditions)
            .group_by(ListingRow.list_kind, unit)
        )
        with self._read() as s:
            return [ListingCount(kind, str(u), int(n)) for kind, u, n in s.execute(q)]

    def records_of_type_after(
        self, payload_type: str, after_index: int
    ) -> list[tuple[int, str, bytes]]:
        """``(log_index, record_id, payload)`` of one payload type, in log order."""
        with self._read() as s:
            rows = s.execute(
                select(RecordRow.log_index, RecordRow.record_id, RecordRow.payload)
                .where(RecordRow.payload_type == payload_type, RecordRow.log_index > after_index)
                .order_by(RecordRow.log_index)
            )
            return [(int(i), str(r), bytes(p)) for i, r, p in rows]
