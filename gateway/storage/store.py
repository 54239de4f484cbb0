"""The SQL adapter behind the use cases: records, log nodes, checkpoints, projections.

Only this package imports sqlalchemy. Writes happen in a ``UnitOfWork`` (one
transaction); the sequencer is the only writer of records, log nodes and
projections, so the log and the state it implies never disagree.
"""

from __future__ import annotations

import dataclasses
import json
from base64 import b64decode, b64encode
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    ARRAY,
    Connection,
    Engine,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.errors import StorageError
from gateway.storage.models import (
    AccessLogRow,
    Base,
    CheckpointRow,
    CosignatureRow,
    FederationEvidenceRow,
    ListingRow,
    LogStateRow,
    MemberRow,
    PeerCursorRow,
    PendingRow,
    RecordRow,
    SanctionRow,
    StepRow,
)

# SQLite limits bound parameters per statement; stay well below it.
_CHUNK = 500

_TABLES = Base.metadata.tables
_LOG_STATE = _TABLES["log_state"]
_LOCK_LOG = update(_LOG_STATE).where(_LOG_STATE.c.id == 1).values(id=1)
_LOG_SIZE = select(_LOG_STATE.c.tree_size).where(_LOG_STATE.c.id == 1)
_SET_LOG_SIZE = update(_LOG_STATE).where(_LOG_STATE.c.id == 1).values(tree_size=bindparam("size"))
_RECORDS = _TABLES["records"]
_EXISTING = select(_RECORDS.c.record_id, _RECORDS.c.log_index).where(
    _RECORDS.c.record_id.in_(bindparam("ids", expanding=True))
)
_INSERT_RECORD = insert(_RECORDS)
_PAYLOADS = select(_RECORDS.c.record_id, _RECORDS.c.payload).where(
    _RECORDS.c.record_id.in_(bindparam("ids", expanding=True))
)
_INSERT_NODE = insert(_TABLES["log_nodes"])
_INSERT_LISTING = insert(_TABLES["listings"])
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


@dataclass(frozen=True)
class ListingProjection:
    listing_id: str
    subject_key: str
    issuer: str
    list_kind: int
    conduct: int
    region_code: str
    listed_at: datetime
    deadline: datetime
    step: int
    in_force: bool
    log_index: int


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
_SANCTIONS = _TABLES["sanctions"]
_SANCTION_ORDER = (_SANCTIONS.c.platform, _SANCTIONS.c.measure, _SANCTIONS.c.measure_other)
_SANCTIONS_FOR = (
    select(*(_SANCTIONS.c[f] for f in _SANCTION_FIELDS))
    .where(_SANCTIONS.c.listing_id.in_(bindparam("ids", expanding=True)))
    .order_by(*_SANCTION_ORDER)
)
# A subject lookup reads everything a response needs in one statement: per listing,
# the ListingProjection columns in field order, its record's payload (NULL only if the
# invariant that both are written in one transaction were broken), then one row per
# sanction (SanctionProjection columns, all NULL for a listing without sanctions).
_SUBJECT_LISTINGS_ALL = (
    select(
        *(_LISTINGS.c[f] for f in _LISTING_FIELDS),
        _RECORDS.c.payload,
        *(_SANCTIONS.c[f] for f in _SANCTION_FIELDS),
    )
    .select_from(
        _LISTINGS.outerjoin(_RECORDS, _RECORDS.c.record_id == _LISTINGS.c.listing_id).outerjoin(
            _SANCTIONS, _SANCTIONS.c.listing_id == _LISTINGS.c.listing_id
        )
    )
    .order_by(_LISTINGS.c.listed_at, _LISTINGS.c.listing_id, *_SANCTION_ORDER)
)
# The keys as one array parameter where the database has arrays (PostgreSQL): one
# statement for any number of keys, whose text does not change with their number, so
# neither SQLAlchemy nor the driver re-renders a placeholder per key. Elsewhere an IN
# list of at most _CHUNK keys.
_SUBJECT_LISTINGS_ANY = _SUBJECT_LISTINGS_ALL.where(
    _LISTINGS.c.subject_key == any_(bindparam("keys", type_=ARRAY(String)))
)
_SUBJECT_LISTINGS_IN = _SUBJECT_LISTINGS_ALL.where(
    _LISTINGS.c.subject_key.in_(bindparam("keys", expanding=True))
)
_PAYLOAD_COLUMN = len(_LISTING_FIELDS)
_SANCTION_COLUMN = _PAYLOAD_COLUMN + 1


