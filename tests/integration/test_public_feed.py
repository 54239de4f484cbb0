"""The public HTTP service against a running gateway: what the feed shows and hides, the
change cursor, paging, proofs checked by a verifier written here from docs/PROTOCOL.md
("Public feed"; not the project's audit code), and the service's bounds: GET only, no
member routes, rate limits with Retry-After, ETag revalidation."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gwtest
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from gwtest import (
    USCC,
    Alliance,
    Member,
    pg_base_url,
    pg_schema_url,
    running_gateway,
    submit,
    zhejiang,
)
from test_federation import eventually, reserve_port

from clients.cli import main as cli_main
from gateway.codec import decode_public, decode_statement
from gateway.core.crypto import SigningKey
from gateway.core.notes import NoteSigner, NoteVerifier
from gateway.core.public_proof import verify_entry_proof
from gateway.core.statements import (
    MEMBER_RECORD_TYPES,
    Erasure,
    ErasureBasis,
    LifecycleStep,
    Listing,
    MemberRecord,
    StatusChange,
    Subject,
)
from gateway.errors import GatewayError
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import statements_pb2 as spb
from gateway.service.publication import _leaf

NAME = "杭州示例商贸有限公司"


# -- a verifier from docs/PROTOCOL.md -------------------------------------------------------


def _note(note: str, vkey: str) -> tuple[str, int, bytes]:
    """Open a C2SP signed note with the log's vkey: (origin, size, root)."""
    name, key_hex, material = vkey.split("+", 2)
    raw = base64.b64decode(material)
    assert raw[0] == 0x01
    pub = raw[1:]
    assert hashlib.sha256(name.encode() + b"\n" + b"\x01" + pub).digest()[:4].hex() == key_hex
    text, _, sigs = note.partition("\n\n")
    text += "\n"
    ok = False
    for line in sigs.splitlines():
        assert line.startswith("\u2014 ")
        signer, b64 = line[2:].rsplit(" ", 1)
        blob = base64.b64decode(b64)
        if signer == name and blob[:4].hex() == key_hex:
            Ed25519PublicKey.from_public_bytes(pub).verify(blob[4:], text.encode())
            ok = True
    assert ok, "no signature by the log's key"
    origin, size, root = text.splitlines()[:3]
    return origin, int(size), base64.b64decode(root)


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        assert sn != 0
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    assert sn == 0
    return r


def _pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _ed25519(pub: bytes, sig: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, data)
    except Exception:
        return False
    return True


def _wire(enum_type: Any, value: int, prefix: str) -> str:
    name: str = enum_type.Name(value)
    return name.removeprefix(prefix).lower().replace("_", "-")


