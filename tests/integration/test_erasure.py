"""Erasure (issue 18) on two real federated gateways: a listed company and a listed natural
person are repaired, then erased; afterwards no file of either gateway's database holds
their credit code, person token, name, summary or store (in raw bytes, hex, base64 or
UTF-16), while the logs still verify with a verifier written here from docs/PROTOCOL.md
sections 2 and 4 alone (hashlib and cryptography's Ed25519; no gateway code checks).

Every scan and every check is first shown to fail: the scan finds the values before the
erasure (and a listing that is not erased after it), and each check of the verifier
refuses a tampered copy of what the gateway served.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from gwtest import (
    BACKENDS,
    LISTED_AT,
    USCC,
    Alliance,
    Member,
    audit,
    confirmation,
    erasure,
    exchange,
    listing,
    pg_base_url,
    pg_schema_url,
    running_gateway,
    submit,
)
from test_federation import Region, make_region

from gateway import codec
from gateway.core import dsse
from gateway.core.identifiers import person_hmac
from gateway.core.statements import (
    CHINA_STANDARD_TIME,
    LISTING_V1,
    ErasureBasis,
    LifecycleStep,
    ListKind,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.core.workdays import ReportMonth
from gateway.errors import RecordError
from gateway.ops.app import Gateway
from gateway.ops.config import Config
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.erasure import named_records
from gateway.service.ledger import Accepted

WAIT_S = 20.0

# What is erased: a company with its name, summary and store, and a natural person.
COMPANY_USCC = USCC[1]
COMPANY_NAME = "Qiantang Vanishing Trading Co. 钱塘消隐贸易有限公司"
COMPANY_SUMMARY = "Brushed 4812 fake orders through the Xiling lantern shop in October"
COMPANY_STORE = "xiling-lantern-5531"
RESIDENT_ID = "11010519491231002X"
ALLIANCE_KEY = hashlib.sha256(b"erasure test alliance key").digest()
PERSON_TOKEN = person_hmac(RESIDENT_ID, ALLIANCE_KEY)
PERSON_SUMMARY = "Resold counterfeit tea sets under the Longjing heron banner"
PERSON_STORE = "longjing-heron-7719"
CORRECTION_REF = "ZJ-AMR-2026-ERASE-C1"
CORRECTION_REASON = "the seller refunded every buyer of the heron lanterns"
REMOVAL_REF = "ZJ-COURT-2026-ERASE-R2"
REMOVAL_COURT = "Gongshu Basic People's Court of Erasure"
SANCTION_NOTE = "lantern store closed after the kiln inspection"
# What stays: a company that is listed and not erased (the scan's control after erasure).
KEPT_USCC = USCC[0]
KEPT_NAME = "Hupao Steadfast Spring Water Co. 虎跑长存泉水有限公司"


@dataclass(frozen=True)
class Needle:
    label: str
    raw: bytes
    text: str | None = None  # the text form, also searched as UTF-16-LE

    def forms(self) -> dict[str, bytes]:
        """The value as a file could hold it: raw, hex both cases, base64 (standard and
        URL-safe, at each of the three alignments a value takes inside a longer
        encoded string), UTF-16-LE."""
        out = {
            "raw": self.raw,
            "hex": self.raw.hex().encode(),
            "HEX": self.raw.hex().upper().encode(),
        }
        for shift in range(3):
            core = _base64_core(self.raw, shift)
            out[f"base64@{shift}"] = core
            out[f"base64url@{shift}"] = core.translate(bytes.maketrans(b"+/", b"-_"))
        if self.text is not None:
            out["utf-16-le"] = self.text.encode("utf-16-le")
        return out


def _base64_core(raw: bytes, shift: int) -> bytes:
    """The base64 characters that depend on ``raw`` alone when ``shift`` bytes precede
    it in the encoded data (the characters at its edges also depend on its neighbours)."""
    encoded = base64.b64encode(bytes(shift) + raw)
    first = math.ceil(8 * shift / 6)
    last = (8 * (shift + len(raw))) // 6
    return encoded[first:last]


def _text(label: str, value: str) -> Needle:
    return Needle(label, value.encode("utf-8"), value)


ERASED = (
    _text("credit code", COMPANY_USCC),
    Needle("person token", PERSON_TOKEN),
    _text("company name", COMPANY_NAME),
    _text("company name (Chinese)", COMPANY_NAME.split(" Co. ")[1]),
    _text("company summary", COMPANY_SUMMARY),
    _text("person summary", PERSON_SUMMARY),
    _text("company store", COMPANY_STORE),
    _text("person store", PERSON_STORE),
    _text("correction reason", CORRECTION_REASON),
    _text("correction ref", CORRECTION_REF),
    _text("removal ref", REMOVAL_REF),
    _text("removal court", REMOVAL_COURT),
    _text("sanction note", SANCTION_NOTE),
)
KEPT = (_text("kept credit code", KEPT_USCC), _text("kept name", KEPT_NAME))


def scan_bytes(blob: bytes, needles: Sequence[Needle]) -> set[tuple[str, str]]:
    return {(n.label, form) for n in needles for form, b in n.forms().items() if b in blob}


def scan_files(paths: Sequence[Path], needles: Sequence[Needle]) -> dict[str, set[tuple[str, str]]]:
    """Which needles (label, form) each file holds."""
    return {p.name: scan_bytes(p.read_bytes(), needles) for p in paths}


def scan_tables(url: str, needles: Sequence[Needle]) -> set[tuple[str, str, str]]:
    """Every value of every table of the database (or schema), by SQL: (table, label, form)."""
    found: set[tuple[str, str, str]] = set()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            assert "disclosures" in tables and "records" in tables
            for table in tables:
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                    for value in row:
                        blob = (
                            bytes(value)
                            if isinstance(value, bytes | memoryview)
                            else str(value).encode()
                        )
                        found |= {(table, label, form) for label, form in scan_bytes(blob, needles)}
    finally:
        engine.dispose()
    return found


def database_files(url: str) -> list[Path]:
    """The SQLite database file and every file beside it that SQLite made for it."""
    db = Path(sa.engine.make_url(url).database or "")
    files = sorted(db.parent.glob(db.name + "*"))
    assert db in files
    assert {p.name for p in files} <= {db.name + s for s in ("", "-wal", "-shm", "-journal")}
    return files


def test_the_scan_finds_every_form_inside_other_bytes() -> None:
    """The database holds the values raw; this shows the other forms would be found too,
    wherever they start inside a longer encoding."""
    for needle in (_text("name", COMPANY_NAME), Needle("token", PERSON_TOKEN)):
        raw = needle.raw
        assert (needle.label, "raw") in scan_bytes(b"{" + raw + b"}", [needle])
        for before in range(6):
            data = bytes(range(1, before + 1)) + raw + b"tail"
            for encode, form in (
                (base64.b64encode, "base64"),
                (base64.urlsafe_b64encode, "base64url"),
            ):
                found = scan_bytes(b"x=" + encode(data) + b";", [needle])
                assert (needle.label, f"{form}@{before % 3}") in found, (form, before)
        for form, blob in (("hex", raw.hex().encode()), ("HEX", raw.hex().upper().encode())):
            assert (needle.label, form) in scan_bytes(b"0x" + blob + b"00", [needle])
        if needle.text is not None:
            wide = ("<" + needle.text + ">").encode("utf-16-le")
            assert (needle.label, "utf-16-le") in scan_bytes(wide, [needle])
        assert scan_bytes(raw[:-1] + b"-" + raw[1:], [needle]) == set()


# --- the scenario ------------------------------------------------------------------------


@dataclass
class Site:
    zj: Region
    gd: Region
    hz: Member  # a second authority of Zhejiang's unit, which issued none of the records
    configs: list[Config]
    urls: list[str]


@contextmanager
def _site(tmp_path: Path, backend: str) -> Iterator[Site]:
    zj = make_region(tmp_path, "zj", "330100")
    gd = make_region(tmp_path, "gd", "440300")
    hz = zj.alliance.member("authority", "zj-hz-amr", region="330100")
    with ExitStack() as stack:
        if backend == "postgresql":
            base = pg_base_url()
            assert base is not None
            urls = [stack.enter_context(pg_schema_url(base)) for _ in range(2)]
        else:
            urls = [f"sqlite:///{tmp_path / 'zj.db'}", f"sqlite:///{tmp_path / 'gd.db'}"]
        configs = [zj.config(urls[0], [gd.peer()]), gd.config(urls[1], [zj.peer()])]
        yield Site(zj, gd, hz, configs, urls)


@contextmanager
def both(site: Site) -> Iterator[tuple[Gateway, Gateway]]:
    with (
        running_gateway(site.configs[0], register=(*site.zj.members(), site.hz)) as a,
        running_gateway(site.configs[1], register=site.gd.members()) as b,
    ):
        yield a, b


def send(member: Member, gw: Gateway, statement: Any) -> ex.SubmitRecordResponse:
    with member.channel(gw.port) as ch:
        return submit(ch, member.sign(statement))


def refused(member: Member, gw: Gateway, statement: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        send(member, gw, statement)
    return err.value


def reason(err: grpc.RpcError) -> str | None:
    assert isinstance(err, grpc.Call)
    found = [v for k, v in err.trailing_metadata() or () if k == "alliance-reason"]
    return str(found[0]) if found else None


def await_record(member: Member, gw: Gateway, record_id: str) -> int:
    """Follow ``gw``'s log (WatchRecords) until ``record_id`` is appended; its index."""
    with member.channel(gw.port) as ch:
        stream = exchange(ch).WatchRecords(ex.WatchRecordsRequest(from_index=0), timeout=WAIT_S)
        try:
            for entry in stream:
                if entry.record_id == record_id:
                    return int(entry.log_index)
        finally:
            stream.cancel()
    raise AssertionError(f"{record_id} never reached {gw.config.member_id}")


