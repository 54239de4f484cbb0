"""The log in SQL: its records, its nodes and its size (``records``, ``log_nodes``,
``log_state``).

``LogWrites`` is the part of ``UnitOfWork`` that appends (the sequencer lock, records
with their disclosures, nodes, the new size); ``LogStore`` the part of ``SqlStore``
that reads, and never hands out what storage lost or altered: entries come contiguous
and each hashes to its record id, nodes come complete, and nothing in a range of
``damage`` is read (``LogDamageError`` instead).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from base64 import b64decode, b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.disclosure import Disclosure
from gateway.core.dsse import pae
from gateway.core.logcheck import describe
from gateway.core.statements import REDACTABLE_TYPES
from gateway.errors import LogDamageError, StorageError
from gateway.storage.base import CHUNK, StoreBase, UnitBase, autocommit, placeholder
from gateway.storage.disclosures import DISCLOSURE_FIELDS, disclosures_for, erase
from gateway.storage.models import Base, LogStateRow, RecordRow

__all__ = ["RECORD_FIELDS", "LogStore", "LogWrites", "StoredRecord", "stored_record"]

_TABLES = Base.metadata.tables
# The statements every commit runs, as fixed text for the driver (no compilation or
# parameter processing per commit; UnitBase._select_in). The lock is a write to the one
# log_state row that returns the size it locked (SQLite >= 3.35, PostgreSQL).
_LOCK_LOG = "UPDATE log_state SET tree_size = tree_size WHERE id = 1 RETURNING tree_size"
_SET_LOG_SIZE = "UPDATE log_state SET tree_size = {mark} WHERE id = 1"
_EXISTING = "SELECT record_id, log_index FROM records WHERE record_id"
_RECORDS = _TABLES["records"]
_HAS_ENTRY = select(_RECORDS.c.log_index).where(_RECORDS.c.log_index == bindparam("index"))


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


# The records columns, in the order of StoredRecord's fields.
RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(StoredRecord) if f.name != "disclosures")


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


def stored_record(row: Row[Any]) -> StoredRecord:
    """A StoredRecord from a row of the records columns in ``RECORD_FIELDS`` order."""
    values = dict(zip(RECORD_FIELDS, row, strict=True))
    values["signatures"] = _decode_signatures(values["signatures"])
    return StoredRecord(**values)


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


class LogWrites(UnitBase):
    """The log's part of a ``UnitOfWork``."""

    def lock_log(self) -> int:
        """Take the sequencer lock (a write to the one log_state row); return the size.

        On SQLite this takes the database's write lock; on PostgreSQL the row lock. Either
        way it is held until the unit of work ends, so one batch appends at a time. One
        statement: the UPDATE returns the size it locked (SQLite >= 3.35, PostgreSQL).
        """
        size = self._c.exec_driver_sql(_LOCK_LOG).scalar()
        if size is None:
            raise StorageError("log_state row is missing: the schema was not migrated")
        return int(size)

    def set_log_size(self, size: int) -> None:
        self._c.exec_driver_sql(_SET_LOG_SIZE.format(mark=placeholder(self._c.dialect)), (size,))

    def count_records(self, start: int, end: int) -> int:
        """How many of the entries ``[start, end)`` are stored."""
        index = _RECORDS.c.log_index
        query = select(func.count()).where(index >= start, index < end)
        return int(self._c.execute(query).scalar() or 0)

    def existing_indexes(self, record_ids: Sequence[str]) -> dict[str, int]:
        return {row[0]: row[1] for row in self._select_in(_EXISTING, record_ids)}

    def insert_records(self, records: Sequence[StoredRecord]) -> None:
        # Every record of a batch has one received_at: convert it for the driver once.
        bound: dict[datetime, object] = {}
        for r in records:
            if r.received_at not in bound:
                bound[r.received_at] = self._time(r.received_at)
        self._insert_rows(
            RECORD_FIELDS,
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
        # In the same multi-row INSERT as the records (an executemany cost about a sixth
        # of a 256-record append's CPU). An erasure marks only records already held, and
        # a held record is never appended again: no erased record comes back this way.
        self._insert_rows(
            DISCLOSURE_FIELDS,
            [(r.log_index, int(d.group), d.salt, d.value) for r in records for d in r.disclosures],
            table="disclosures",
        )

    def erase(self, erasure_id: str, at: datetime, record_ids: Sequence[str]) -> int:
        """Delete the named records' disclosures and index entries (an erasure record
        appended in this unit of work); how many disclosures went."""
        return erase(self._c, erasure_id, at, record_ids)

    def insert_nodes(self, nodes: Sequence[tuple[tuple[int, int], bytes]]) -> None:
        self._insert_rows(
            ("level", "idx", "hash"), [(lvl, idx, h) for (lvl, idx), h in nodes], table="log_nodes"
        )

    def record_payload(self, record_id: str) -> tuple[str, bytes] | None:
        """``(payload_type, payload)`` of a stored record (this batch's too)."""
        row = self._c.execute(
            select(_RECORDS.c.payload_type, _RECORDS.c.payload).where(
                _RECORDS.c.record_id == record_id
            )
        ).first()
        return None if row is None else (str(row[0]), bytes(row[1]))


class LogStore(StoreBase):
    """The log's part of a ``SqlStore``: its size, nodes and records, each checked."""

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
        mark = placeholder(self.engine.dialect)
        wanted = list(dict.fromkeys(ids))
        found: dict[tuple[int, int], bytes] = {}
        try:
            with autocommit(self.engine) as conn:
                for i in range(0, len(wanted), CHUNK // 2):
                    chunk = wanted[i : i + CHUNK // 2]
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

    def records_by_ids(
        self, record_ids: Sequence[str], *, disclosed: bool = True
    ) -> dict[str, StoredRecord]:
        """The records, with their disclosures unless ``disclosed`` is False (callers
        that read only the fields signed in the clear: deadlines, periods, notices)."""
        out: dict[str, StoredRecord] = {}
        with self._read() as s:
            for i in range(0, len(record_ids), CHUNK):
                rows = s.scalars(
                    select(RecordRow).where(RecordRow.record_id.in_(record_ids[i : i + CHUNK]))
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

    def known_record_ids(self, record_ids: Sequence[str]) -> set[str]:
        """Those of ``record_ids`` already in the log."""
        found: set[str] = set()
        with self._read() as s:
            for i in range(0, len(record_ids), CHUNK):
                found.update(
                    s.scalars(
                        select(RecordRow.record_id).where(
                            RecordRow.record_id.in_(record_ids[i : i + CHUNK])
                        )
                    )
                )
        return found

    def record_ids(self) -> list[str]:
        """Every record id in the log, sorted (to compare two gateways' record sets)."""
        with self._read() as s:
            return list(s.scalars(select(RecordRow.record_id).order_by(RecordRow.record_id)))
