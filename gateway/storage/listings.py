"""The listing projections in SQL: listings, their status steps, sanctions, the
records pending for a listing not yet held, and lookups by subject (``listings``,
``listing_steps``, ``sanctions``, ``pending``).

``ListingWrites`` is the part of ``UnitOfWork`` through which the projection keeps
them (gateway.service.projection); ``ListingStore`` the part of ``SqlStore`` that
reads them for queries and checks. A listing's subject is stored as a keyed digest
(gateway.storage.disclosures.SubjectIndex): both sides digest the keys they are given.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from sqlalchemy import (
    ARRAY,
    Dialect,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.sql.expression import ColumnElement

from gateway.errors import StorageError
from gateway.storage.base import CHUNK, StoreBase, UnitBase
from gateway.storage.log import RECORD_FIELDS, StoredRecord, stored_record
from gateway.storage.models import Base, ListingRow, UtcDateTime

__all__ = [
    "ListingFilter",
    "ListingProjection",
    "ListingStore",
    "ListingWrites",
    "SanctionProjection",
    "SubjectListing",
    "listing_projection",
]

_NONE: Mapping[str, bytes] = MappingProxyType({})

_TABLES = Base.metadata.tables
_RECORDS = _TABLES["records"]
_PENDING = _TABLES["pending"]
_PENDING_FOR = "SELECT DISTINCT listing_id FROM pending WHERE listing_id"


@dataclass(frozen=True)
class ListingProjection:
    listing_id: str
    # The lookup key in the clear (``uscc:...``) when written; the stored index holds
    # its keyed digest. None: no key (a listing whose disclosures were erased).
    subject_key: str | None
    issuer: str
    list_kind: int
    conduct: int
    region_code: str
    listed_at: datetime
    deadline: datetime
    step: int
    in_force: bool
    log_index: int
    # Due process (gateway.core.lifecycle): the deadline in force (None while reported
    # or while a dispute is open), the identification, the open dispute.
    due_at: datetime | None = None
    identified_at: datetime | None = None
    dispute_since: datetime | None = None
    closed_at: datetime | None = None  # the earliest closing step (None: in force)


_LISTING_FIELDS = tuple(f.name for f in dataclasses.fields(ListingProjection))


@dataclass(frozen=True)
class SanctionProjection:
    listing_id: str
    platform: str
    measure: int
    measure_other: str
    action: int
    effective_at: datetime
    record_id: str


_SANCTION_FIELDS = tuple(f.name for f in dataclasses.fields(SanctionProjection))
_LISTINGS = _TABLES["listings"]
_LISTING_PAYLOADS = (
    select(_RECORDS.c.record_id, _RECORDS.c.payload, _LISTINGS.c.disclosed)
    .join(_LISTINGS, _LISTINGS.c.listing_id == _RECORDS.c.record_id)
    .where(_RECORDS.c.record_id.in_(bindparam("ids", expanding=True)))
)
_SANCTIONS = _TABLES["sanctions"]
_SANCTION_ORDER = (_SANCTIONS.c.platform, _SANCTIONS.c.measure, _SANCTIONS.c.measure_other)
_SANCTIONS_FOR = (
    select(*(_SANCTIONS.c[f] for f in _SANCTION_FIELDS))
    .where(_SANCTIONS.c.listing_id.in_(bindparam("ids", expanding=True)))
    .order_by(*_SANCTION_ORDER)
)
# Times as the driver returns them, without UtcDateTime's Python call per value (the
# SQLite driver type parses in C; psycopg returns aware datetimes): a lookup finishes
# with _utc only the values it answers with.
_UTC = UtcDateTime()
_STORED_TIME = UtcDateTime.impl


def _utc(value: datetime, dialect: Dialect) -> datetime:
    """A NOT NULL time read as _STORED_TIME, as its UtcDateTime column reads it."""
    utc = _UTC.process_result_value(value, dialect)
    assert utc is not None
    return utc


# A subject lookup reads what an answer needs, and no more, in one statement: per
# listing, its subject key and the fields of SubjectListing (the payload is NULL only if
# the invariant that a listing and its record are written in one transaction were
# broken), then one row per sanction (platform, measure, measure_other, action,
# effective_at, record_id; all NULL for a listing without sanctions).
_SUBJECT_LISTINGS_ALL = (
    select(
        _LISTINGS.c.subject_key,
        _LISTINGS.c.listing_id,
        _LISTINGS.c.step,
        type_coerce(_LISTINGS.c.deadline, _STORED_TIME),
        _LISTINGS.c.due_at,
        _LISTINGS.c.in_force,
        _LISTINGS.c.identified_at,
        _LISTINGS.c.closed_at,
        _LISTINGS.c.issuer,
        _LISTINGS.c.list_kind,
        _LISTINGS.c.conduct,
        _RECORDS.c.payload,
        _LISTINGS.c.disclosed,
        _SANCTIONS.c.platform,
        _SANCTIONS.c.measure,
        _SANCTIONS.c.measure_other,
        _SANCTIONS.c.action,
        type_coerce(_SANCTIONS.c.effective_at, _STORED_TIME),
        _SANCTIONS.c.record_id,
    )
    .select_from(
        _LISTINGS.outerjoin(_RECORDS, _RECORDS.c.record_id == _LISTINGS.c.listing_id).outerjoin(
            _SANCTIONS, _SANCTIONS.c.listing_id == _LISTINGS.c.listing_id
        )
    )
    .order_by(_LISTINGS.c.listed_at, _LISTINGS.c.listing_id, *_SANCTION_ORDER)
)
# The keys as one parameter: one statement for any number of keys, whose text does not
# change with their number, so neither SQLAlchemy nor the driver renders a placeholder
# per key. An array on PostgreSQL; a JSON array on SQLite (json_each, built in since
# SQLite 3.38), which also lifts SQLite's limit on bound parameters.
_SUBJECT_LISTINGS_ANY = _SUBJECT_LISTINGS_ALL.where(
    _LISTINGS.c.subject_key == any_(bindparam("keys", type_=ARRAY(String)))
)
_SUBJECT_LISTINGS_JSON = _SUBJECT_LISTINGS_ALL.where(
    _LISTINGS.c.subject_key.in_(
        select(func.json_each(bindparam("keys")).table_valued("value").c.value)
    )
)


class SubjectListing(NamedTuple):
    """A listing found by subject: what a lookup answers about it."""

    listing_id: str
    step: int
    deadline: datetime
    due_at: datetime | None  # the deadline in force (None: reported, or disputed)
    in_force: bool
    payload: bytes | None  # the record's payload; None only if the record were missing
    sanctions: tuple[SanctionProjection, ...]  # in (platform, measure, measure_other) order
    identified_at: datetime | None = None  # None: reported, not identified
    closed_at: datetime | None = None  # the earliest closing step (None: in force)
    issuer: str = ""
    list_kind: int = 0
    conduct: int = 0


@dataclass(frozen=True)
class ListingFilter:
    list_kind: int | None = None
    conduct: int | None = None
    region_prefix: str = ""
    step: int | None = None
    in_force_only: bool = False
    overdue_at: datetime | None = None


def listing_projection(row: ListingRow) -> ListingProjection:
    return ListingProjection(
        listing_id=row.listing_id,
        subject_key=row.subject_key,
        issuer=row.issuer,
        list_kind=row.list_kind,
        conduct=row.conduct,
        region_code=row.region_code,
        listed_at=row.listed_at,
        deadline=row.deadline,
        step=row.step,
        in_force=row.in_force,
        log_index=row.log_index,
        due_at=row.due_at,
        identified_at=row.identified_at,
        dispute_since=row.dispute_since,
        closed_at=row.closed_at,
    )


_LISTING_BY_ID = select(*(_LISTINGS.c[f] for f in _LISTING_FIELDS)).where(
    _LISTINGS.c.listing_id == bindparam("listing_id")
)
_STEPS = _TABLES["listing_steps"]


def _sanction_key(
    listing_id: str, platform: str, measure: int, measure_other: str
) -> tuple[ColumnElement[bool], ...]:
    c = _SANCTIONS.c
    return (
        c.listing_id == listing_id,
        c.platform == platform,
        c.measure == measure,
        c.measure_other == measure_other,
    )


class ListingWrites(UnitBase):
    """The projections' part of a ``UnitOfWork``: listings, steps, sanctions, pending."""

    def get_listing(self, listing_id: str) -> ListingProjection | None:
        row = self._c.execute(_LISTING_BY_ID, {"listing_id": listing_id}).first()
        return None if row is None else ListingProjection(*row)

    def steps_of(self, listing_id: str) -> list[tuple[str, int, datetime]]:
        """Every projected status change of a listing: ``(record_id, step, effective_at)``."""
        rows = self._c.execute(
            select(_STEPS.c.record_id, _STEPS.c.step, _STEPS.c.effective_at).where(
                _STEPS.c.listing_id == listing_id
            )
        ).all()
        return [(str(r), int(s), at) for r, s, at in rows]

    def set_listing_state(
        self,
        listing_id: str,
        *,
        step: int,
        in_force: bool,
        due_at: datetime | None,
        identified_at: datetime | None,
        dispute_since: datetime | None,
        closed_at: datetime | None = None,
    ) -> None:
        self._c.execute(
            update(_LISTINGS)
            .where(_LISTINGS.c.listing_id == listing_id)
            .values(
                step=step,
                in_force=in_force,
                due_at=due_at,
                identified_at=identified_at,
                dispute_since=dispute_since,
                closed_at=closed_at,
            )
        )

    def insert_listings(
        self, projections: Sequence[ListingProjection], disclosed: Mapping[str, bytes] = _NONE
    ) -> None:
        """All listings of a batch in one statement; ``disclosed``: the disclosure values
        of each (``listings.disclosed``)."""
        time = self._time
        digest = self._digest
        self._insert_rows(
            (*_LISTING_FIELDS, "disclosed"),
            [
                (
                    p.listing_id,
                    None if p.subject_key is None else digest(p.subject_key),
                    p.issuer,
                    p.list_kind,
                    p.conduct,
                    p.region_code,
                    time(p.listed_at),
                    time(p.deadline),
                    p.step,
                    p.in_force,
                    p.log_index,
                    None if p.due_at is None else time(p.due_at),
                    None if p.identified_at is None else time(p.identified_at),
                    None if p.dispute_since is None else time(p.dispute_since),
                    None if p.closed_at is None else time(p.closed_at),
                    disclosed.get(p.listing_id),
                )
                for p in projections
            ],
            table="listings",
        )

    def _digest(self, subject_key: str) -> str:
        if self._index is None:
            raise StorageError("this store was opened without the subject index key")
        return self._index.digest(subject_key)

    def pending_listing_ids(self, listing_ids: Sequence[str]) -> set[str]:
        """Which of ``listing_ids`` have records waiting for them."""
        return {row[0] for row in self._select_in(_PENDING_FOR, listing_ids)}

    def insert_step(self, record_id: str, listing_id: str, step: int, at: datetime) -> None:
        self._c.execute(
            insert(_STEPS).values(
                record_id=record_id, listing_id=listing_id, step=step, effective_at=at
            )
        )

    def get_sanction(
        self, listing_id: str, platform: str, measure: int, measure_other: str
    ) -> SanctionProjection | None:
        row = self._c.execute(
            select(*(_SANCTIONS.c[f] for f in _SANCTION_FIELDS)).where(
                *_sanction_key(listing_id, platform, measure, measure_other)
            )
        ).first()
        return None if row is None else SanctionProjection(*row)

    def put_sanction(self, p: SanctionProjection) -> None:
        key = _sanction_key(p.listing_id, p.platform, p.measure, p.measure_other)
        changed = self._c.execute(
            update(_SANCTIONS)
            .where(*key)
            .values(action=p.action, effective_at=p.effective_at, record_id=p.record_id)
        )
        if not changed.rowcount:
            self._c.execute(insert(_SANCTIONS).values({f: getattr(p, f) for f in _SANCTION_FIELDS}))

    def add_pending(self, record_id: str, listing_id: str) -> None:
        self._c.execute(insert(_PENDING).values(record_id=record_id, listing_id=listing_id))

    def take_pending(self, listing_id: str) -> list[StoredRecord]:
        """Records that waited for ``listing_id``, in log order; they stop waiting."""
        rows = self._c.execute(
            select(*(_RECORDS.c[f] for f in RECORD_FIELDS))
            .join(_PENDING, _PENDING.c.record_id == _RECORDS.c.record_id)
            .where(_PENDING.c.listing_id == listing_id)
            .order_by(_RECORDS.c.log_index)
        ).all()
        if rows:
            self._c.execute(delete(_PENDING).where(_PENDING.c.listing_id == listing_id))
        return [stored_record(r) for r in rows]