class SubjectListing(NamedTuple):
    """A listing found by subject, with what a lookup answers about it."""

    projection: ListingProjection
    payload: bytes | None  # the record's payload; None only if the record were missing
    sanctions: list[SanctionProjection]  # in (platform, measure, measure_other) order


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
    )


def _sanction(row: SanctionRow) -> SanctionProjection:
    return SanctionProjection(
        listing_id=row.listing_id,
        platform=row.platform,
        measure=row.measure,
        measure_other=row.measure_other,
        action=row.action,
        effective_at=row.effective_at,
        record_id=row.record_id,
    )


class UnitOfWork:
    """The writes of one sequencer batch, committed together or not at all."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def lock_log(self) -> int:
        """Take the sequencer lock (a write to the one log_state row); return the size.

        On SQLite this takes the database's write lock; on PostgreSQL the row lock. Either
        way it is held until the unit of work ends, so one batch appends at a time.
        """
        conn = self._s.connection()
        conn.execute(_LOCK_LOG)
        size = conn.execute(_LOG_SIZE).scalar()
        if size is None:
            raise StorageError("log_state row is missing: the schema was not migrated")
        return int(size)

    def set_log_size(self, size: int) -> None:
        self._s.connection().execute(_SET_LOG_SIZE, {"size": size})

    def latest_checkpoint_size(self) -> int | None:
        return self._s.scalar(select(func.max(CheckpointRow.tree_size)))

    def existing_indexes(self, record_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        conn = self._s.connection()
        for i in range(0, len(record_ids), _CHUNK):
            rows = conn.execute(_EXISTING, {"ids": list(record_ids[i : i + _CHUNK])})
            found.update({r: idx for r, idx in rows})
        return found

    # The hot path of every batch uses Core statements built once (no ORM unit of work).

    def insert_records(self, records: Sequence[StoredRecord]) -> None:
        if not records:
            return
        self._s.connection().execute(
            _INSERT_RECORD,
            [
                {
                    "log_index": r.log_index,
                    "record_id": r.record_id,
                    "payload_type": r.payload_type,
                    "payload": r.payload,
                    "signatures": _encode_signatures(r.signatures),
                    "signer": r.signer,
                    "origin": r.origin,
                    "received_at": r.received_at,
                }
                for r in records
            ],
        )

    def insert_nodes(self, nodes: Sequence[tuple[tuple[int, int], bytes]]) -> None:
        if nodes:
            self._s.connection().execute(
                _INSERT_NODE, [{"level": lvl, "idx": idx, "hash": h} for (lvl, idx), h in nodes]
            )

    def get_listing(self, listing_id: str) -> ListingProjection | None:
        row = self._s.get(ListingRow, listing_id)
        return None if row is None else listing_projection(row)

    def insert_listings(self, projections: Sequence[ListingProjection]) -> None:
        """All listings of a batch in one executemany."""
        if projections:
            self._s.connection().execute(
                _INSERT_LISTING,
                [{f: getattr(p, f) for f in _LISTING_FIELDS} for p in projections],
            )

    def pending_listing_ids(self, listing_ids: Sequence[str]) -> set[str]:
        """Which of ``listing_ids`` have records waiting for them."""
        found: set[str] = set()
        conn = self._s.connection()
        for i in range(0, len(listing_ids), _CHUNK):
            found.update(
                conn.execute(_PENDING_FOR, {"ids": list(listing_ids[i : i + _CHUNK])}).scalars()
            )
        return found

    def set_listing_step(self, listing_id: str, step: int, in_force: bool) -> None:
        self._s.execute(
            update(ListingRow)
            .where(ListingRow.listing_id == listing_id)
            .values(step=step, in_force=in_force)
        )

    def insert_step(self, record_id: str, listing_id: str, step: int, at: datetime) -> None:
        self._s.add(StepRow(record_id=record_id, listing_id=listing_id, step=step, effective_at=at))

    def get_sanction(
        self, listing_id: str, platform: str, measure: int, measure_other: str
    ) -> SanctionProjection | None:
        row = self._s.get(SanctionRow, (listing_id, platform, measure, measure_other))
        return None if row is None else _sanction(row)

    def put_sanction(self, p: SanctionProjection) -> None:
        self._s.merge(
            SanctionRow(
                listing_id=p.listing_id,
                platform=p.platform,
                measure=p.measure,
                measure_other=p.measure_other,
                action=p.action,
                effective_at=p.effective_at,
                record_id=p.record_id,
            )
        )
        self._s.flush()

    def add_pending(self, record_id: str, listing_id: str) -> None:
        self._s.add(PendingRow(record_id=record_id, listing_id=listing_id))
        self._s.flush()

    def take_pending(self, listing_id: str) -> list[StoredRecord]:
        """Records that waited for ``listing_id``, in log order; they stop waiting."""
        rows = self._s.scalars(
            select(RecordRow)
            .join(PendingRow, PendingRow.record_id == RecordRow.record_id)
            .where(PendingRow.listing_id == listing_id)
            .order_by(RecordRow.log_index)
        ).all()
        if rows:
            self._s.execute(delete(PendingRow).where(PendingRow.listing_id == listing_id))
        return [_record(r) for r in rows]

    def put_member(
        self,
        member_id: str,
        record_id: str,
        issued_at: datetime,
        role: int,
        status: int,
        region_code: str,
    ) -> None:
        self._s.merge(
            MemberRow(
                member_id=member_id,
                record_id=record_id,
                issued_at=issued_at,
                role=role,
                status=status,
                region_code=region_code,
            )
        )
        self._s.flush()

    def get_member_version(self, member_id: str) -> tuple[datetime, str] | None:
        row = self._s.get(MemberRow, member_id)
        return None if row is None else (row.issued_at, row.record_id)

    def member_region(self, member_id: str) -> str | None:
        """Region code of the member's current record, as projected."""
        row = self._s.get(MemberRow, member_id)
        return None if row is None else row.region_code

    def put_peer_cursor(self, cursor: PeerCursor) -> None:
        """Save a peer's replication state with the records of the same batch."""
        _merge_cursor(self._s, cursor)

    def insert_checkpoint(self, cp: StoredCheckpoint) -> None:
        self._s.add(
            CheckpointRow(
                tree_size=cp.tree_size, root_hash=cp.root_hash, note=cp.note, signed_at=cp.signed_at
            )
        )


