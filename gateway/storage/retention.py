"""Retention's storage (issue 18 item 6): this trust domain's redactable records with
the listing each belongs to (``retention_records``), and of those, the ones whose
listing closed by a cutoff and that still hold disclosures.

``gateway.service.retention`` decides what to erase; this module reads the log for it,
keeps the table and answers its questions. Rows of records whose disclosures are gone
(erased by anyone) are deleted by ``prune``, so the table holds what retention may
still have to erase.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.errors import StorageError
from gateway.storage.compliance import prefix_pattern
from gateway.storage.models import (
    DisclosureRow,
    ErasedRow,
    ListingRow,
    RecordRow,
    RetentionRecordRow,
)

__all__ = ["LogRecord", "RetentionRecord", "RetentionStore"]

_CHUNK = 500


@dataclass(frozen=True)
class LogRecord:
    """A record as the log stores it: enough to read which listing it belongs to."""

    log_index: int
    record_id: str
    payload_type: str
    payload: bytes


@dataclass(frozen=True)
class RetentionRecord:
    log_index: int
    record_id: str
    listing_id: str
    kind: int


class RetentionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self._engine) as session:
                yield session
        except SQLAlchemyError as e:
            raise StorageError(f"database access failed: {e}") from e

    # -- the table ------------------------------------------------------------------------

    def indexed_through(self) -> int:
        """The log index of the newest record in the table (-1: none)."""
        with self._session() as s:
            newest = s.scalar(select(func.max(RetentionRecordRow.log_index)))
        return -1 if newest is None else int(newest)

    def unindexed(
        self,
        signer_prefix: str,
        payload_types: Sequence[str],
        *,
        after_index: int,
        before_index: int,
        limit: int,
    ) -> list[LogRecord]:
        """Records of ``payload_types`` signed by a member whose id starts with
        ``signer_prefix``, with ``after_index < log_index < before_index``, in log order."""
        q = (
            select(
                RecordRow.log_index,
                RecordRow.record_id,
                RecordRow.payload_type,
                RecordRow.payload,
            )
            .where(
                RecordRow.payload_type.in_(sorted(payload_types)),
                RecordRow.log_index > after_index,
                RecordRow.log_index < before_index,
                RecordRow.signer.like(prefix_pattern(signer_prefix), escape="\\"),
            )
            .order_by(RecordRow.log_index)
            .limit(limit)
        )
        with self._session() as s:
            return [LogRecord(int(i), str(r), str(t), bytes(p)) for i, r, t, p in s.execute(q)]

    def add(self, records: Sequence[RetentionRecord]) -> None:
        """Add rows; one already there (another replica read it too) is left as it is."""
        if not records:
            return
        rows = [
            {
                "log_index": r.log_index,
                "record_id": r.record_id,
                "listing_id": r.listing_id,
                "kind": r.kind,
            }
            for r in records
        ]
        with self._session() as s:
            s.execute(self._insert(RetentionRecordRow).on_conflict_do_nothing(), rows)
            s.commit()

    def prune(self) -> int:
        """Delete the rows of records that hold no disclosures any more; returns how many."""
        held = exists().where(DisclosureRow.log_index == RetentionRecordRow.log_index)
        try:
            with self._engine.begin() as conn:
                return int(conn.execute(delete(RetentionRecordRow).where(~held)).rowcount)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    # -- what retention erases ------------------------------------------------------------

    def overdue(
        self, kind: int, closed_by: datetime, *, after_index: int, limit: int
    ) -> list[tuple[int, str]]:
        """``(log_index, record_id)`` of the records of ``kind`` whose listing closed at
        or before ``closed_by`` and that still hold disclosures, after a cursor, in log
        order."""
        q = (
            select(RetentionRecordRow.log_index, RetentionRecordRow.record_id)
            .join(ListingRow, ListingRow.listing_id == RetentionRecordRow.listing_id)
            .where(
                RetentionRecordRow.kind == kind,
                RetentionRecordRow.log_index > after_index,
                *_overdue(closed_by),
            )
            .order_by(RetentionRecordRow.log_index)
            .limit(limit)
        )
        with self._session() as s:
            return [(int(i), str(r)) for i, r in s.execute(q)]

    def count_overdue(self, kind: int, closed_by: datetime) -> int:
        q = (
            select(func.count())
            .select_from(RetentionRecordRow)
            .join(ListingRow, ListingRow.listing_id == RetentionRecordRow.listing_id)
            .where(RetentionRecordRow.kind == kind, *_overdue(closed_by))
        )
        with self._session() as s:
            return int(s.scalar(q) or 0)

    # -- erasures, for the metrics --------------------------------------------------------

    def erased_by(self, erasure_id: str, record_ids: Sequence[str]) -> int:
        """How many of ``record_ids`` this gateway erased because of ``erasure_id`` (the
        records it held and had not erased before)."""
        count = 0
        with self._session() as s:
            for i in range(0, len(record_ids), _CHUNK):
                count += int(
                    s.scalar(
                        select(func.count())
                        .select_from(ErasedRow)
                        .where(
                            ErasedRow.erasure_id == erasure_id,
                            ErasedRow.record_id.in_(list(record_ids[i : i + _CHUNK])),
                        )
                    )
                    or 0
                )
        return count


def _overdue(closed_by: datetime) -> list[ColumnElement[bool]]:
    """Of ``retention_records`` joined with their listings: the listing closed at or
    before ``closed_by``, the record holds disclosures and no erasure named it."""
    return [
        ListingRow.in_force.is_(False),
        ListingRow.closed_at.is_not(None),
        ListingRow.closed_at <= closed_by,
        exists().where(DisclosureRow.log_index == RetentionRecordRow.log_index),
        ~exists().where(ErasedRow.record_id == RetentionRecordRow.record_id),
    ]
