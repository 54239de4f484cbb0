"""The SQL adapter behind the use cases: records, log nodes, checkpoints, projections.

Only this package imports sqlalchemy. Writes happen in a ``UnitOfWork`` (one
transaction); the sequencer is the only writer of records, log nodes and
projections, so the log and the state it implies never disagree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from base64 import b64decode, b64encode
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    Connection,
    Dialect,
    Engine,
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
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from gateway.core.disclosure import Disclosure
from gateway.core.dsse import pae
from gateway.core.logcheck import DamageMap, describe
from gateway.core.statements import REDACTABLE_TYPES
from gateway.errors import LogDamageError, StorageError
from gateway.storage.disclosures import (
    SubjectIndex,
    disclosures_for,
    erase,
    insert_disclosures,
    truncate_wal,
)
from gateway.storage.models import (
    Base,
    CheckpointRow,
    CosignatureRow,
    FederationEvidenceRow,
    ListingRow,
    LogStateRow,
    PeerCursorRow,
    RecordRow,
    UtcDateTime,
)

logger = logging.getLogger(__name__)

_NONE: Mapping[str, bytes] = MappingProxyType({})
# SQLite limits bound parameters per statement; stay well below it.
_CHUNK = 500

_TABLES = Base.metadata.tables
_LOG_STATE = _TABLES["log_state"]
_SET_LOG_SIZE = update(_LOG_STATE).where(_LOG_STATE.c.id == 1).values(tree_size=bindparam("size"))
_RECORDS = _TABLES["records"]
_EXISTING = select(_RECORDS.c.record_id, _RECORDS.c.log_index).where(
    _RECORDS.c.record_id.in_(bindparam("ids", expanding=True))
)
_HAS_ENTRY = select(_RECORDS.c.log_index).where(_RECORDS.c.log_index == bindparam("index"))
_PENDING = _TABLES["pending"]
_PENDING_FOR = (
    select(_PENDING.c.listing_id)
    .where(_PENDING.c.listing_id.in_(bindparam("ids", expanding=True)))
    .distinct()
)


@dataclass(frozen=True)
class StoredRecord:
    log_index: int
    record_id: str
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, sig)
    signer: str
    origin: str
    received_at: datetime
    # A redactable record's disclosures while this gateway holds them (kept apart
    # from the log, in gateway.storage.disclosures); none once erased.
    disclosures: tuple[Disclosure, ...] = ()


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
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    note: str
    signed_at: datetime


@dataclass(frozen=True)
class PeerCursor:
    """Replication state for one peer gateway (see ``PeerCursorRow``)."""

    peer: str
    origin: str
    next_index: int
    range_hashes: tuple[bytes, ...]
    checkpoint_size: int
    checkpoint_root: bytes | None
    checkpoint_note: str | None
    caught_up_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str
    updated_at: datetime


@dataclass(frozen=True)
class StoredEvidence:
    peer: str
    origin: str
    kind: str
    accepted_note: str
    conflicting_note: str
    proof: tuple[bytes, ...]
    detail: str
    recorded_at: datetime


@dataclass(frozen=True)
class ListingFilter:
    list_kind: int | None = None
    conduct: int | None = None
    region_prefix: str = ""
    step: int | None = None
    in_force_only: bool = False
    overdue_at: datetime | None = None


def _encode_signatures(signatures: Sequence[tuple[str, bytes]]) -> str:
    return json.dumps([{"keyid": k, "sig": b64encode(s).decode()} for k, s in signatures])


def _decode_signatures(text: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((item["keyid"], b64decode(item["sig"])) for item in json.loads(text))


def _record(row: RecordRow) -> StoredRecord:
    return StoredRecord(
        log_index=row.log_index,
        record_id=row.record_id,
        payload_type=row.payload_type,
        payload=row.payload,
        signatures=_decode_signatures(row.signatures),
        signer=row.signer,
        origin=row.origin,
        received_at=row.received_at,
    )


def _disclosed(conn: Connection, records: list[StoredRecord]) -> list[StoredRecord]:
    """``records`` with the disclosures this gateway holds for them."""
    held = disclosures_for(
        conn, [r.record_id for r in records if r.payload_type in REDACTABLE_TYPES]
    )
    if not held:
        return records
    return [
        dataclasses.replace(r, disclosures=held[r.record_id]) if r.record_id in held else r
        for r in records
    ]


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


# The writes of a batch run on one Connection with Core statements (no ORM session,
# identity map or flushes); those of every batch are built once here.
_LOCK_LOG = (
    update(_LOG_STATE)
    .where(_LOG_STATE.c.id == 1)
    .values(tree_size=_LOG_STATE.c.tree_size)
    .returning(_LOG_STATE.c.tree_size)
)
_LATEST_CHECKPOINT_SIZE = select(func.max(_TABLES["checkpoints"].c.tree_size))
_LISTING_BY_ID = select(*(_LISTINGS.c[f] for f in _LISTING_FIELDS)).where(
    _LISTINGS.c.listing_id == bindparam("listing_id")
)
_STEPS = _TABLES["listing_steps"]
_MEMBERS = _TABLES["members"]
_CURSORS = _TABLES["peer_cursors"]
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(StoredRecord) if f.name != "disclosures")
# Parameters in one multi-row INSERT (SQLite allows 32766, PostgreSQL 65535).
_MAX_PARAMETERS = 4000


def _unchanged(value: object) -> object:
    return value


def _stored_record(row: Row[Any]) -> StoredRecord:
    """A StoredRecord from a row of the records columns in ``_RECORD_FIELDS`` order."""
    values = dict(zip(_RECORD_FIELDS, row, strict=True))
    values["signatures"] = _decode_signatures(values["signatures"])
    return StoredRecord(**values)


class UnitOfWork:
    """The writes of one sequencer batch, committed together or not at all."""

    def __init__(self, conn: Connection, index: SubjectIndex | None = None) -> None:
        self._c = conn
        self._index = index
        # Aware datetimes as the UtcDateTime columns store them, for rows handed to the
        # driver as is (``_insert_rows``).
        stored_time = _RECORDS.c.received_at.type.dialect_impl(conn.dialect)
        self._time = stored_time.bind_processor(conn.dialect) or _unchanged

    def lock_log(self) -> int:
        """Take the sequencer lock (a write to the one log_state row); return the size.

        On SQLite this takes the database's write lock; on PostgreSQL the row lock. Either
        way it is held until the unit of work ends, so one batch appends at a time. One
        statement: the UPDATE returns the size it locked (SQLite >= 3.35, PostgreSQL).
        """
        size = self._c.execute(_LOCK_LOG).scalar()
        if size is None:
            raise StorageError("log_state row is missing: the schema was not migrated")
        return int(size)

    def set_log_size(self, size: int) -> None:
        self._c.execute(_SET_LOG_SIZE, {"size": size})

    def latest_checkpoint_size(self) -> int | None:
        return self._c.execute(_LATEST_CHECKPOINT_SIZE).scalar()

    def count_records(self, start: int, end: int) -> int:
        """How many of the entries ``[start, end)`` are stored."""
        index = _RECORDS.c.log_index
        query = select(func.count()).where(index >= start, index < end)
        return int(self._c.execute(query).scalar() or 0)

    def existing_indexes(self, record_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for i in range(0, len(record_ids), _CHUNK):
            rows = self._c.execute(_EXISTING, {"ids": list(record_ids[i : i + _CHUNK])})
            found.update({r: idx for r, idx in rows})
        return found

    def insert_records(self, records: Sequence[StoredRecord]) -> None:
        # Every record of a batch has one received_at: convert it for the driver once.
        bound: dict[datetime, object] = {}
        for r in records:
            if r.received_at not in bound:
                bound[r.received_at] = self._time(r.received_at)
        self._insert_rows(
            _RECORD_FIELDS,
            [
                (
                    r.log_index,
                    r.record_id,
                    r.payload_type,
                    r.payload,
                    _encode_signatures(r.signatures),
                    r.signer,
                    r.origin,
                    bound[r.received_at],
                )
                for r in records
            ],
            table="records",
        )
        insert_disclosures(self._c, [(r.record_id, d) for r in records for d in r.disclosures])

    def erase(self, erasure_id: str, at: datetime, record_ids: Sequence[str]) -> int:
        """Delete the named records' disclosures and index entries (an erasure record
        appended in this unit of work); how many disclosures went."""
        return erase(self._c, erasure_id, at, record_ids)

    def insert_nodes(self, nodes: Sequence[tuple[tuple[int, int], bytes]]) -> None:
        self._insert_rows(
            ("level", "idx", "hash"), [(lvl, idx, h) for (lvl, idx), h in nodes], table="log_nodes"
        )

    def get_listing(self, listing_id: str) -> ListingProjection | None:
        row = self._c.execute(_LISTING_BY_ID, {"listing_id": listing_id}).first()
        return None if row is None else ListingProjection(*row)

    def record_payload(self, record_id: str) -> tuple[str, bytes] | None:
        """``(payload_type, payload)`` of a stored record (this batch's too)."""
        row = self._c.execute(
            select(_RECORDS.c.payload_type, _RECORDS.c.payload).where(
                _RECORDS.c.record_id == record_id
            )
        ).first()
        return None if row is None else (str(row[0]), bytes(row[1]))

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

    def _insert_rows(
        self, columns: Sequence[str], rows: Sequence[tuple[object, ...]], *, table: str
    ) -> None:
        """Rows of driver-ready values as multi-row INSERTs handed to the driver as is.

        One statement per table and batch: an executemany runs the statement once per
        row, and on SQLite releases and retakes the GIL each time, which under load
        costs more than the insert. Only the values are bound; the text is built from
        the schema's own names (the caller's constants) and placeholders.
        """
        if not rows:
            return
        mark = "?" if self._c.dialect.paramstyle == "qmark" else "%s"
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608
        placeholders = "(" + ", ".join([mark] * len(columns)) + ")"
        per_statement = max(1, _MAX_PARAMETERS // len(columns))
        for i in range(0, len(rows), per_statement):
            chunk = rows[i : i + per_statement]
            values = ", ".join([placeholders] * len(chunk))
            self._c.exec_driver_sql(head + values, tuple(v for row in chunk for v in row))

    def pending_listing_ids(self, listing_ids: Sequence[str]) -> set[str]:
        """Which of ``listing_ids`` have records waiting for them."""
        found: set[str] = set()
        for i in range(0, len(listing_ids), _CHUNK):
            found.update(
                self._c.execute(_PENDING_FOR, {"ids": list(listing_ids[i : i + _CHUNK])}).scalars()
            )
        return found

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
            select(*(_RECORDS.c[f] for f in _RECORD_FIELDS))
            .join(_PENDING, _PENDING.c.record_id == _RECORDS.c.record_id)
            .where(_PENDING.c.listing_id == listing_id)
            .order_by(_RECORDS.c.log_index)
        ).all()
        if rows:
            self._c.execute(delete(_PENDING).where(_PENDING.c.listing_id == listing_id))
        return [_stored_record(r) for r in rows]

    def put_member(
        self,
        member_id: str,
        record_id: str,
        issued_at: datetime,
        role: int,
        status: int,
        region_code: str,
        scope: int | None = None,
    ) -> None:
        values = {
            "record_id": record_id,
            "issued_at": issued_at,
            "role": role,
            "status": status,
            "region_code": region_code,
            "scope": scope,
        }
        changed = self._c.execute(
            update(_MEMBERS).where(_MEMBERS.c.member_id == member_id).values(values)
        )
        if not changed.rowcount:
            self._c.execute(insert(_MEMBERS).values(member_id=member_id, **values))

    def get_member_version(self, member_id: str) -> tuple[datetime, str] | None:
        row = self._c.execute(
            select(_MEMBERS.c.issued_at, _MEMBERS.c.record_id).where(
                _MEMBERS.c.member_id == member_id
            )
        ).first()
        return None if row is None else (row[0], row[1])

    def member_scope(self, member_id: str) -> int | None:
        """AuthorityScope of the member's current record, as projected (None: not one)."""
        return self._c.execute(
            select(_MEMBERS.c.scope).where(_MEMBERS.c.member_id == member_id)
        ).scalar()

    def member_region(self, member_id: str) -> str | None:
        """Region code of the member's current record, as projected."""
        return self._c.execute(
            select(_MEMBERS.c.region_code).where(_MEMBERS.c.member_id == member_id)
        ).scalar()

    def put_peer_cursor(self, cursor: PeerCursor) -> None:
        """Save a peer's replication state with the records of the same batch."""
        _merge_cursor(self._c, cursor)

    def insert_checkpoint(self, cp: StoredCheckpoint) -> None:
        self._c.execute(
            insert(_TABLES["checkpoints"]).values(
                tree_size=cp.tree_size, root_hash=cp.root_hash, note=cp.note, signed_at=cp.signed_at
            )
        )


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


class SqlStore:
    """Reads for the use cases, and ``unit_of_work()`` for the sequencer's writes.

    Log reads never hand out what storage lost or altered: entries come contiguous and
    each hashes to its record id, nodes come complete, and nothing in a range of
    ``damage`` (kept by ``gateway.storage.integrity``) is read; any of these raises
    ``LogDamageError`` (``DATA_LOSS``) instead.
    """

    def __init__(self, engine: Engine, *, subject_index: SubjectIndex | None = None) -> None:
        """``subject_index``: the key of the lookup index, needed to write listings and to
        look subjects up (read-only tools open the store without it)."""
        self.engine = engine
        self.damage = DamageMap()
        self.subject_index = subject_index
        # An erasure's WAL truncation still to do (SQLite; see truncate_wal).
        self.wal_pending = False
        self._wal_lock = threading.Lock()

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        try:
            with self.engine.begin() as conn:
                yield UnitOfWork(conn, self.subject_index)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def truncate_wal(self) -> bool:
        """SQLite: checkpoint and truncate the WAL (after an erasure); else nothing.

        False when a reader or writer kept it busy: ``wal_pending`` then stays set until
        a later call (the gateway's ticker retries) succeeds. Calls are serialized, so
        the flag always tells the outcome of the latest attempt."""
        with self._wal_lock:
            try:
                done = truncate_wal(self.engine)
            except SQLAlchemyError as e:
                self.wal_pending = True
                raise StorageError(f"WAL checkpoint failed: {e}") from e
            if not done:
                logger.warning(
                    "the WAL could not be truncated after an erasure (a reader or writer "
                    "is busy); erased values stay on disk until the next attempt"
                )
            self.wal_pending = not done
            return done

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self.engine) as session:
                yield session
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e

    @contextmanager
    def _read_rows(self) -> Iterator[Connection]:
        """A connection for Core reads of plain rows: no ORM session or objects, and no
        transaction (on PostgreSQL that saves the BEGIN and ROLLBACK round trips)."""
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e

    # -- log ---------------------------------------------------------------------------

    def log_size(self) -> int:
        with self._read() as s:
            size = s.scalar(select(LogStateRow.tree_size).where(LogStateRow.id == 1))
        if size is None:
            raise StorageError("log_state row is missing: the schema was not migrated")
        return size

    def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        """NodeReader: hashes of the requested complete subtrees, in request order."""
        # A proof needs about one node per level: fetch them all with one statement (a
        # join with the wanted ids as VALUES, each a primary-key lookup) instead of one
        # query per level, on an autocommit connection: nodes never change once written,
        # so the read needs no transaction (on PostgreSQL that saves the BEGIN and
        # ROLLBACK round trips). The SQL goes to the driver as is: building and compiling
        # it through SQLAlchemy costs more than running it, and a row-value IN would
        # make SQLite scan the table.
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        wanted = list(dict.fromkeys(ids))
        found: dict[tuple[int, int], bytes] = {}
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for i in range(0, len(wanted), _CHUNK // 2):
                    chunk = wanted[i : i + _CHUNK // 2]
                    values = ", ".join([f"({mark}, {mark})"] * len(chunk))
                    # Only integers are bound; the text is built from constants alone.
                    query = (
                        "SELECT n.level, n.idx, n.hash FROM log_nodes AS n "  # noqa: S608
                        f"JOIN (VALUES {values}) AS w ON n.level = w.column1 "
                        "AND n.idx = w.column2"
                    )
                    params = tuple(x for node_id in chunk for x in node_id)
                    rows = conn.exec_driver_sql(query, params)
                    found.update({(level, idx): bytes(h) for level, idx, h in rows})
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e
        missing = [i for i in ids if i not in found]
        if missing:
            raise LogDamageError(
                f"log nodes missing from storage: {', '.join(map(str, missing[:4]))}"
            )
        if len(self.damage):
            for node_id in wanted:
                damage = self.damage.node(node_id)
                if damage is not None:
                    raise LogDamageError(f"log node {node_id} is damaged: {describe(damage)}")
        return [found[i] for i in ids]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._read() as s:
            row = s.scalars(
                select(CheckpointRow).order_by(CheckpointRow.tree_size.desc()).limit(1)
            ).first()
            return None if row is None else _checkpoint(row)

    def checkpoint_at(self, tree_size: int) -> StoredCheckpoint | None:
        with self._read() as s:
            row = s.get(CheckpointRow, tree_size)
            return None if row is None else _checkpoint(row)

    def checkpoint_after(self, tree_size: int) -> StoredCheckpoint | None:
        """The smallest checkpoint of a tree larger than ``tree_size``."""
        with self._read() as s:
            row = s.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.tree_size > tree_size)
                .order_by(CheckpointRow.tree_size)
                .limit(1)
            ).first()
            return None if row is None else _checkpoint(row)

    def put_cosignature(self, tree_size: int, cosigner: str, line: str, timestamp: int) -> int:
        """Keep ``line`` unless the cosigner's held cosignature of that checkpoint is
        newer: cosignature times never move backwards. Returns the timestamp now held."""
        try:
            with Session(self.engine) as s, s.begin():
                held = s.get(CosignatureRow, (tree_size, cosigner), with_for_update=True)
                if held is not None and held.timestamp > timestamp:
                    return held.timestamp
                s.merge(
                    CosignatureRow(
                        tree_size=tree_size,
                        cosigner=cosigner,
                        signature_line=line,
                        timestamp=timestamp,
                    )
                )
                return timestamp
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def cosignatures(self, tree_size: int) -> list[str]:
        with self._read() as s:
            return list(
                s.scalars(
                    select(CosignatureRow.signature_line)
                    .where(CosignatureRow.tree_size == tree_size)
                    .order_by(CosignatureRow.cosigner)
                )
            )

    # -- records -----------------------------------------------------------------------

    def record_by_id(self, record_id: str) -> StoredRecord | None:
        with self._read() as s:
            row = s.scalars(select(RecordRow).where(RecordRow.record_id == record_id)).first()
            record = None if row is None else _record(row)
            if record is not None:
                (record,) = _disclosed(s.connection(), [record])
        if record is not None:
            self._intact([record])
        return record

    def require_entry(self, index: int) -> None:
        """Raise ``LogDamageError`` unless entry ``index`` (below the log's size) is
        stored and outside every damaged range."""
        damage = self.damage.entries(index, index + 1)
        if damage is not None:
            raise LogDamageError(f"log {describe(damage)}")
        with self._read_rows() as conn:
            held = conn.execute(_HAS_ENTRY, {"index": index}).first()
        if held is None:
            raise LogDamageError(f"log entry {index} is missing from storage")

    def _intact(self, records: Sequence[StoredRecord]) -> None:
        """Raise ``LogDamageError`` for a record in a damaged range, or whose bytes no
        longer hash to its record id (the SHA-256 its log leaf was built over)."""
        if len(self.damage):
            for r in records:
                damage = self.damage.entries(r.log_index, r.log_index + 1)
                if damage is not None:
                    raise LogDamageError(f"log {describe(damage)}")
        for r in records:
            if hashlib.sha256(pae(r.payload_type, r.payload)).hexdigest() != r.record_id:
                raise LogDamageError(
                    f"log entry {r.log_index} (record {r.record_id}) is altered in storage: "
                    "its bytes do not hash to its record id"
                )

    def payloads_by_ids(self, listing_ids: Sequence[str]) -> dict[str, bytes]:
        """The payload bytes of the given listings, each followed by the values of its
        disclosures (``listings.disclosed``, as lookups read them): protobuf reads the
        concatenation as the listing with its committed fields."""
        out: dict[str, bytes] = {}
        with self._read() as s:
            conn = s.connection()
            for i in range(0, len(listing_ids), _CHUNK):
                chunk = {"ids": list(listing_ids[i : i + _CHUNK])}
                for rid, payload, disclosed in conn.execute(_LISTING_PAYLOADS, chunk):
                    out[rid] = bytes(payload) + bytes(disclosed or b"")
        return out

    def records_by_ids(
        self, record_ids: Sequence[str], *, disclosed: bool = True
    ) -> dict[str, StoredRecord]:
        """The records, with their disclosures unless ``disclosed`` is False (callers
        that read only the fields signed in the clear: deadlines, periods, notices)."""
        out: dict[str, StoredRecord] = {}
        with self._read() as s:
            for i in range(0, len(record_ids), _CHUNK):
                rows = s.scalars(
                    select(RecordRow).where(RecordRow.record_id.in_(record_ids[i : i + _CHUNK]))
                )
                out.update({r.record_id: _record(r) for r in rows})
            records = list(out.values())
            if disclosed:
                records = _disclosed(s.connection(), records)
        self._intact(records)
        return {r.record_id: r for r in records}

    def records_range(self, start: int, end: int, *, limit: int = 1000) -> list[StoredRecord]:
        """The entries ``[start, min(end, start + limit))``, every one of them, in order.

        ``end`` must not pass the log's size: an index below it without its record is a
        hole in the log (``LogDamageError``), never a shorter answer.
        """
        stop = min(end, start + limit)
        if start >= stop:
            return []
        with self._read() as s:
            rows = s.scalars(
                select(RecordRow)
                .where(RecordRow.log_index >= start, RecordRow.log_index < stop)
                .order_by(RecordRow.log_index)
            ).all()
            records = _disclosed(s.connection(), [_record(r) for r in rows])
        if len(records) != stop - start:
            held = {r.log_index for r in records}
            first = next(i for i in range(start, stop) if i not in held)
            raise LogDamageError(f"log entry {first} is missing from storage")
        self._intact(records)
        return records

    def records_of_types(self, payload_types: Sequence[str]) -> list[StoredRecord]:
        """Every record of the given types in log order (start-up loading of members).

        Read whole inside the transaction: a caller that fails on one record (a damaged
        database) must not leave a suspended read holding the transaction open."""
        with self._read() as s:
            rows = s.scalars(
                select(RecordRow)
                .where(RecordRow.payload_type.in_(payload_types))
                .order_by(RecordRow.log_index)
            )
            return _disclosed(s.connection(), [_record(row) for row in rows])

    def records_of_types_range(
        self, payload_types: Sequence[str], start: int, end: int, *, limit: int = 1000
    ) -> list[StoredRecord]:
        """The records of the given types among entries ``[start, end)``, in log order,
        at most ``limit`` (the public feed's index: listings, removals, members), each
        checked intact."""
        with self._read() as s:
            rows = s.scalars(
                select(RecordRow)
                .where(
                    RecordRow.log_index >= start,
                    RecordRow.log_index < end,
                    RecordRow.payload_type.in_(payload_types),
                )
                .order_by(RecordRow.log_index)
                .limit(limit)
            )
            records = _disclosed(s.connection(), [_record(row) for row in rows])
        self._intact(records)
        return records

    # -- projections -------------------------------------------------------------------

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
            for i in range(0, len(listing_ids), _CHUNK):
                rows = conn.execute(_SANCTIONS_FOR, {"ids": list(listing_ids[i : i + _CHUNK])})
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

    # -- federation -------------------------------------------------------------------

    def peer_cursor(self, peer: str) -> PeerCursor | None:
        with self._read() as s:
            row = s.get(PeerCursorRow, peer)
            return None if row is None else _cursor(row)

    def peer_cursors(self) -> list[PeerCursor]:
        with self._read() as s:
            return [
                _cursor(r) for r in s.scalars(select(PeerCursorRow).order_by(PeerCursorRow.peer))
            ]

    def put_peer_cursor(self, cursor: PeerCursor) -> None:
        """Save a peer's state on its own (a new checkpoint, a failure, no records)."""
        try:
            with self.engine.begin() as conn:
                _merge_cursor(conn, cursor)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def add_evidence(self, evidence: StoredEvidence) -> None:
        try:
            with Session(self.engine) as s, s.begin():
                s.add(
                    FederationEvidenceRow(
                        peer=evidence.peer,
                        origin=evidence.origin,
                        kind=evidence.kind,
                        accepted_note=evidence.accepted_note,
                        conflicting_note=evidence.conflicting_note,
                        proof="".join(b64encode(h).decode() + "\n" for h in evidence.proof),
                        detail=evidence.detail,
                        recorded_at=evidence.recorded_at,
                    )
                )
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def evidence(self, peer: str | None = None) -> list[StoredEvidence]:
        q = select(FederationEvidenceRow).order_by(FederationEvidenceRow.id)
        if peer is not None:
            q = q.where(FederationEvidenceRow.peer == peer)
        with self._read() as s:
            return [
                StoredEvidence(
                    peer=r.peer,
                    origin=r.origin,
                    kind=r.kind,
                    accepted_note=r.accepted_note,
                    conflicting_note=r.conflicting_note,
                    proof=tuple(b64decode(line) for line in r.proof.splitlines()),
                    detail=r.detail,
                    recorded_at=r.recorded_at,
                )
                for r in s.scalars(q)
            ]

    def known_record_ids(self, record_ids: Sequence[str]) -> set[str]:
        """Those of ``record_ids`` already in the log."""
        found: set[str] = set()
        with self._read() as s:
            for i in range(0, len(record_ids), _CHUNK):
                found.update(
                    s.scalars(
                        select(RecordRow.record_id).where(
                            RecordRow.record_id.in_(record_ids[i : i + _CHUNK])
                        )
                    )
                )
        return found

    def record_ids(self) -> list[str]:
        """Every record id in the log, sorted (to compare two gateways' record sets)."""
        with self._read() as s:
            return list(s.scalars(select(RecordRow.record_id).order_by(RecordRow.record_id)))