class SqlStore:
    """Reads for the use cases, and ``unit_of_work()`` for the sequencer's writes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield UnitOfWork(session)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

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
            raise StorageError(f"log nodes missing from storage: {missing[:4]}")
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

    def put_cosignature(self, tree_size: int, cosigner: str, line: str, timestamp: int) -> None:
        try:
            with Session(self.engine) as s, s.begin():
                s.merge(
                    CosignatureRow(
                        tree_size=tree_size,
                        cosigner=cosigner,
                        signature_line=line,
                        timestamp=timestamp,
                    )
                )
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
            return None if row is None else _record(row)

    def payloads_by_ids(self, record_ids: Sequence[str]) -> dict[str, bytes]:
        """Just the payload bytes of the given records (lookups return them verbatim)."""
        out: dict[str, bytes] = {}
        with self._read() as s:
            conn = s.connection()
            for i in range(0, len(record_ids), _CHUNK):
                rows = conn.execute(_PAYLOADS, {"ids": list(record_ids[i : i + _CHUNK])})
                out.update({rid: payload for rid, payload in rows})
        return out

    def records_by_ids(self, record_ids: Sequence[str]) -> dict[str, StoredRecord]:
        out: dict[str, StoredRecord] = {}
        with self._read() as s:
            for i in range(0, len(record_ids), _CHUNK):
                rows = s.scalars(
                    select(RecordRow).where(RecordRow.record_id.in_(record_ids[i : i + _CHUNK]))
                )
                out.update({r.record_id: _record(r) for r in rows})
        return out

    def records_range(self, start: int, end: int, *, limit: int = 1000) -> list[StoredRecord]:
        with self._read() as s:
            rows = s.scalars(
                select(RecordRow)
                .where(RecordRow.log_index >= start, RecordRow.log_index < end)
                .order_by(RecordRow.log_index)
                .limit(limit)
            ).all()
            return [_record(r) for r in rows]

    def records_of_types(self, payload_types: Sequence[str]) -> Iterator[StoredRecord]:
        """Every record of the given types in log order (start-up loading of members)."""
        with self._read() as s:
            for row in s.scalars(
                select(RecordRow)
                .where(RecordRow.payload_type.in_(payload_types))
                .order_by(RecordRow.log_index)
            ):
                yield _record(row)

    # -- projections -------------------------------------------------------------------

    def listings_for_subjects(self, keys: Sequence[str]) -> dict[str, list[SubjectListing]]:
        """Each subject key's listings, oldest first, with their payloads and sanctions."""
        if self.engine.dialect.name == "postgresql":
            statement, chunk = _SUBJECT_LISTINGS_ANY, max(len(keys), 1)
        else:
            statement, chunk = _SUBJECT_LISTINGS_IN, _CHUNK
        out: dict[str, list[SubjectListing]] = defaultdict(list)
        with self._read_rows() as conn:
            for i in range(0, len(keys), chunk):
                rows = conn.execute(statement, {"keys": list(keys[i : i + chunk])})
                listing_id = None
                sanctions: list[SanctionProjection] = []
                for row in rows.all():
                    if row[0] != listing_id:  # the first row of the next listing
                        listing_id = row[0]
                        sanctions = []
                        projection = ListingProjection(*row[:_PAYLOAD_COLUMN])
                        listing = SubjectListing(projection, row[_PAYLOAD_COLUMN], sanctions)
                        out[projection.subject_key].append(listing)
                    if row[_SANCTION_COLUMN] is not None:
                        sanctions.append(SanctionProjection(*row[_SANCTION_COLUMN:]))
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
            q = q.where(ListingRow.deadline < f.overdue_at)
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
            with Session(self.engine) as s, s.begin():
                _merge_cursor(s, cursor)
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

    # -- access log --------------------------------------------------------------------

    def log_access(self, rows: Sequence[tuple[datetime, str, str, str]]) -> None:
        """Append (at, member_id, rpc, detail) rows to the access log in one transaction."""
        if not rows:
            return
        try:
            with Session(self.engine) as s, s.begin():
                s.execute(
                    insert(AccessLogRow),
                    [{"at": a, "member_id": m, "rpc": r, "detail": d} for a, m, r, d in rows],
                )
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def access_log(self, member_id: str | None = None) -> list[tuple[datetime, str, str, str]]:
        """The access log in insertion order (for operators and tests)."""
        q = select(AccessLogRow).order_by(AccessLogRow.id)
        if member_id is not None:
            q = q.where(AccessLogRow.member_id == member_id)
        with self._read() as s:
            return [(r.at, r.member_id, r.rpc, r.detail) for r in s.scalars(q)]

    def prune_access_log(self, before: datetime) -> int:
        try:
            with Session(self.engine) as s, s.begin():
                result = s.execute(delete(AccessLogRow).where(AccessLogRow.at < before))
                return int(getattr(result, "rowcount", 0) or 0)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e


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


def _merge_cursor(s: Session, c: PeerCursor) -> None:
    """Insert or update; a cursor never moves backwards (two replicas pulling one peer)."""
    row = s.get(PeerCursorRow, c.peer, with_for_update=True)
    if row is None:
        row = PeerCursorRow(peer=c.peer)
        s.add(row)
    elif row.origin == c.origin:
        if row.next_index > c.next_index:
            c = dataclasses.replace(
                c, next_index=row.next_index, range_hashes=_cursor(row).range_hashes
            )
        if row.checkpoint_size > c.checkpoint_size:
            c = dataclasses.replace(
                c,
                checkpoint_size=row.checkpoint_size,
                checkpoint_root=row.checkpoint_root,
                checkpoint_note=row.checkpoint_note,
            )
    row.origin = c.origin
    row.next_index = c.next_index
    row.range_hashes = b"".join(c.range_hashes)
    row.checkpoint_size = c.checkpoint_size
    row.checkpoint_root = c.checkpoint_root
    row.checkpoint_note = c.checkpoint_note
    row.caught_up_at = c.caught_up_at
    row.last_success_at = c.last_success_at
    row.consecutive_failures = c.consecutive_failures
    row.last_error = c.last_error
    row.updated_at = c.updated_at
    s.flush()