class ListingStore(StoreBase):
    """The projections' part of a ``SqlStore``: subject lookups, listings, sanctions."""

    def listings_for_subjects(self, keys: Sequence[str]) -> dict[str, list[SubjectListing]]:
        """Each subject key's listings, oldest first, with their payloads (followed by
        the disclosures held: the listing as a reader sees it) and sanctions.

        The index holds keyed digests (gateway.storage.disclosures): the keys are
        digested here and the answer keyed by them again."""
        out: dict[str, list[SubjectListing]] = defaultdict(list)
        if not keys:
            return out
        if self.subject_index is None:
            raise StorageError("this store was opened without the subject index key")
        by_digest = {self.subject_index.digest(k): k for k in keys}
        dialect = self.engine.dialect
        param: list[str] | str
        if dialect.name == "postgresql":
            statement, param = _SUBJECT_LISTINGS_ANY, list(by_digest)
        else:
            statement, param = _SUBJECT_LISTINGS_JSON, json.dumps(list(by_digest))
        with self._read_rows() as conn:
            rows = conn.execute(statement, {"keys": param}).all()
        listing_id = None
        for (
            digest,
            row_listing_id,
            step,
            deadline,
            due_at,
            in_force,
            identified_at,
            closed_at,
            issuer,
            list_kind,
            conduct,
            payload,
            disclosed,
            platform,
            measure,
            measure_other,
            action,
            effective_at,
            record_id,
        ) in rows:
            listings = out[by_digest[digest]]
            if row_listing_id != listing_id:  # the first row of the next listing
                listing_id = row_listing_id
                # Protobuf merges concatenated messages: payload ‖ values reads as the
                # listing with its committed fields (docs/PROTOCOL.md, 3.1).
                seen = bytes(payload) + bytes(disclosed) if disclosed and payload else payload
                listings.append(
                    SubjectListing(
                        listing_id,
                        step,
                        _utc(deadline, dialect),
                        None if due_at is None else _utc(due_at, dialect),
                        in_force,
                        seen,
                        (),
                        None if identified_at is None else _utc(identified_at, dialect),
                        None if closed_at is None else _utc(closed_at, dialect),
                        issuer,
                        list_kind,
                        conduct,
                    )
                )
            if platform is not None:  # one of the listing's sanctions (few have any)
                sanction = SanctionProjection(
                    row_listing_id,
                    platform,
                    measure,
                    measure_other,
                    action,
                    _utc(effective_at, dialect),
                    record_id,
                )
                listings[-1] = listings[-1]._replace(sanctions=(*listings[-1].sanctions, sanction))
        return out

    def listing(self, listing_id: str) -> ListingProjection | None:
        with self._read() as s:
            row = s.get(ListingRow, listing_id)
            return None if row is None else listing_projection(row)

    def sanctions_for(self, listing_ids: Sequence[str]) -> dict[str, list[SanctionProjection]]:
        out: dict[str, list[SanctionProjection]] = defaultdict(list)
        if not listing_ids:
            return out
        with self._read_rows() as conn:
            for i in range(0, len(listing_ids), CHUNK):
                rows = conn.execute(_SANCTIONS_FOR, {"ids": list(listing_ids[i : i + CHUNK])})
                for row in rows.all():
                    out[row[0]].append(SanctionProjection(*row))
        return out

    def list_listings(
        self, f: ListingFilter, *, after_index: int, limit: int
    ) -> list[ListingProjection]:
        """Listings matching ``f`` in log order, after a cursor (the last log index seen)."""
        q = select(ListingRow).where(ListingRow.log_index > after_index)
        if f.list_kind is not None:
            q = q.where(ListingRow.list_kind == f.list_kind)
        if f.conduct is not None:
            q = q.where(ListingRow.conduct == f.conduct)
        if f.region_prefix:
            q = q.where(ListingRow.region_code.startswith(f.region_prefix, autoescape=True))
        if f.step is not None:
            q = q.where(ListingRow.step == f.step)
        if f.in_force_only or f.overdue_at is not None:
            q = q.where(ListingRow.in_force.is_(True))
        if f.overdue_at is not None:
            q = q.where(ListingRow.due_at < f.overdue_at)
        with self._read() as s:
            rows = s.scalars(q.order_by(ListingRow.log_index).limit(limit)).all()
            return [listing_projection(r) for r in rows]

    def payloads_by_ids(self, listing_ids: Sequence[str]) -> dict[str, bytes]:
        """The payload bytes of the given listings, each followed by the values of its
        disclosures (``listings.disclosed``, as lookups read them): protobuf reads the
        concatenation as the listing with its committed fields."""
        out: dict[str, bytes] = {}
        with self._read() as s:
            conn = s.connection()
            for i in range(0, len(listing_ids), CHUNK):
                chunk = {"ids": list(listing_ids[i : i + CHUNK])}
                for rid, payload, disclosed in conn.execute(_LISTING_PAYLOADS, chunk):
                    out[rid] = bytes(payload) + bytes(disclosed or b"")
        return out
