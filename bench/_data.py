"""Bench data: valid credit codes, realistic signed listings, subjects to check, and a
fast path that bulk-fills a log (records, disclosures, Merkle nodes, projections) to
10^6 leaves."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from gateway import codec
from gateway.core import dsse, merkle
from gateway.core.disclosure import Disclosure, Group
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    Subject,
    add_months,
)
from gateway.pb.alliance.v1 import disclosure_pb2 as dp
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import statements_pb2 as st
from gateway.storage.disclosures import SubjectIndex
from gateway.storage.models import DisclosureRow, ListingRow, LogNodeRow, RecordRow

from ._setup import Member

_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(_CHARSET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Yesterday at midnight UTC: inside the gateway's backdating window (a member may not
# date a listing much before it submits it) and never overdue during a run.
LISTED_AT = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
# A realistic listing: the PAE the gateway verifies is about 300 bytes.
_SUMMARY = (
    "Store ran paid fake-order campaigns to inflate sales volume and ratings; "
    "1,284 brushing orders found in the platform's risk review."
)
_LEGAL_BASIS = "E-Commerce Law art. 17; Anti-Unfair Competition Law art. 8"


def uscc(i: int, *, region: str = "330100") -> str:
    """The ``i``-th valid Unified Social Credit Code of an enterprise in ``region``."""
    body = f"{i:08d}"
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    org_check = {10: "X", 11: "0"}.get(11 - total % 11, str(11 - total % 11))
    code17 = f"91{region}{body}{org_check}"
    total = sum(_VALUE[c] * w for c, w in zip(code17, _WEIGHTS, strict=True))
    return code17 + _CHARSET[(31 - total % 31) % 31]


def subject(i: int) -> Subject:
    return Subject(uscc=uscc(i))


def listing(issuer: Member, i: int) -> Listing:
    return Listing(
        issuer=issuer.member_id,
        subject=subject(i),
        list=ListKind.BLACKLIST,
        conduct=ConductType.FAKE_TRANSACTIONS,
        region_code=issuer.region,
        decision_ref=f"ZJ-AMR-2026-{i:08d}",
        listed_at=LISTED_AT,
        summary=_SUMMARY,
        legal_basis=_LEGAL_BASIS,
    )


def signed_listings(issuer: Member, start: int, count: int) -> list[dsse.Envelope]:
    """``count`` distinct listings signed by ``issuer`` (subjects ``start`` onwards),
    each carrying its disclosures, as a member submits them."""
    return [codec.seal(listing(issuer, i), issuer.signing_key) for i in range(start, start + count)]


def fill_salt(group: Group, clear: bytes) -> bytes:
    """The salts of bulk-filled records: distinct per record and group (``clear`` holds
    the subject and the decision reference), and one hash instead of a signature."""
    return hashlib.sha256(b"bench-fill-salt\n" + bytes([group]) + clear).digest()


def submit_requests(envelopes: Sequence[dsse.Envelope]) -> list[bytes]:
    """Serialized SubmitRecordRequests, ready to send without client-side encoding."""
    return [
        ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)).SerializeToString()
        for e in envelopes
    ]


def batch_requests(records: Sequence[bytes], batch: int) -> list[bytes]:
    """Serialized SubmitBatches of ``batch`` records each, from serialized
    SubmitRecordRequests (a repeated field 1 is each record's tag, length and bytes)."""
    out = []
    for at in range(0, len(records), batch):
        out.append(b"".join(_field1(r) for r in records[at : at + batch]))
    return out


def _field1(raw: bytes) -> bytes:
    n, length = len(raw), bytearray()
    while True:
        if n < 0x80:
            length.append(n)
            break
        length.append((n & 0x7F) | 0x80)
        n >>= 7
    return b"\x0a" + bytes(length) + raw


def check_request(subject_ids: Sequence[int]) -> bytes:
    return ex.CheckSubjectsRequest(
        subjects=[codec.subject_to_pb(subject(i)) for i in subject_ids]
    ).SerializeToString()


# --- bulk fill ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FillStats:
    leaves: int
    seconds: float
    method: str


class LogFiller:
    """Appends listings to a migrated database without the gRPC stack or the ORM.

    It writes exactly what the sequencer would: the record rows (listing.v2 payload
    bytes of a real ``Listing``, verbatim), their disclosures, every completed
    perfect-subtree hash from a ``CompactRange``, the listing projections (the lookup
    key as the gateway's keyed digest, ``index``) and the log size, in transactions of
    ``chunk`` leaves with ``executemany``. To keep a 10^6 fill quick, each record is
    assembled from a template (checked against ``codec.encode_record`` when the filler
    is made), its salts are hashes (``fill_salt``), and every record carries one
    precomputed signature (over the first payload) instead of its own: the gateway
    never re-verifies stored records, and the log hashes the PAE bytes, not the
    signatures.
    """

    def __init__(
        self,
        engine: Engine,
        issuer: Member,
        origin: str,
        index: SubjectIndex,
        *,
        chunk: int = 20_000,
    ) -> None:
        self._engine = engine
        self._origin = origin
        self._issuer = issuer.member_id
        self._region = issuer.region
        self._index = index
        self._chunk = chunk
        first = codec.encode_record(listing(issuer, 0), salt=fill_salt)
        self._payload_type = first.payload_type
        # The whole message (what the salts derive from), and the parts that never
        # change: the payload without its commitments (field 16 comes last in
        # deterministic serialization), the TEXT group but its decision reference,
        # the STORES group (empty).
        whole = codec.statement_to_pb(listing(issuer, 0))
        assert isinstance(whole, st.Listing)
        self._whole = whole
        clear = st.Listing.FromString(first.payload)
        clear.ClearField("commitments")
        self._clear = clear.SerializeToString(deterministic=True)
        self._text = st.Listing(summary=_SUMMARY, legal_basis=_LEGAL_BASIS)
        self._stores = {d.group: d.value for d in first.disclosures}[Group.STORES]
        for i in (0, 1):
            expected = codec.encode_record(listing(issuer, i), salt=fill_salt)
            if self._record(i, uscc(i)) != expected:
                raise AssertionError(f"the fill template no longer encodes listing {i} as codec")
        signature = dsse.sign(first.payload_type, first.payload, issuer.signing_key).signatures[0]
        self._signatures = (
            f'[{{"keyid": "{signature.keyid}", '
            f'"sig": "{base64.b64encode(signature.sig).decode()}"}}]'
        )
        self._deadline = add_months(LISTED_AT, 3)

    def entries(self, start: int, count: int) -> Iterator[bytes]:
        """PAE bytes of subjects ``start .. start+count`` (what the log hashes)."""
        for i in range(start, start + count):
            yield dsse.pae(self._payload_type, self._record(i, uscc(i)).payload)

    def fill(self, rng: merkle.CompactRange, subject_start: int, count: int) -> FillStats:
        """Append ``count`` listings (subjects from ``subject_start``) after ``rng``."""
        began = time.perf_counter()
        sqlite = self._engine.dialect.name == "sqlite"
        now = _db_time(datetime.now(UTC), sqlite)
        listed_at, deadline = _db_time(LISTED_AT, sqlite), _db_time(self._deadline, sqlite)
        in_force = 1 if sqlite else True
        kind, conduct = int(ListKind.BLACKLIST), int(ConductType.FAKE_TRANSACTIONS)
        step = int(LifecycleStep.LISTED)
        payload_type, issuer, origin, region = (
            self._payload_type,
            self._issuer,
            self._origin,
            self._region,
        )
        digest = self._index.digest
        done = 0
        while done < count:
            n = min(self._chunk, count - done)
            records: list[tuple[object, ...]] = []
            disclosures: list[tuple[object, ...]] = []
            listings: list[tuple[object, ...]] = []
            nodes: list[tuple[object, ...]] = []
            for i in range(subject_start + done, subject_start + done + n):
                code = uscc(i)
                record = self._record(i, code)
                entry = dsse.pae(payload_type, record.payload)
                rid = hashlib.sha256(entry).hexdigest()
                index = rng.size
                nodes.extend((lvl, idx, h) for (lvl, idx), h in rng.append(merkle.leaf_hash(entry)))
                records.append(
                    (
                        index,
                        rid,
                        payload_type,
                        record.payload,
                        self._signatures,
                        issuer,
                        origin,
                        now,
                    )
                )
                disclosures.extend(
                    (index, int(d.group), d.salt, d.value) for d in record.disclosures
                )
                listings.append(
                    (
                        rid,
                        digest(f"uscc:{code}"),
                        issuer,
                        kind,
                        conduct,
                        region,
                        listed_at,
                        deadline,
                        step,
                        in_force,
                        index,
                        b"".join(d.value for d in record.disclosures),
                    )
                )
            _insert_many(
                self._engine,
                [
                    (_RECORD_COLUMNS, records),
                    (_DISCLOSURE_COLUMNS, disclosures),
                    (_NODE_COLUMNS, nodes),
                    (_LISTING_COLUMNS, listings),
                ],
                rng.size,
            )
            done += n
        method = "executemany (sqlite3)" if sqlite else "COPY (psycopg)"
        return FillStats(count, time.perf_counter() - began, method)

    def _record(self, i: int, code: str) -> codec.Encoded:
        """Listing ``i`` as ``codec.encode_record(listing(issuer, i), salt=fill_salt)``
        encodes it, from the template."""
        whole, text = self._whole, self._text
        whole.subject.uscc = code
        whole.decision_ref = text.decision_ref = f"ZJ-AMR-2026-{i:08d}"
        clear = whole.SerializeToString(deterministic=True)
        subject = st.Listing(subject=st.Subject(uscc=code))
        disclosures = tuple(
            Disclosure(group, fill_salt(group, clear), value)
            for group, value in (
                (Group.SUBJECT, subject.SerializeToString(deterministic=True)),
                (Group.TEXT, text.SerializeToString(deterministic=True)),
                (Group.STORES, self._stores),
            )
        )
        commitments = st.Listing()
        for d in disclosures:
            commitments.commitments.add(
                group=dp.DisclosureGroup.ValueType(d.group), digest=d.digest
            )
        payload = self._clear + commitments.SerializeToString(deterministic=True)
        return codec.Encoded(self._payload_type, payload, disclosures)


_RECORD_COLUMNS = (
    RecordRow.__tablename__,
    (
        "log_index",
        "record_id",
        "payload_type",
        "payload",
        "signatures",
        "signer",
        "origin",
        "received_at",
    ),
)
_DISCLOSURE_COLUMNS = (DisclosureRow.__tablename__, ("log_index", "grp", "salt", "value"))
_NODE_COLUMNS = (LogNodeRow.__tablename__, ("level", "idx", "hash"))
_LISTING_COLUMNS = (
    ListingRow.__tablename__,
    (
        "listing_id",
        "subject_key",
        "issuer",
        "list_kind",
        "conduct",
        "region_code",
        "listed_at",
        "deadline",
        "step",
        "in_force",
        "log_index",
        "disclosed",
    ),
)


def _db_time(value: datetime, sqlite: bool) -> object:
    """How the models store an aware UTC datetime: naive ISO text on SQLite."""
    if sqlite:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def _insert_many(
    engine: Engine,
    tables: Sequence[tuple[tuple[str, tuple[str, ...]], list[tuple[object, ...]]]],
    size: int,
) -> None:
    """One transaction on the raw driver connection: no per-row SQLAlchemy binding."""
    raw = engine.raw_connection()
    try:
        conn: Any = raw.driver_connection
        cur = conn.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("BEGIN")
            for (table, columns), rows in tables:
                marks = ", ".join("?" * len(columns))
                cur.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
                )
            cur.execute("UPDATE log_state SET tree_size = ? WHERE id = 1", (size,))
        else:
            for (table, columns), rows in tables:
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cur.execute("UPDATE log_state SET tree_size = %s WHERE id = 1", (size,))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        raw.close()


def count_stored_in_batches(responses: list[bytes]) -> int:
    """How many results of SubmitBatchResults say stored (code 0, new or duplicate)."""
    stored = 0
    for raw in responses:
        stored += sum(r.code == 0 for r in ex.SubmitBatchResult.FromString(raw).results)
    return stored


def count_stored(responses: list[bytes]) -> int:
    """How many SubmitRecordResults say stored (code 0, new or duplicate)."""
    stored = 0
    for raw in responses:
        result = ex.SubmitRecordResult.FromString(raw)
        if result.code == 0:
            stored += 1
    return stored