def get_record(member: Member, gw: Gateway, record_id: str) -> ex.LogEntry:
    with member.channel(gw.port) as ch:
        reply = exchange(ch).GetRecord(ex.GetRecordRequest(record_id=record_id), timeout=10)
    entry: ex.LogEntry = reply.entry
    return entry


def check(member: Member, gw: Gateway, *subjects: Subject) -> list[ex.SubjectStatus]:
    with member.channel(gw.port) as ch:
        reply = exchange(ch).CheckSubjects(
            ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(s) for s in subjects]),
            timeout=10,
        )
    return list(reply.results)


def checkpoint_note(member: Member, gw: Gateway, at_least: int) -> str:
    """The newest checkpoint note, once one covers ``at_least`` entries (the gateway
    signs one every 0.2 s in tests when its log grew)."""
    deadline = time.monotonic() + WAIT_S
    with member.channel(gw.port) as ch:
        while True:
            note: str = audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=5).note
            if int(note.split("\n")[1]) >= at_least:
                return note
            assert time.monotonic() < deadline, f"no checkpoint of {at_least} entries"
            time.sleep(0.05)


def report_counts(gw: Gateway) -> list[dict[str, Any]]:
    """The monthly report's counts (units and totals) for the months of the records."""
    reports = gw.compliance.reports
    checkpoint = reports.checkpoint()
    first = LISTED_AT.astimezone(CHINA_STANDARD_TIME)
    months = [ReportMonth(first.year, first.month)]
    months.append(ReportMonth(first.year + first.month // 12, first.month % 12 + 1))
    out = []
    for month in months:
        document = reports.compute(month, None, checkpoint)
        out.append(
            {"month": document["month"], "units": document["units"], "totals": document["totals"]}
        )
    return out


COMPANY = Subject(uscc=COMPANY_USCC)
PERSON = Subject(person_hmac=PERSON_TOKEN)
KEPT_SUBJECT = Subject(uscc=KEPT_USCC)


@dataclass
class Records:
    company: str = ""
    correction: str = ""
    sanction: str = ""
    person: str = ""
    removal: str = ""
    kept: str = ""
    served: dict[str, ex.LogEntry] = field(default_factory=dict)  # as served before erasure


def _list_and_repair(site: Site, a: Gateway, b: Gateway) -> Records:
    zj = site.zj
    amr, shop = zj.authority, zj.platform
    r = Records()
    r.company = send(
        amr,
        a,
        listing(
            amr,
            subject=Subject(
                uscc=COMPANY_USCC,
                name=COMPANY_NAME,
                stores=(StoreRef(shop.member_id, COMPANY_STORE),),
            ),
            summary=COMPANY_SUMMARY,
        ),
    ).record_id
    r.sanction = send(
        shop, a, confirmation(shop, r.company, store_id=COMPANY_STORE, note=SANCTION_NOTE)
    ).record_id
    r.correction = send(
        amr,
        a,
        StatusChange(
            issuer=amr.member_id,
            listing_id=r.company,
            step=LifecycleStep.CORRECTED,
            effective_at=LISTED_AT + timedelta(days=5),
            decision_ref=CORRECTION_REF,
            reason=CORRECTION_REASON,
        ),
    ).record_id
    # A platform reports a natural person; the unit's authority removes the listing.
    r.person = send(
        shop,
        a,
        listing(
            shop,
            subject=Subject(
                person_hmac=PERSON_TOKEN, stores=(StoreRef(shop.member_id, PERSON_STORE),)
            ),
            list=ListKind.BLACKLIST,
            summary=PERSON_SUMMARY,
        ),
    ).record_id
    r.removal = send(
        amr,
        a,
        StatusChange(
            issuer=amr.member_id,
            listing_id=r.person,
            step=LifecycleStep.REMOVED,
            effective_at=LISTED_AT + timedelta(days=6),
            decision_ref=REMOVAL_REF,
            reason="the court annulled the penalty decision",
            decided_by=REMOVAL_COURT,
        ),
    ).record_id
    r.kept = send(amr, a, listing(amr, subject=Subject(uscc=KEPT_USCC, name=KEPT_NAME))).record_id
    for rid in (r.company, r.sanction, r.correction, r.person, r.removal, r.kept):
        await_record(site.gd.platform, b, rid)
        r.served[rid] = get_record(zj.platform, a, rid)
        assert r.served[rid].envelope.disclosures  # served with its disclosures
    # Authorities see a listing's whole history, also once its publication ended.
    for gw, who in ((a, zj.authority), (b, site.gd.authority)):
        company, person, kept = check(who, gw, COMPANY, PERSON, KEPT_SUBJECT)
        assert not company.listed and [s.listing_id for s in company.listings] == [r.company]
        assert company.listings[0].listing.subject.name == COMPANY_NAME
        assert not person.listed and [s.listing_id for s in person.listings] == [r.person]
        assert kept.listed
    return r


@pytest.mark.parametrize("backend", BACKENDS)
def test_erasure_leaves_no_trace_and_the_logs_still_verify(tmp_path: Path, backend: str) -> None:
    with _site(tmp_path, backend) as site:
        zj, gd = site.zj, site.gd
        with both(site) as (a, b):
            records = _list_and_repair(site, a, b)
            counts_before = [report_counts(a), report_counts(b)]
            totals = counts_before[0][0]["totals"]  # the month of the listings, at ZJ
            assert (totals["new_listings_total"], totals["corrected_in_time"]) == (3, 1)
            assert totals["removed"] == 1
            before_note = checkpoint_note(zj.platform, a, a.core.store.log_size())
        # Both stopped: their files are closed. The values are there, in both.
        for url in site.urls:
            found = {label for _, label, _ in scan_tables(url, ERASED)}
            assert found == {n.label for n in ERASED}, url
            if backend == "sqlite":
                in_files = set().union(*scan_files(database_files(url), ERASED).values())
                assert {label for label, _ in in_files} == {n.label for n in ERASED}, url

        with both(site) as (a, b):
            _refusals(site, a, b, records)
            erasures = _erase(site, a, records)
            for rid in erasures:
                await_record(gd.platform, b, rid)
            _after(site, a, b, records)
            assert [report_counts(a), report_counts(b)] == counts_before
            _verify_independently(site, a, b, records, erasures, before_note)

        for url in site.urls:
            assert scan_tables(url, ERASED) == set(), url
            kept = {label for _, label, _ in scan_tables(url, KEPT)}
            assert kept == {n.label for n in KEPT}, url  # the scan still sees what stays
            if backend == "sqlite":
                files = database_files(url)
                assert scan_files(files, ERASED) == {p.name: set() for p in files}, url
                assert set().union(*scan_files(files, KEPT).values())


def _refusals(site: Site, a: Gateway, b: Gateway, r: Records) -> None:
    zj, gd = site.zj, site.gd
    basis = ErasureBasis.PURPOSE_ACHIEVED
    # A platform of another alliance, at its own gateway, which holds the replica.
    err = refused(gd.platform, b, erasure(gd.platform, r.company, basis=basis))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and reason(err) == "not-allowed-to-erase"
    # Another alliance's authority acts for another unit.
    err = refused(gd.authority, b, erasure(gd.authority, r.person, basis=basis))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and reason(err) == "outside-unit"
    # A platform of the same alliance that issued neither the listing nor its steps; one
    # record it may not erase refuses the whole erasure, including its own confirmation.
    err = refused(zj.platform, a, erasure(zj.platform, r.sanction, r.company, basis=basis))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and reason(err) == "not-allowed-to-erase"
    # A record no gateway knows.
    err = refused(zj.authority, a, erasure(zj.authority, r.company, "ab" * 32, basis=basis))
    assert err.code() == grpc.StatusCode.NOT_FOUND and reason(err) == "unknown-record"
    # A listing still in force is closed before its records are erased, even by its issuer.
    err = refused(zj.authority, a, erasure(zj.authority, r.company, r.kept, basis=basis))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(err) == "listing-in-force"
    for gw, who in ((a, zj.platform), (b, gd.platform)):
        assert all(get_record(who, gw, rid).envelope.disclosures for rid in (r.company, r.sanction))


def _erase(site: Site, a: Gateway, r: Records) -> list[str]:
    """The issuer erases its listing and its correction (and, as the unit's authority, the
    platform's confirmation); another authority of the unit, which issued none of them,
    erases the platform's report of the person and the removal."""
    amr = site.zj.authority
    first = send(
        amr,
        a,
        erasure(amr, r.company, r.correction, r.sanction, basis=ErasureBasis.PURPOSE_ACHIEVED),
    ).record_id
    second = send(
        site.hz, a, erasure(site.hz, r.person, r.removal, basis=ErasureBasis.WITHDRAWN)
    ).record_id
    return [first, second]


def _after(site: Site, a: Gateway, b: Gateway, r: Records) -> None:
    erased = (r.company, r.correction, r.sanction, r.person, r.removal)
    for gw, who in ((a, site.zj.platform), (b, site.gd.platform)):
        for rid in erased:
            entry = get_record(who, gw, rid)
            before = r.served[rid]
            assert entry.record_id == rid and list(entry.envelope.disclosures) == []
            assert entry.envelope.payload == before.envelope.payload
            assert list(entry.envelope.signatures) == list(before.envelope.signatures)
            assert entry.log_index == before.log_index or gw is b
            # Read without its disclosures, the record is a redacted statement.
            statement = codec.decode_envelope(codec.envelope_from_pb(entry.envelope))
            assert getattr(statement, "redacted", False), rid
        assert get_record(who, gw, r.kept).envelope.disclosures
    for gw, who in ((a, site.zj.authority), (b, site.gd.authority)):
        company, person, kept = check(who, gw, COMPANY, PERSON, KEPT_SUBJECT)
        assert not company.listed and not company.listings
        assert not person.listed and not person.listings
        assert kept.listed and kept.listings[0].listing.subject.name == KEPT_NAME


# --- an independent verifier, from docs/PROTOCOL.md sections 2 and 4 -----------------------
#
# Nothing below imports the gateway's own checks (gateway.core.merkle, notes, dsse, crypto,
# clients.audit): bytes in, SHA-256 and Ed25519 from the standard library and cryptography.

REDACTABLE = frozenset(
    f"application/vnd.alliance.{kind}.v2+protobuf"
    for kind in ("listing", "status-change", "sanction-confirmation", "government-measure")
)
MEMBER_RECORDS = frozenset(
    f"application/vnd.alliance.member-record.{v}+protobuf" for v in ("v1", "v2")
)
ERASURE = "application/vnd.alliance.erasure.v1+protobuf"


class Broken(AssertionError):
    """The verifier refuses what it was served."""


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def leaf_hash(entry: bytes) -> bytes:
    return _sha256(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right)


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """MTH (RFC 9162 §2.1.1): split at the largest power of two below n."""
    n = len(leaves)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        raise Broken(f"inclusion: leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Broken("inclusion: the proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise Broken(f"inclusion: leaf {index} does not lead to the root of {size}")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2, for 0 < first < second."""
    if not 0 < first < second:
        raise Broken(f"consistency: sizes {first} and {second} are outside the RFC's domain")
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the first root starts the path
        path.insert(0, first_root)
    if not path:
        raise Broken("consistency: empty proof")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Broken("consistency: the proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise Broken(f"consistency: tree {first} is not a prefix of tree {second}")


def _ed25519(key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes


def open_note(note: str, origin: str, log_key: bytes) -> Checkpoint:
    """C2SP signed-note and tlog-checkpoint: the log key's signature over the text
    (with its final LF); other signers' lines (cosignatures) are skipped."""
    text, blank, signatures = note.partition("\n\n")
    if not blank:
        raise Broken("note: no blank line before the signatures")
    body = (text + "\n").encode("utf-8")
    key_id = _sha256(origin.encode() + b"\n" + b"\x01" + log_key)[:4]
    verified = False
    for line in signatures.removesuffix("\n").split("\n"):
        if not line.startswith("\u2014 "):
            raise Broken(f"note: {line!r} is not a signature line")
        name, _, encoded = line[2:].partition(" ")
        blob = base64.b64decode(encoded, validate=True)
        if name != origin or blob[:4] != key_id:
            continue
        if not _ed25519(log_key, blob[4:], body):
            raise Broken("note: the log key's signature does not verify")
        verified = True
    if not verified:
        raise Broken("note: no signature by the log key")
    lines = text.split("\n")
    if lines[0] != origin or len(lines) < 3:
        raise Broken(f"note: not a checkpoint of {origin}")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32 or str(int(lines[1])) != lines[1]:
        raise Broken("note: bad size or root line")
    return Checkpoint(int(lines[1]), root)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise Broken("payload: truncated varint")
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message's fields in wire order: (number, varint or bytes)."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
            if len(value) != n:
                raise Broken("payload: truncated field")
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = buf[i : i + n], i + n
        else:
            raise Broken(f"payload: wire type {wire}")
        out.append((number, value))
    return out


def _bytes(buf: bytes, number: int) -> list[bytes]:
    return [v for n, v in fields(buf) if n == number and isinstance(v, bytes)]


def _string(buf: bytes, number: int) -> str:
    found = _bytes(buf, number)
    return found[-1].decode("utf-8") if found else ""


def _trust_domain(member_id: str) -> str:
    return member_id.removeprefix("spiffe://").split("/")[0]


@dataclass
class VerifiedLog:
    checkpoint: Checkpoint
    leaves: list[bytes]
    record_ids: list[str]
    # Redactable records served without their disclosures, and what each erasure named.
    redacted: set[str] = field(default_factory=set)
    erased_by: dict[str, str] = field(default_factory=dict)


def verify_log(
    entries: Sequence[ex.LogEntry], checkpoint: Checkpoint, gateways: Mapping[str, bytes]
) -> VerifiedLog:
    """Every entry's record id and signature (section 2), its disclosures against its
    commitments (revision 4), the root against the checkpoint (section 4).

    Keys: ``gateways`` are the trust anchors (each gateway's log key); a member record
    must be signed by the gateway of its member's trust domain and teaches its keys;
    every other record must be signed by a key its issuer was taught."""
    keys: dict[str, set[bytes]] = {g: {k} for g, k in gateways.items()}
    log = VerifiedLog(checkpoint, [], [])
    disclosed: set[str] = set()
    if len(entries) != checkpoint.size:
        raise Broken(f"{len(entries)} entries served for a checkpoint of {checkpoint.size}")
    for i, entry in enumerate(entries):
        env = entry.envelope
        if entry.log_index != i:
            raise Broken(f"entry {i}: served as entry {entry.log_index}")
        signed = pae(env.payload_type, env.payload)
        if hashlib.sha256(signed).hexdigest() != entry.record_id:
            raise Broken(f"entry {i}: record id is not SHA-256(PAE)")
        issuer = _string(env.payload, 1)
        if env.payload_type in MEMBER_RECORDS:
            member = _string(env.payload, 2)
            if issuer not in gateways or _trust_domain(member) != _trust_domain(issuer):
                raise Broken(f"entry {i}: member record of {member} issued by {issuer}")
        allowed = (
            keys.get(issuer, set())
            if env.payload_type not in MEMBER_RECORDS
            else {gateways[issuer]}
        )
        if not any(
            _ed25519(k, s.sig, signed) for k in allowed for s in env.signatures if len(s.sig) == 64
        ):
            raise Broken(f"entry {i}: no key of {issuer} verifies {entry.record_id}")
        if env.payload_type in MEMBER_RECORDS:
            taught = {_bytes(k, 1)[0] for k in _bytes(env.payload, 5)}
            keys.setdefault(_string(env.payload, 2), set()).update(taught)
        if env.payload_type in REDACTABLE:
            _check_disclosures(i, env)
            (disclosed if env.disclosures else log.redacted).add(entry.record_id)
        elif env.disclosures:
            raise Broken(f"entry {i}: {env.payload_type} carries disclosures")
        if env.payload_type == ERASURE:
            for named in _bytes(env.payload, 2):
                log.erased_by[named.decode("ascii")] = entry.record_id
        log.leaves.append(leaf_hash(signed))
        log.record_ids.append(entry.record_id)
    if tree_root(log.leaves) != checkpoint.root:
        raise Broken(f"the root of the {checkpoint.size} entries is not the checkpoint's")
    still = sorted(disclosed & log.erased_by.keys())
    if still:
        raise Broken(f"erased records still served with their disclosures: {still}")
    return log


def _check_disclosures(index: int, env: Any) -> None:
    """digest = SHA-256("alliance.v1.disclosure" LF group salt value); all groups or none."""
    committed = {}
    for c in _bytes(env.payload, 16):
        group = [v for n, v in fields(c) if n == 1]
        committed[group[0] if group else 0] = _bytes(c, 2)[0]
    served = {}
    for d in env.disclosures:
        digest = _sha256(b"alliance.v1.disclosure\n" + bytes([d.group]) + d.salt + d.value)
        if len(d.salt) != 32 or committed.get(d.group) != digest:
            raise Broken(
                f"entry {index}: disclosure of group {d.group} does not match its commitment"
            )
        served[d.group] = digest
    if served and served.keys() != committed.keys():
        raise Broken(f"entry {index}: some groups disclosed, not all")


def log_key(alliance: Alliance) -> bytes:
    pem = (alliance.gw_dir / "signing-key.pem").read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return _raw(private.public_key())


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fetch(member: Member, gw: Gateway, size: int) -> list[ex.LogEntry]:
    with member.channel(gw.port) as ch:
        return list(audit(ch).GetEntries(au.GetEntriesRequest(start=0, end=size), timeout=20))


def _verify_independently(
    site: Site, a: Gateway, b: Gateway, r: Records, erasures: list[str], before_note: str
) -> None:
    gateways = {
        site.zj.alliance.gateway_id: log_key(site.zj.alliance),
        site.gd.alliance.gateway_id: log_key(site.gd.alliance),
    }
    erased = {r.company, r.correction, r.sanction, r.person, r.removal}
    for gw, region in ((a, site.zj), (b, site.gd)):
        who, origin, key = region.platform, region.origin, gateways[region.alliance.gateway_id]
        note = checkpoint_note(who, gw, gw.core.store.log_size())
        checkpoint = open_note(note, origin, key)
        entries = fetch(who, gw, checkpoint.size)
        log = verify_log(entries, checkpoint, gateways)
        assert erased <= log.redacted and r.kept not in log.redacted
        assert {rid: log.erased_by[rid] for rid in erased} == {
            **dict.fromkeys((r.company, r.correction, r.sanction), erasures[0]),
            **dict.fromkeys((r.person, r.removal), erasures[1]),
        }
        # An inclusion proof of the erased company listing, served by the gateway.
        index = log.record_ids.index(r.company)
        with who.channel(gw.port) as ch:
            proof = audit(ch).GetInclusionProof(
                au.GetInclusionProofRequest(record_id=r.company, tree_size=checkpoint.size),
                timeout=5,
            )
        assert (proof.leaf_index, proof.tree_size) == (index, checkpoint.size)
        verify_inclusion(
            index, checkpoint.size, log.leaves[index], list(proof.hashes), checkpoint.root
        )
        if gw is a:
            _consistency_and_tampering(who, gw, origin, key, before_note, log, entries, gateways, r)


def _consistency_and_tampering(
    who: Member,
    gw: Gateway,
    origin: str,
    key: bytes,
    before_note: str,
    log: VerifiedLog,
    entries: list[ex.LogEntry],
    gateways: Mapping[str, bytes],
    r: Records,
) -> None:
    checkpoint = log.checkpoint
    old = open_note(before_note, origin, key)
    assert 0 < old.size < checkpoint.size  # the erasures came after the old checkpoint
    with who.channel(gw.port) as ch:
        consistency = audit(ch).GetConsistencyProof(
            au.GetConsistencyProofRequest(first_size=old.size, second_size=checkpoint.size),
            timeout=5,
        )
    verify_consistency(
        old.size, checkpoint.size, old.root, checkpoint.root, list(consistency.hashes)
    )

    # Each check refuses a tampered copy.
    with pytest.raises(Broken, match="consistency: tree"):
        verify_consistency(
            old.size,
            checkpoint.size,
            old.root,
            checkpoint.root,
            _flip_first(list(consistency.hashes)),
        )
    index = log.record_ids.index(r.company)
    with who.channel(gw.port) as ch:
        proof = audit(ch).GetInclusionProof(
            au.GetInclusionProofRequest(leaf_index=index, tree_size=checkpoint.size), timeout=5
        )
    with pytest.raises(Broken, match="inclusion: leaf"):
        verify_inclusion(
            index,
            checkpoint.size,
            log.leaves[index],
            _flip_first(list(proof.hashes)),
            checkpoint.root,
        )
    with pytest.raises(Broken, match="inclusion: leaf"):
        verify_inclusion(
            index, checkpoint.size, leaf_hash(b"another entry"), list(proof.hashes), checkpoint.root
        )

    note = checkpoint_note(who, gw, checkpoint.size)
    lines = note.split("\n")
    other_root = base64.b64encode(_sha256(b"another root")).decode()
    with pytest.raises(Broken, match="signature does not verify"):
        open_note("\n".join([lines[0], lines[1], other_root, *lines[3:]]), origin, key)
    with pytest.raises(Broken, match="no signature by the log key"):
        open_note(note, origin, _other_key())

    def tampered() -> list[ex.LogEntry]:
        copy = [ex.LogEntry() for _ in entries]
        for c, e in zip(copy, entries, strict=True):
            c.CopyFrom(e)
        return copy

    forged = tampered()
    sig = bytearray(forged[5].envelope.signatures[0].sig)
    sig[0] ^= 1
    for s in forged[5].envelope.signatures:
        s.sig = bytes(sig)
    with pytest.raises(Broken, match="entry 5: no key of"):
        verify_log(forged, checkpoint, gateways)

    with pytest.raises(Broken, match="entries served for a checkpoint"):
        verify_log(entries[:-1], checkpoint, gateways)
    misplaced = tampered()
    misplaced[2].log_index = 7
    with pytest.raises(Broken, match="entry 2: served as entry 7"):
        verify_log(misplaced, checkpoint, gateways)
    # Without the peer gateway's key, the member records it vouches for are refused.
    own = gw.config.member_id
    with pytest.raises(Broken, match=r"member record of spiffe://gd\.alliance\.test/"):
        verify_log(entries, checkpoint, {own: gateways[own]})

    renamed = tampered()
    renamed[3].record_id = "ab" * 32
    with pytest.raises(Broken, match="entry 3: record id"):
        verify_log(renamed, checkpoint, gateways)

    # The last two entries, each valid and signed, in the other order: the root differs.
    swapped = tampered()
    for i, j in ((-1, -2), (-2, -1)):
        swapped[i].envelope.CopyFrom(entries[j].envelope)
        swapped[i].record_id = entries[j].record_id
    with pytest.raises(Broken, match="the root of"):
        verify_log(swapped, checkpoint, gateways)

    kept = log.record_ids.index(r.kept)
    altered = tampered()
    value = bytearray(altered[kept].envelope.disclosures[0].value)
    value[-1] ^= 1
    altered[kept].envelope.disclosures[0].value = bytes(value)
    with pytest.raises(Broken, match=f"entry {kept}: disclosure of group"):
        verify_log(altered, checkpoint, gateways)

    partial = tampered()
    del partial[kept].envelope.disclosures[0]
    with pytest.raises(Broken, match=f"entry {kept}: some groups disclosed"):
        verify_log(partial, checkpoint, gateways)

    # An erased record served with the disclosures it had before: the erasure was not kept.
    resurrected = tampered()
    resurrected[index].envelope.disclosures.extend(r.served[r.company].envelope.disclosures)
    with pytest.raises(Broken, match="erased records still served"):
        verify_log(resurrected, checkpoint, gateways)


def _flip_first(hashes: list[bytes]) -> list[bytes]:
    first = bytearray(hashes[0])
    first[0] ^= 1
    return [bytes(first), *hashes[1:]]


def _other_key() -> bytes:
    return _raw(Ed25519PrivateKey.generate().public_key())


# --- a record signed in the clear cannot be erased ------------------------------------------


def test_a_v1_record_in_the_log_is_not_erasable(tmp_path: Path, database_url: str) -> None:
    """Members no longer submit listing.v1, so a v1 record is one appended before protocol
    revision 4: it is put in the log here as the ledger appended it then."""
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = alliance.member("authority", "zj-amr", region="330000")
    with running_gateway(alliance.config(database_url), register=(amr,)) as gw:
        old = listing(amr, uscc=USCC[2])
        payload_type, payload = codec.encode_statement(old, LISTING_V1)
        env = dsse.sign(payload_type, payload, amr.signing_key)
        with pytest.raises(grpc.RpcError) as err, amr.channel(gw.port) as ch:
            submit(ch, env)  # as a submission: refused
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        (appended,) = gw.core.ledger.append(
            [Accepted(env, env.record_id, amr.member_id, old, gw.config.log_origin)]
        )
        assert not appended.duplicate

        v1_erasure = erasure(amr, env.record_id, basis=ErasureBasis.DECISION)
        err2 = refused(amr, gw, v1_erasure)
        assert err2.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(err2) == "not-erasable"
        assert "signs its values in the clear" in (err2.details() or "")
        # A replica, which checks only the records it holds, leaves the v1 record out.
        assert named_records(gw.core.store, v1_erasure, require_all=False) == {}
        with pytest.raises(RecordError, match="only redactable records can be erased"):
            named_records(gw.core.store, v1_erasure, require_all=True)
        with amr.channel(gw.port) as ch:
            (status,) = (
                exchange(ch)
                .CheckSubjects(
                    ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(Subject(uscc=USCC[2]))]),
                    timeout=5,
                )
                .results
            )
        assert status.listed  # still listed: nothing was erased


# --- SQLite: a reader that holds an old snapshot delays the WAL truncation, not forever ---


def test_erased_values_leave_the_files_once_a_reader_lets_go(tmp_path: Path) -> None:
    """``wal_checkpoint(TRUNCATE)`` cannot copy back or drop the pages a reader's snapshot
    still needs (a backup, a long query): the erased values stay on disk while it reads.
    The gateway must truncate again once the reader is gone, not at its next erasure or
    shutdown."""
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = alliance.member("authority", "zj-amr", region="330000")
    url = f"sqlite:///{tmp_path / 'zj.db'}"
    company = _text("credit code", COMPANY_USCC), _text("company name", COMPANY_NAME)
    with running_gateway(alliance.config(url), register=(amr,)) as gw:
        listed = send(
            amr, gw, listing(amr, subject=Subject(uscc=COMPANY_USCC, name=COMPANY_NAME))
        ).record_id
        send(  # closed first: a listing in force is not erased
            amr,
            gw,
            StatusChange(
                issuer=amr.member_id,
                listing_id=listed,
                step=LifecycleStep.CORRECTED,
                effective_at=LISTED_AT + timedelta(days=1),
                decision_ref="ZJ-AMR-2026-0099",
                reason="corrected",
            ),
        )
        reader = sqlite3.connect(tmp_path / "zj.db", isolation_level=None)
        try:
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM disclosures").fetchone() == (4,)
            erased = send(amr, gw, erasure(amr, listed, basis=ErasureBasis.PURPOSE_ACHIEVED))
            assert erased.record_id
            held = set().union(*scan_files(database_files(url), company).values())
            assert held  # the reader's snapshot keeps them
        finally:
            reader.close()
        deadline = time.monotonic() + WAIT_S
        while set().union(*scan_files(database_files(url), company).values()):
            assert time.monotonic() < deadline, "the erased values stayed in the database files"
            time.sleep(0.1)
