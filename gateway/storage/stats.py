"""Aggregate reads for the metrics: bounded group-bys over the projections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.errors import StorageError
from gateway.storage.models import ListingRow, SanctionRow

_NOT_APPLICABLE = 3  # alliance.v1.SanctionAction.SANCTION_ACTION_NOT_APPLICABLE


@dataclass(frozen=True)
class ListingCount:
    list_kind: int
    conduct: int
    unit: str  # 2-digit reporting unit: 32 values at most
    count: int


@dataclass(frozen=True)
class SanctionCount:
    measure: int
    action: int
    count: int


def listing_counts(engine: Engine) -> list[ListingCount]:
    """Listings in force by list, conduct and reporting unit."""
    unit = func.substr(ListingRow.region_code, 1, 2)
    q = (
        select(ListingRow.list_kind, ListingRow.conduct, unit, func.count())
        .where(ListingRow.in_force.is_(True))
        .group_by(ListingRow.list_kind, ListingRow.conduct, unit)
    )
    try:
        with Session(engine) as s:
            return [ListingCount(int(a), int(b), str(c), int(n)) for a, b, c, n in s.execute(q)]
    except SQLAlchemyError as e:
        raise StorageError(f"database read failed: {e}") from e


def overdue_count(engine: Engine, at: datetime) -> int:
    q = select(func.count()).where(ListingRow.in_force.is_(True), ListingRow.due_at < at)
    try:
        with Session(engine) as s:
            return int(s.scalar(q) or 0)
    except SQLAlchemyError as e:
        raise StorageError(f"database read failed: {e}") from e


def sanction_counts(engine: Engine) -> list[SanctionCount]:
    """Current sanction state (the winning confirmation per key) by measure and action."""
    q = (
        select(SanctionRow.measure, SanctionRow.action, func.count())
        # NOT_APPLICABLE answers (action 3, no measure) are not sanctions.
        .where(SanctionRow.action != _NOT_APPLICABLE)
        .group_by(SanctionRow.measure, SanctionRow.action)
    )
    try:
        with Session(engine) as s:
            return [SanctionCount(int(m), int(a), int(n)) for m, a, n in s.execute(q)]
    except SQLAlchemyError as e:
        raise StorageError(f"database read failed: {e}") from e