def _time(ts: Any) -> str:
    dt = datetime.fromtimestamp(ts.seconds, UTC).replace(microsecond=ts.nanos // 1000)
    return dt.isoformat().replace("+00:00", "Z")


def verify_proof(doc: dict[str, Any], vkey: str) -> dict[str, str]:
    """Check one proof document; return the fields the signed statements give."""
    _, size, root = _note(doc["checkpoint"], vkey)
    assert size == doc["tree_size"]
    log_key = base64.b64decode(vkey.split("+", 2)[2])[1:]
    leaves = {}
    for leaf in doc["leaves"]:
        env = leaf["envelope"]
        payload = base64.b64decode(env["payload"])
        pae = _pae(env["payloadType"], payload)
        assert hashlib.sha256(pae).hexdigest() == leaf["record_id"]
        # A redactable (v2) statement: each disclosure hashes to the commitment the signed
        # payload holds for its group (PROTOCOL.md 3.1), and its value merges in.
        disclosed = b""
        if env["payloadType"].endswith(".v2+protobuf") and "listing" in env["payloadType"]:
            committed = {c.group: c.digest for c in spb.Listing.FromString(payload).commitments}
        elif "status-change.v2" in env["payloadType"]:
            committed = {
                c.group: c.digest for c in spb.StatusChange.FromString(payload).commitments
            }
        else:
            committed = {}
        for d in env.get("disclosures", []):
            salt, value = base64.b64decode(d["salt"]), base64.b64decode(d["value"])
            digest = hashlib.sha256(
                b"alliance.v1.disclosure\n" + bytes([d["group"]]) + salt + value
            ).digest()
            assert committed[d["group"]] == digest
            disclosed += value
        payload += disclosed
        path = [base64.b64decode(h) for h in leaf["audit_path"]]
        leaf_hash = hashlib.sha256(b"\x00" + pae).digest()
        assert _root_from_path(leaf["log_index"], size, leaf_hash, path) == root
        sigs = [base64.b64decode(s["sig"]) for s in env["signatures"]]
        leaves[leaf["role"]] = (env["payloadType"], payload, pae, sigs, leaf["record_id"])

    def member_record(role: str) -> Any:
        mtype, mpayload, mpae, msigs, _ = leaves[role]
        assert mtype.startswith("application/vnd.alliance.member-record.")
        assert any(_ed25519(log_key, s, mpae) for s in msigs)
        return spb.MemberRecord.FromString(mpayload)

    def signed_by(role: str, member: Any) -> bool:
        _, _, pae, sigs, _ = leaves[role]
        return any(_ed25519(k.public_key, s, pae) for k in member.keys for s in sigs)

    def domain(member_id: str) -> str:
        return member_id.removeprefix("spiffe://").split("/", 1)[0]

    def acts_for_listing(authority: Any) -> bool:
        national = authority.HasField("scope") and authority.scope == spb.AuthorityScope.Value(
            "AUTHORITY_SCOPE_NATIONAL"
        )
        return bool(national or authority.region_code[:2] == lst.region_code[:2])

    member = member_record("authority")  # the deciding authority
    assert "/authority/" in member.member_id
    ltype, lpayload, _, _, lid = leaves["listing"]
    assert ltype == "application/vnd.alliance.listing.v2+protobuf"
    lst = spb.Listing.FromString(lpayload)
    listed_at, decision_ref = _time(lst.listed_at), lst.decision_ref
    reported: dict[str, str] = {
        "reported_by": "",
        "reported_at": "",
        "report_ref": "",
        "identification_record_id": "",
    }
    signers = {member.member_id: member}
    if "/authority/" in lst.issuer:
        # An authority's listing: identified when signed, by its issuer.
        assert set(leaves) <= {"listing", "authority", "removal", "remover"}
        assert "identification" not in leaves and "reporter" not in leaves
        assert member.member_id == lst.issuer and signed_by("listing", member)
    else:
        # A platform's report: signed by the platform, identified by the authority.
        assert set(leaves) <= {
            "listing",
            "authority",
            "reporter",
            "identification",
            "reporter_gateway",
            "removal",
            "remover",
        }
        if domain(lst.issuer) == domain(member.member_id):
            # A platform of the publishing alliance: its record signed by the log's key.
            assert "reporter_gateway" not in leaves
            reporter = member_record("reporter")
        else:
            # A platform of another alliance: its gateway's own record, in this log,
            # vouches for the platform's record.
            assert "reporter_gateway" in leaves, "no record vouches for the platform's"
            gtype, gpayload, _, _, _ = leaves["reporter_gateway"]
            assert gtype.startswith("application/vnd.alliance.member-record.")
            gateway = spb.MemberRecord.FromString(gpayload)
            assert gateway.member_id.startswith(f"spiffe://{domain(lst.issuer)}/gateway/")
            assert gateway.role == spb.Role.Value("ROLE_GATEWAY")
            assert gateway.issuer == gateway.member_id and signed_by("reporter_gateway", gateway)
            rtype, rpayload, _, _, _ = leaves["reporter"]
            assert rtype.startswith("application/vnd.alliance.member-record.")
            reporter = spb.MemberRecord.FromString(rpayload)
            assert reporter.issuer == gateway.member_id and signed_by("reporter", gateway)
        assert reporter.member_id == lst.issuer and signed_by("listing", reporter)
        signers[reporter.member_id] = reporter
        _, ipayload, _, _, iid = leaves["identification"]
        ident = spb.StatusChange.FromString(ipayload)
        assert ident.step == spb.LifecycleStep.Value("LIFECYCLE_STEP_IDENTIFIED")
        assert ident.listing_id == lid and ident.issuer == member.member_id
        assert signed_by("identification", member)
        assert acts_for_listing(member)
        listed_at, decision_ref = _time(ident.effective_at), ident.decision_ref
        reported = {
            "reported_by": lst.issuer,
            "reported_at": _time(lst.listed_at),
            "report_ref": lst.decision_ref,
            "identification_record_id": iid,
        }
    fields = {
        "record_id": lid,
        "status": "in_force",
        "name": lst.subject.name,
        "uscc": lst.subject.uscc,
        "list": _wire(spb.ListKind, lst.list, "LIST_KIND_"),
        "conduct": _wire(spb.ConductType, lst.conduct, "CONDUCT_TYPE_"),
        "conduct_other": lst.conduct_other,
        "listed_at": listed_at,
        "decision_ref": decision_ref,
        "region_code": lst.region_code,
        "authority": member.member_id,
        "authority_name": member.display_name,
        "removal_step": "",
        "removal_reason": "",
        "removal_at": "",
        "removal_decided_by": "",
        "removal_decision_ref": "",
        "removal_record_id": "",
        **reported,
    }
    if "removal" in leaves:
        _, rpayload, rpae, rsigs, rid = leaves["removal"]
        change = spb.StatusChange.FromString(rpayload)
        assert change.listing_id == lid
        if change.issuer in signers:
            assert "remover" not in leaves
            assert signed_by("removal", signers[change.issuer])
        elif "remover" in leaves:
            # Another authority of the listing's unit (or a national one) removed it.
            remover = member_record("remover")
            assert remover.member_id == change.issuer and "/authority/" in change.issuer
            assert acts_for_listing(remover) and signed_by("removal", remover)
        else:
            assert any(_ed25519(log_key, s, rpae) for s in rsigs)
        fields.update(
            status="removed",
            removal_step=_wire(spb.LifecycleStep, change.step, "LIFECYCLE_STEP_"),
            removal_reason=change.reason,
            removal_at=_time(change.effective_at),
            removal_decided_by=change.decided_by,
            removal_decision_ref=change.decision_ref,
            removal_record_id=rid,
        )
    assert {k: doc["entry"][k] for k in fields} == fields
    return fields


# -- the running gateway --------------------------------------------------------------------


class Http:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def request(
        self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def json(self, path: str) -> Any:
        status, _, body = self.request(path)
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path)


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    base = pg_base_url()
    if base is None:
        yield f"sqlite:///{tmp_path / 'gw.db'}"
    else:
        with pg_schema_url(base) as url:
            yield url


# The gateway's wall time: the test's listings (2026-10-01, removed 2026-11-05) are inside
# their publication periods on this day whatever day the suite runs.
NOW = datetime(2026, 12, 1, tzinfo=UTC)
LISTED_AT = datetime(2026, 10, 1, tzinfo=UTC)


def listing(issuer: Member, **kw: Any) -> Listing:
    """gwtest's listing, dated on this test's calendar (1 October 2026)."""
    return gwtest.listing(issuer, **{"listed_at": LISTED_AT, **kw})


def _start(alliance: Alliance, db_url: str, **overrides: Any) -> Any:
    cfg = alliance.config(db_url, public_address="127.0.0.1:0", **overrides)
    m = alliance.members
    return running_gateway(cfg, register=(m["zj-amr"], m["shop-a"]), clock=lambda: NOW)


def _synced(gw: Gateway) -> None:
    assert gw.public_feed is not None
    assert gw.public_feed.wait_for_size(gw.core.ledger.size, timeout_s=10)


def _submit(gw: Gateway, member: Member, statement: Any) -> str:
    with member.channel(gw.port) as ch:
        return str(submit(ch, member.sign(statement)).record_id)


def _removal(amr: Member, listing_id: str) -> StatusChange:
    return StatusChange(
        issuer=amr.member_id,
        listing_id=listing_id,
        step=LifecycleStep.REMOVED,
        effective_at=datetime(2026, 11, 5, tzinfo=UTC),
        decision_ref="ZJ-AMR-2026-0099",
        reason="法院撤销失信被执行人信息",
        decided_by="浙江省市场监督管理局",
    )


def test_feed_shows_identified_companies_hides_persons_and_follows_removals(
    alliance: Alliance, db_url: str
) -> None:
    amr, shop = alliance.members["zj-amr"], alliance.members["shop-a"]
    vkey = None
    with _start(alliance, db_url) as gw:
        vkey = gw.core.note_signer.verifier().vkey
        shown = _submit(gw, amr, listing(amr, subject=Subject(uscc=USCC[0], name=NAME)))
        hmac = hashlib.sha256(b"a person").digest()
        person = _submit(gw, amr, listing(amr, subject=Subject(person_hmac=hmac)))
        reported = _submit(gw, shop, listing(shop, uscc=USCC[1]))
        removed = _submit(gw, amr, listing(amr, uscc=USCC[2], decision_ref="ZJ-AMR-2026-0050"))
        _synced(gw)
        http = Http(gw.public_port)

        current = http.json("/v1/listings?unit=33")
        ids = [e["record_id"] for e in current["entries"]]
        assert ids == [shown, removed]
        assert person not in ids and reported not in ids
        first = current["entries"][0]
        assert first["name"] == NAME and first["uscc"] == USCC[0]
        assert first["list"] == "blacklist" and first["conduct"] == "fake-transactions"
        assert first["listed_at"] == "2026-10-01T00:00:00Z"
        assert first["authority"] == amr.member_id and first["status"] == "in_force"
        cursor = current["next_since"]
        assert cursor == current["tree_size"] and current["more"] is False

        # Another unit's feed is empty; the whole alliance's is the same here.
        assert http.json("/v1/listings?unit=44")["entries"] == []
        assert [e["record_id"] for e in http.json("/v1/listings")["entries"]] == ids

        # The removal: in the change feed from the cursor, gone from the current feed.
        removal_id = _submit(gw, amr, _removal(amr, removed))
        _synced(gw)
        changes = http.json(f"/v1/feed?since={cursor}")
        assert [e["record_id"] for e in changes["entries"]] == [removed]
        gone = changes["entries"][0]
        assert gone["status"] == "removed" and gone["removal_record_id"] == removal_id
        assert gone["removal_reason"] == "法院撤销失信被执行人信息"
        assert gone["removal_at"] == "2026-11-05T00:00:00Z"
        assert gone["removal_decided_by"] == "浙江省市场监督管理局"
        assert gone["change_index"] >= cursor
        assert [e["record_id"] for e in http.json("/v1/listings")["entries"]] == [shown]
        # From the start, the change feed holds each entry once, at its latest change.
        everything = http.json("/v1/feed")["entries"]
        assert [e["record_id"] for e in everything] == [shown, removed]

        # Every entry's proof verifies with the verifier above, at the page's checkpoint.
        page = http.json("/v1/feed")
        for entry in page["entries"]:
            doc = http.json(f"/v1/entries/{entry['record_id']}/proof?tree_size={page['tree_size']}")
            assert verify_proof(doc, vkey) == {k: entry[k] for k in verify_proof(doc, vkey)}
        # A hidden listing has no public entry nor proof.
        for hidden in (person, reported):
            assert http.request(f"/v1/entries/{hidden}")[0] == 404
            assert http.request(f"/v1/entries/{hidden}/proof")[0] == 404


def test_a_tampered_field_fails_the_verifier(alliance: Alliance, db_url: str) -> None:
    amr = alliance.members["zj-amr"]
    with _start(alliance, db_url) as gw:
        vkey = gw.core.note_signer.verifier().vkey
        rid = _submit(gw, amr, listing(amr, subject=Subject(uscc=USCC[0], name=NAME)))
        _synced(gw)
        doc = Http(gw.public_port).json(f"/v1/entries/{rid}/proof")
        verify_proof(doc, vkey)
        doc["entry"]["name"] = "另一家公司"
        with pytest.raises(AssertionError):
            verify_proof(doc, vkey)


def test_pages_resume_by_cursor(alliance: Alliance, db_url: str) -> None:
    amr = alliance.members["zj-amr"]
    with _start(alliance, db_url) as gw:
        submitted = [
            _submit(gw, amr, listing(amr, uscc=USCC[i % 3], decision_ref=f"ZJ-{i}"))
            for i in range(7)
        ]
        _synced(gw)
        http = Http(gw.public_port)
        seen: list[str] = []
        since, pages = 0, 0
        while True:
            page = http.json(f"/v1/feed?since={since}&limit=3")
            pages += 1
            seen += [e["record_id"] for e in page["entries"]]
            assert len(page["entries"]) <= 3
            since = page["next_since"]
            if not page["more"]:
                break
        assert seen == submitted and pages == 3
        # The mirror's next poll from the cursor finds nothing new.
        assert http.json(f"/v1/feed?since={since}")["entries"] == []
        # CSV: Chinese headers, the same entries.
        status, headers, body = http.request("/v1/feed?format=csv&limit=2")
        assert status == 200 and headers["content-type"].startswith("text/csv")
        text = body.decode("utf-8-sig").splitlines()
        assert "统一社会信用代码" in text[0] and "移出原因" in text[0]
        assert "作出决定机关(移出)" in text[0]
        assert len(text) == 3 and submitted[0] in text[1]
        assert headers["alliance-more"] == "true"
        # Bounded pages.
        status, _, body = http.request("/v1/feed?limit=5000")
        assert status == 400 and b"limit" in body
        assert http.request("/v1/feed?since=-1")[0] == 400
        assert http.request("/v1/feed?unit=99")[0] == 400


def test_only_public_reads_are_reachable(alliance: Alliance, db_url: str) -> None:
    amr = alliance.members["zj-amr"]
    with _start(alliance, db_url) as gw:
        rid = _submit(gw, amr, listing(amr))
        _synced(gw)
        http = Http(gw.public_port)
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, headers, _ = http.request("/v1/feed", method=method)
            assert status == 405 and "GET" in headers.get("allow", "")
        assert http.request("/v1/feed", method="HEAD")[0] == 200
        # Member-only things: the gRPC services' paths, records that are no entry.
        for path in (
            "/alliance.v1.Exchange/Check",
            "/alliance.v1.AuditLog/GetEntries",
            "/v1/records",
            "/v1/sanctions",
            "/metrics",
        ):
            assert http.request(path)[0] == 404
            assert http.request(path, method="POST")[0] in (404, 405)
        # Member records are in the log but are no public entry.
        others = [
            r for r in gw.core.store.records_range(0, gw.core.ledger.size) if r.record_id != rid
        ]
        assert others
        for r in others:
            assert http.request(f"/v1/entries/{r.record_id}")[0] == 404
            assert http.request(f"/v1/entries/{r.record_id}/proof")[0] == 404
        assert http.request("/v1/entries/not-a-record-id")[0] == 400


def test_rate_limit_answers_429_with_retry_after(alliance: Alliance, db_url: str) -> None:
    with _start(alliance, db_url, public_rate_per_client_rps=0.5, public_rate_burst=3) as gw:
        _synced(gw)
        http = Http(gw.public_port)
        statuses = [http.request("/healthz")[0] for _ in range(3)]
        assert statuses == [200, 200, 200]
        status, headers, body = http.request("/healthz")
        assert status == 429
        assert int(headers["retry-after"]) >= 1
        assert b"too many" in body
        assert gw.public_metrics.rate_limited._value.get() >= 1


def test_etag_revalidation_answers_304(alliance: Alliance, db_url: str) -> None:
    amr = alliance.members["zj-amr"]
    with _start(alliance, db_url) as gw:
        _submit(gw, amr, listing(amr))
        _synced(gw)
        http = Http(gw.public_port)
        status, headers, body = http.request("/v1/feed")
        assert status == 200 and headers["etag"] and headers["last-modified"]
        again = http.request("/v1/feed", headers={"If-None-Match": headers["etag"]})
        assert again[0] == 304 and again[2] == b""
        other = http.request("/v1/feed", headers={"If-None-Match": '"something-else"'})
        assert other[0] == 200 and other[2] == body


def test_the_cli_verifies_a_page_and_refuses_a_wrong_key(
    alliance: Alliance, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    amr = alliance.members["zj-amr"]
    with _start(alliance, db_url) as gw:
        vkey = gw.core.note_signer.verifier().vkey
        rid = _submit(gw, amr, listing(amr, subject=Subject(uscc=USCC[0], name=NAME)))
        other = _submit(gw, amr, listing(amr, uscc=USCC[1]))
        _submit(gw, amr, _removal(amr, other))
        _synced(gw)
        url = f"http://127.0.0.1:{gw.public_port}/v1/feed?unit=33"
        key_file = tmp_path / "log.vkey"
        key_file.write_text(vkey + "\n")
        assert cli_main(["public", "verify", url, "--log-vkey", str(key_file)]) == 0
        out = capsys.readouterr().out
        assert f"ok      {rid}" in out and "2 verified, 0 failed" in out
        stranger = NoteSigner(gw.config.log_origin, SigningKey.generate()).verifier().vkey
        assert cli_main(["public", "verify", url, "--log-vkey", stranger]) == 1
        assert "does not verify" in capsys.readouterr().err
        assert cli_main(["public", "verify", url, "--log-vkey", "not-a-key"]) == 2


def _removed_listing_proof(gw: Gateway, amr: Member) -> Any:
    """An authority's company listing and its removal, synced to the feed: the proof
    document of its entry."""
    rid = _submit(gw, amr, listing(amr, subject=Subject(uscc=USCC[0], name=NAME)))
    _submit(gw, amr, _removal(amr, rid))
    _synced(gw)
    return Http(gw.public_port).json(f"/v1/entries/{rid}/proof")


def test_every_check_of_the_proof_can_fail(alliance: Alliance, db_url: str) -> None:
    """The project's own verifier (the CLI's and the search page's) refuses each kind of
    tampering: a field, an audit path, a signature, a leaf of another record."""
    amr = alliance.members["zj-amr"]
    with _start(alliance, db_url) as gw:
        verifier = gw.core.note_signer.verifier()
        doc = _removed_listing_proof(gw, amr)
        assert verify_entry_proof(doc, verifier, decode=decode_public).fields["status"] == (
            "removed"
        )

        def broken(change: Any) -> dict[str, Any]:
            copy: dict[str, Any] = json.loads(json.dumps(doc))
            change(copy)
            return copy

        def leaf(d: dict[str, Any], role: str) -> dict[str, Any]:
            found: dict[str, Any] = next(x for x in d["leaves"] if x["role"] == role)
            return found

        def flip(b64: str) -> str:
            raw = bytearray(base64.b64decode(b64))
            raw[-1] ^= 1
            return base64.b64encode(bytes(raw)).decode()

        tampered = {
            "field": lambda d: d["entry"].update(removal_reason="别的原因"),
            "status": lambda d: d["entry"].update(status="in_force"),
            "path": lambda d: leaf(d, "listing").update(
                audit_path=[flip(h) for h in leaf(d, "listing")["audit_path"]]
            ),
            "index": lambda d: leaf(d, "listing").update(
                log_index=leaf(d, "listing")["log_index"] + 1
            ),
            "listing signature": lambda d: leaf(d, "listing")["envelope"]["signatures"][0].update(
                sig=flip(leaf(d, "listing")["envelope"]["signatures"][0]["sig"])
            ),
            "member signature": lambda d: leaf(d, "authority")["envelope"]["signatures"][0].update(
                sig=flip(leaf(d, "authority")["envelope"]["signatures"][0]["sig"])
            ),
            "no removal leaf": lambda d: d.update(
                leaves=[x for x in d["leaves"] if x["role"] != "removal"]
            ),
            "checkpoint": lambda d: d.update(checkpoint=d["checkpoint"].replace("\n", "\n\n", 1)),
            "tree size": lambda d: d.update(tree_size=d["tree_size"] + 1),
        }
        for what, change in tampered.items():
            with pytest.raises(GatewayError):
                verify_entry_proof(broken(change), verifier, decode=decode_public)
                pytest.fail(f"{what}: tampering went unnoticed")


def test_public_requests_are_counted_on_the_metrics_endpoint(
    alliance: Alliance, db_url: str
) -> None:
    with _start(alliance, db_url, public_rate_per_client_rps=1, public_rate_burst=2) as gw:
        _synced(gw)
        http = Http(gw.public_port)
        assert http.request("/v1/feed")[0] == 200
        assert http.request("/nowhere")[0] == 404
        assert http.request("/v1/feed")[0] == 429
        status, _, body = Http(gw.metrics_port).request("/metrics")
        assert status == 200
        text = body.decode()
        assert 'alliance_public_requests_total{route="feed_changes",status="200"} 1.0' in text
        assert 'alliance_public_requests_total{route="none",status="404"} 1.0' in text
        assert 'alliance_public_requests_total{route="none",status="429"} 1.0' in text
        assert "alliance_public_rate_limited_total 1.0" in text
        assert 'alliance_public_request_duration_seconds_count{route="feed_changes"} 1.0' in text
        assert "alliance_public_feed_entries" in text


def test_the_service_is_off_by_default(alliance: Alliance, db_url: str) -> None:
    cfg = alliance.config(db_url)
    with running_gateway(cfg) as gw:
        assert gw.public_server is None and gw.public_port == 0


def test_an_erased_listing_leaves_the_feed_the_search_and_its_proof(
    alliance: Alliance, db_url: str
) -> None:
    """Erasure (issue 18): once a removed listing's records are erased, the feed has no
    name or code to show: the entry leaves the page, the search and its proof; the
    listing that is not erased stays."""
    amr = alliance.members["zj-amr"]
    with _start(alliance, db_url) as gw:
        erased = _submit(gw, amr, listing(amr, subject=Subject(uscc=USCC[0], name=NAME)))
        removal = _submit(gw, amr, _removal(amr, erased))
        kept = _submit(gw, amr, listing(amr, uscc=USCC[1]))
        _synced(gw)
        http = Http(gw.public_port)
        assert {e["record_id"] for e in http.json("/v1/feed")["entries"]} == {erased, kept}
        assert http.request(f"/v1/entries/{erased}/proof")[0] == 200
        assert NAME.encode() in http.request(f"/entity/{USCC[0]}")[2]  # shown before
        _submit(
            gw,
            amr,
            Erasure(
                issuer=amr.member_id,
                record_ids=(erased, removal),
                basis=ErasureBasis.PURPOSE_ACHIEVED,
                legal_basis="PIPL art. 47(1): the listing was removed",
                effective_at=NOW,
            ),
        )
        _synced(gw)
        assert [e["record_id"] for e in http.json("/v1/feed")["entries"]] == [kept]
        assert http.request(f"/v1/entries/{erased}/proof")[0] == 404
        assert http.request(f"/v1/entries/{erased}")[0] == 404
        page = http.request(f"/entity/{USCC[0]}")
        assert NAME.encode() not in page[2]
        assert http.request(f"/v1/entries/{kept}/proof")[0] == 200


# -- a platform's report, published once an authority identified it -------------------------

IDENTIFIED_AT = datetime(2026, 10, 8, tzinfo=UTC)


def _identification(amr: Member, listing_id: str) -> StatusChange:
    return StatusChange(
        issuer=amr.member_id,
        listing_id=listing_id,
        step=LifecycleStep.IDENTIFIED,
        effective_at=IDENTIFIED_AT,
        decision_ref="ZJ-AMR-认定-2026-0007",
    )


def _leaf_of(doc: dict[str, Any], role: str) -> dict[str, Any]:
    found: dict[str, Any] = next(x for x in doc["leaves"] if x["role"] == role)
    return found


def _without(doc: dict[str, Any], role: str) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    changed["leaves"] = [x for x in changed["leaves"] if x["role"] != role]
    return changed


def _missigned(doc: dict[str, Any], role: str) -> dict[str, Any]:
    """``doc`` with a bit of the ``role`` leaf's first signature flipped."""
    changed = copy.deepcopy(doc)
    sig = _leaf_of(changed, role)["envelope"]["signatures"][0]
    raw = bytearray(base64.b64decode(sig["sig"]))
    raw[0] ^= 1
    sig["sig"] = base64.b64encode(bytes(raw)).decode()
    return changed


def _refused(
    doc: dict[str, Any],
    verifier: NoteVerifier,
    match: str | None,
    *,
    independent: type[Exception] | tuple[type[Exception], ...] = AssertionError,
    what: str = "the proof",
) -> None:
    """Both verifiers refuse ``doc``: the one above (with ``independent``) and the
    project's (with a message that matches ``match``)."""
    with pytest.raises(independent):
        verify_proof(doc, verifier.vkey)
        pytest.fail(f"{what}: accepted by the independent verifier")
    with pytest.raises(GatewayError, match=match):
        verify_entry_proof(doc, verifier, decode=decode_public)
        pytest.fail(f"{what}: accepted by the project's verifier")


def test_a_platform_report_is_published_once_an_authority_identified_it(
    alliance: Alliance,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    amr, shop = alliance.members["zj-amr"], alliance.members["shop-a"]
    with _start(alliance, db_url) as gw:
        verifier = gw.core.note_signer.verifier()
        vkey = verifier.vkey
        report = _submit(
            gw, shop, listing(shop, subject=Subject(uscc=USCC[1], name=NAME), decision_ref="A-7")
        )
        person = _submit(
            gw, shop, listing(shop, subject=Subject(person_hmac=hashlib.sha256(b"p").digest()))
        )
        _synced(gw)
        http = Http(gw.public_port)
        # Reported: not published.
        before = http.json("/v1/feed")
        assert before["entries"] == []
        for hidden in (report, person):
            assert http.request(f"/v1/entries/{hidden}")[0] == 404
            assert http.request(f"/v1/entries/{hidden}/proof")[0] == 404
        assert NAME.encode() not in http.request(f"/entity/{USCC[1]}")[2]

        ident = _submit(gw, amr, _identification(amr, report))
        _submit(gw, amr, _identification(amr, person))
        _synced(gw)
        # Identified: in the change feed from the cursor, at the identification's index.
        (entry,) = http.json(f"/v1/feed?since={before['next_since']}")["entries"]
        assert entry["record_id"] == report and entry["status"] == "in_force"
        assert entry["change_index"] == gw.core.store.records_by_ids([ident])[ident].log_index
        # The listing decision is the authority's identification; the report beside it.
        assert entry["authority"] == amr.member_id
        assert entry["listed_at"] == "2026-10-08T00:00:00Z"
        assert entry["decision_ref"] == "ZJ-AMR-认定-2026-0007"
        assert entry["reported_by"] == shop.member_id and entry["report_ref"] == "A-7"
        assert entry["reported_at"] == "2026-10-01T00:00:00Z"
        assert entry["identification_record_id"] == ident
        # The natural person stays hidden, identified or not.
        assert [e["record_id"] for e in http.json("/v1/feed")["entries"]] == [report]
        assert http.request(f"/v1/entries/{person}/proof")[0] == 404
        # The search page shows it, verified, with the identifying authority.
        page = http.request(f"/entity/{USCC[1]}")[2].decode()
        assert NAME in page and "ZJ-AMR-认定-2026-0007" in page and 'class="verified"' in page
        assert "报送平台" in page and shop.member_id in page and "认定同样通过验证" in page

        doc = http.json(f"/v1/entries/{report}/proof")
        assert {x["role"] for x in doc["leaves"]} == {
            "listing",
            "identification",
            "authority",
            "reporter",
        }
        fields = verify_proof(doc, vkey)
        assert fields["authority"] == amr.member_id and fields["reported_by"] == shop.member_id
        assert verify_entry_proof(doc, verifier, decode=decode_public).fields == {
            k: entry[k] for k in fields
        }
        # Without its identification leaf, or its platform's record, the proof fails.
        for role in ("identification", "reporter"):
            _refused(
                _without(doc, role),
                verifier,
                f"no {role} leaf",
                independent=(AssertionError, KeyError),
            )
        # A tampered identification: its signature, its date as published.
        _refused(_missigned(doc, "identification"), verifier, "identification leaf: not signed")
        misdated = copy.deepcopy(doc)
        misdated["entry"]["listed_at"] = "2026-10-01T00:00:00Z"  # the report's date
        _refused(misdated, verifier, "listed_at")

        # The CLI verifies the page holding it.
        key_file = tmp_path / "log.vkey"
        key_file.write_text(vkey + "\n")
        url = f"http://127.0.0.1:{gw.public_port}/v1/feed?unit=33"
        assert cli_main(["public", "verify", url, "--log-vkey", str(key_file)]) == 0
        out = capsys.readouterr().out
        assert f"ok      {report}" in out and "1 verified, 0 failed" in out

        # The identifying authority removes it: a removal signed by the identifier.
        removal = _submit(gw, amr, _removal(amr, report))
        _synced(gw)
        (gone,) = http.json("/v1/feed")["entries"]
        assert gone["status"] == "removed" and gone["removal_record_id"] == removal
        removed = http.json(f"/v1/entries/{report}/proof")
        assert verify_proof(removed, vkey)["status"] == "removed"
        assert verify_entry_proof(removed, verifier, decode=decode_public).fields["status"] == (
            "removed"
        )
        # An identification leaf that is no IDENTIFIED step (the removal, in the same
        # log and signed by the same authority) fails both verifiers.
        swapped = _without(removed, "identification")
        swapped["leaves"].append({**_leaf_of(removed, "removal"), "role": "identification"})
        _refused(swapped, verifier, "not an IDENTIFIED status change")
        assert cli_main(["public", "verify", url, "--log-vkey", str(key_file)]) == 0
        assert f"ok      {report}" in capsys.readouterr().out


def test_an_authority_listing_with_a_report_leaf_is_refused(
    alliance: Alliance, db_url: str
) -> None:
    """The leaves are what the listing needs, no more: an authority's listing with an
    identification leaf (here its own removal) is refused."""
    amr = alliance.members["zj-amr"]
    with _start(alliance, db_url) as gw:
        verifier = gw.core.note_signer.verifier()
        doc = _removed_listing_proof(gw, amr)
        doc["leaves"].append({**_leaf_of(doc, "removal"), "role": "identification"})
        with pytest.raises(GatewayError, match="an authority's listing has no identification"):
            verify_entry_proof(doc, verifier, decode=decode_public)
        doc["leaves"][-1]["role"] = "witness"
        with pytest.raises(GatewayError, match="unknown role"):
            verify_entry_proof(doc, verifier, decode=decode_public)


def test_a_removal_by_another_authority_of_the_unit_carries_its_record(
    alliance: Alliance, db_url: str
) -> None:
    """A listing removed by an authority that neither issued nor identified it: the proof
    carries that authority's member record (role ``remover``) so the removal's signature
    checks; without it, or with another member's record, the proof fails."""
    amr = alliance.members["zj-amr"]
    city = alliance.member("authority", "hz-amr", region="330100")
    cfg = alliance.config(db_url, public_address="127.0.0.1:0")
    with running_gateway(cfg, register=(amr, city), clock=lambda: NOW) as gw:
        verifier = gw.core.note_signer.verifier()
        vkey = verifier.vkey
        rid = _submit(gw, amr, listing(amr, subject=Subject(uscc=USCC[0], name=NAME)))
        removal_id = _submit(
            gw, city, dataclasses.replace(_removal(amr, rid), issuer=city.member_id)
        )
        _synced(gw)
        doc = Http(gw.public_port).json(f"/v1/entries/{rid}/proof")
        assert {x["role"] for x in doc["leaves"]} == {"listing", "authority", "removal", "remover"}
        fields = verify_proof(doc, vkey)
        assert fields["status"] == "removed" and fields["removal_record_id"] == removal_id
        assert verify_entry_proof(doc, verifier, decode=decode_public).fields["status"] == (
            "removed"
        )
        _refused(_without(doc, "remover"), verifier, "not signed by the listing's issuer")
        wrong = _without(doc, "remover")
        wrong["leaves"].append({**_leaf_of(doc, "authority"), "role": "remover"})
        _refused(wrong, verifier, "remover leaf")


# -- another alliance's platform, identified here: published by the deciding authority's ----


def _member_leaf(gw: Gateway, member_id: str, size: int) -> dict[str, Any]:
    """A ``reporter_gateway`` leaf, as the feed builds one, of ``member_id``'s first
    self-issued record in ``gw``'s log, with its audit path at ``size``."""
    rows = gw.core.store.records_of_types_range(sorted(MEMBER_RECORD_TYPES), 0, size)
    for r in rows:
        stmt = decode_statement(r.payload_type, r.payload, r.disclosures)
        if isinstance(stmt, MemberRecord) and stmt.member_id == member_id == stmt.issuer:
            _, path = gw.audit.inclusion_proof(r.log_index, size)
            return _leaf("reporter_gateway", r, path)
    raise AssertionError(f"no record of {member_id} in the log")


def test_a_report_of_another_alliances_platform_is_published_by_the_identifying_alliance(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Zhejiang platform reports a Guangdong seller; the Guangdong authority identifies
    it. Guangdong's feed publishes it (the deciding authority's credit website), with a
    proof that carries Zhejiang's gateway record (``reporter_gateway``) vouching for the
    platform's, checked by both verifiers and the CLI with Guangdong's log key alone;
    Zhejiang's feed does not publish it. Without that leaf, tampered, or with a record
    that is no gateway of Zhejiang, the proof fails."""
    zj = zhejiang(tmp_path / "zj")
    gd = Alliance(tmp_path / "gd", "gd.alliance.test", region="440300")
    gd_amr = gd.member("authority", "gd-amr", region="440000")
    shop, zj_amr = zj.members["shop-a"], zj.members["zj-amr"]
    ports = {"zj": reserve_port(), "gd": reserve_port()}
    with ExitStack() as stack:
        gd_url = f"sqlite:///{tmp_path / 'gd.db'}"
        if not db_url.startswith("sqlite"):
            gd_url = stack.enter_context(pg_schema_url(pg_base_url() or ""))

        def config(a: Alliance, url: str, me: str, peer: Alliance, other: str) -> Any:
            return a.config(
                url,
                listen_address=f"127.0.0.1:{ports[me]}",
                public_address="127.0.0.1:0",
                federation_backoff_initial_s=0.1,
                federation_backoff_max_s=0.5,
                peers=[peer.peer_entry(ports[other])],
            )

        a = stack.enter_context(
            running_gateway(
                config(zj, db_url, "zj", gd, "gd"), register=(shop, zj_amr), clock=lambda: NOW
            )
        )
        b = stack.enter_context(
            running_gateway(
                config(gd, gd_url, "gd", zj, "zj"), register=(gd_amr,), clock=lambda: NOW
            )
        )
        report = _submit(
            a,
            shop,
            listing(
                shop,
                subject=Subject(uscc=USCC[1], name="深圳示例电子有限公司"),
                region_code="440300",
                decision_ref="A-44",
            ),
        )
        eventually(lambda: b.core.store.record_by_id(report) is not None, "GD holds the report")
        ident = _submit(
            b,
            gd_amr,
            dataclasses.replace(
                _identification(gd_amr, report), decision_ref="GD-AMR-认定-2026-0044"
            ),
        )
        eventually(lambda: a.core.store.record_by_id(ident) is not None, "ZJ holds it")
        _synced(a)
        _synced(b)

        # Zhejiang's feed does not publish it: identified by another alliance's authority.
        zj_http = Http(a.public_port)
        assert zj_http.json("/v1/feed")["entries"] == []
        assert zj_http.request(f"/v1/entries/{report}")[0] == 404
        assert zj_http.request(f"/v1/entries/{report}/proof")[0] == 404

        # Guangdong's does, in unit 44, as its authority's decision.
        http = Http(b.public_port)
        (entry,) = http.json("/v1/feed?unit=44")["entries"]
        assert entry["record_id"] == report and entry["status"] == "in_force"
        assert entry["authority"] == gd_amr.member_id
        assert entry["decision_ref"] == "GD-AMR-认定-2026-0044"
        assert entry["reported_by"] == shop.member_id and entry["report_ref"] == "A-44"
        assert entry["identification_record_id"] == ident
        # Its search page shows it verified; Zhejiang's does not show it.
        page = http.request(f"/entity/{USCC[1]}")[2].decode()
        assert "深圳示例电子有限公司" in page and 'class="verified"' in page
        assert "深圳示例电子有限公司" not in zj_http.request(f"/entity/{USCC[1]}")[2].decode()

        verifier = b.core.note_signer.verifier()
        vkey = verifier.vkey
        doc = http.json(f"/v1/entries/{report}/proof")
        assert {x["role"] for x in doc["leaves"]} == {
            "listing",
            "identification",
            "authority",
            "reporter",
            "reporter_gateway",
        }
        fields = verify_proof(doc, vkey)
        assert fields["authority"] == gd_amr.member_id
        assert verify_entry_proof(doc, verifier, decode=decode_public).fields == {
            k: entry[k] for k in fields
        }
        key_file = tmp_path / "gd.vkey"
        key_file.write_text(vkey + "\n")
        url = f"http://127.0.0.1:{b.public_port}/v1/feed?unit=44"
        assert cli_main(["public", "verify", url, "--log-vkey", str(key_file)]) == 0
        out = capsys.readouterr().out
        assert f"ok      {report}" in out and "1 verified, 0 failed" in out
        # Zhejiang's log key does not verify Guangdong's checkpoint.
        _refused(doc, a.core.note_signer.verifier(), None)

        # Without the gateway record, the platform's record is vouched for by nobody.
        _refused(_without(doc, "reporter_gateway"), verifier, "no reporter_gateway leaf")
        # A tampered gateway record: its signature; its payload (no longer its record id).
        _refused(_missigned(doc, "reporter_gateway"), verifier, "reporter_gateway leaf: not signed")
        altered = copy.deepcopy(doc)
        env = _leaf_of(altered, "reporter_gateway")["envelope"]
        env["payload"] = base64.b64encode(base64.b64decode(env["payload"]) + b"\x00").decode()
        _refused(altered, verifier, "reporter_gateway leaf: its envelope does not")
        # A record that is no gateway of Zhejiang: the authority's, or Guangdong's own
        # gateway record (self-signed, in this log).
        stand_ins = {
            "authority": {**_leaf_of(doc, "authority"), "role": "reporter_gateway"},
            "gd gateway": _member_leaf(b, gd.gateway_id, doc["tree_size"]),
        }
        for what, stand_in in stand_ins.items():
            wrong = _without(doc, "reporter_gateway")
            wrong["leaves"].append(stand_in)
            _refused(wrong, verifier, "is not a gateway of the platform's", what=what)
        # Zhejiang's gateway record, standing in for the reporter: not a platform record
        # of the listing's issuer.
        swapped = _without(doc, "reporter")
        swapped["leaves"].append({**_leaf_of(doc, "reporter_gateway"), "role": "reporter"})
        _refused(swapped, verifier, "reporter leaf")


def test_a_same_alliance_report_with_a_reporter_gateway_leaf_is_refused(
    alliance: Alliance, db_url: str
) -> None:
    """The gateway record is needed only for a platform of another alliance: beside a
    platform of the publishing one (its record signed by the log key) it is refused."""
    amr, shop = alliance.members["zj-amr"], alliance.members["shop-a"]
    with _start(alliance, db_url) as gw:
        verifier = gw.core.note_signer.verifier()
        report = _submit(gw, shop, listing(shop, subject=Subject(uscc=USCC[1], name=NAME)))
        _submit(gw, amr, _identification(amr, report))
        _synced(gw)
        doc = Http(gw.public_port).json(f"/v1/entries/{report}/proof")
        assert "reporter_gateway" not in {x["role"] for x in doc["leaves"]}
        doc["leaves"].append(_member_leaf(gw, alliance.gateway_id, doc["tree_size"]))
        _refused(doc, verifier, r"reporter_gateway leaf: .* publishing alliance")