def _checkpoint(row: CheckpointRow) -> StoredCheckpoint:
    return StoredCheckpoint(
        tree_size=row.tree_size, root_hash=row.root_hash, note=row.note, signed_at=row.signed_at
    )


def _cursor(row: PeerCursorRow) -> PeerCursor:
    hashes = row.range_hashes
    return PeerCursor(
        peer=row.peer,
        origin=row.origin,
        next_index=row.next_index,
        range_hashes=tuple(hashes[i : i + 32] for i in range(0, len(hashes), 32)),
        checkpoint_size=row.checkpoint_size,
        checkpoint_root=row.checkpoint_root,
        checkpoint_note=row.checkpoint_note,
        caught_up_at=row.caught_up_at,
        last_success_at=row.last_success_at,
        consecutive_failures=row.consecutive_failures,
        last_error=row.last_error,
        updated_at=row.updated_at,
    )


def _merge_cursor(conn: Connection, c: PeerCursor) -> None:
    """Insert or update; a cursor never moves backwards (two replicas pulling one peer)."""
    row = conn.execute(select(_CURSORS).where(_CURSORS.c.peer == c.peer).with_for_update()).first()
    if row is not None and row.origin == c.origin:
        if row.next_index > c.next_index:
            hashes = row.range_hashes
            c = dataclasses.replace(
                c,
                next_index=row.next_index,
                range_hashes=tuple(hashes[i : i + 32] for i in range(0, len(hashes), 32)),
            )
        if row.checkpoint_size > c.checkpoint_size:
            c = dataclasses.replace(
                c,
                checkpoint_size=row.checkpoint_size,
                checkpoint_root=row.checkpoint_root,
                checkpoint_note=row.checkpoint_note,
            )
    values = {f.name: getattr(c, f.name) for f in dataclasses.fields(PeerCursor)}
    values["range_hashes"] = b"".join(c.range_hashes)
    if row is None:
        conn.execute(insert(_CURSORS).values(values))
    else:
        conn.execute(update(_CURSORS).where(_CURSORS.c.peer == c.peer).values(values))
