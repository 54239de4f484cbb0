"""The rules and worked examples of docs/PROTOCOL.md, checked against a running gateway:
the default deadline near a month end, the deadline rules a client can discover, how
to verify the gateway's certificate, when a checkpoint covers an acknowledged record,
old checkpoints, what AddCosignature accepts, splitting a vkey, the contents line, the
imported well-known type, and a third-party DSSE verifier (securesystemslib)."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID
from gwtest import USCC, Alliance, Member, audit, exchange, listing, running_gateway, submit
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError as SslibVerificationError
from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

from certs.pki import generate_signing_key
from gateway import codec
from gateway.core import dsse, merkle
from gateway.core.crypto import load_signing_key
from gateway.core.notes import (
    Checkpoint,
    CosignatureSigner,
    NoteSigner,
    open_checkpoint,
    parse_signed_note,
)
from gateway.core.statements import ConductType, ListKind
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import compliance_pb2 as co
from gateway.pb.alliance.v1 import compliance_pb2_grpc
from gateway.pb.alliance.v1 import exchange_pb2 as ex

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "PROTOCOL.md"
_BLOCK = re.compile(r"^```(?:text|json) example=([\w-]+)\n(.*?)\n```$", re.M | re.S)


def _example(name: str) -> str:
    blocks: dict[str, str] = dict(_BLOCK.findall(DOC.read_text(encoding="utf-8")))
    return blocks[name]


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    a.member("monitor", "ndrc", region="110000")
    return a


@pytest.fixture
def gateway(alliance: Alliance, database_url: str) -> Iterator[Gateway]:
    config = alliance.config(
        database_url, deadline_rules="BLACKLIST=3, KEY_SCRUTINY=6, BLACKLIST/COUNTERFEIT=2"
    )
    members = (alliance.members["zj-amr"], alliance.members["ndrc"])
    with running_gateway(config, register=members) as gw:
        yield gw


def _code(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- 7: the default deadline is counted on the calendar of UTC+08:00 ----------------


def test_default_deadline_example_at_a_month_end(gateway: Gateway, alliance: Alliance) -> None:
    rows = {
        line[:20].strip(): line[20:].split()[0]
        for line in _example("deadline-month-end").splitlines()
    }
    listed_at, deadline = _utc(rows["listed_at"]), _utc(rows["correction deadline"])
    in_utc = _utc(rows["counted in UTC"])
    assert (in_utc - deadline).days == 1
    amr = alliance.members["zj-amr"]
    with amr.channel(gateway.port) as ch:
        stmt = listing(amr, uscc=USCC[0], listed_at=listed_at)
        listing_id = submit(ch, amr.sign(stmt)).record_id
        got = compliance_pb2_grpc.ComplianceStub(ch).GetCompliance(
            co.GetComplianceRequest(listing_id=listing_id), timeout=10
        )
        assert got.correction_deadline.ToDatetime(tzinfo=UTC) == deadline
        # The UTC reading, signed as the deadline, is a day later than the rule allows.
        late = listing(amr, uscc=USCC[1], listed_at=listed_at, correction_deadline=in_utc)
        with pytest.raises(grpc.RpcError) as refused:
            submit(ch, amr.sign(late))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        hint = refused.value.details() or ""
        assert "UTC+08:00" in hint and "GetDeadlineRules" in hint
        assert "DeadlineRules.deadline_for" not in hint  # the rule, not a Python API
        exact = listing(amr, uscc=USCC[1], listed_at=listed_at, correction_deadline=deadline)
        assert submit(ch, amr.sign(exact)).log_index > 0


# --- 8: the deadline rules in force are discoverable --------------------------------


def _rules_text(rules: co.DeadlineRules) -> str:
    lines = [f"protocol_default_months: {rules.protocol_default_months}"]
    for alliance in rules.alliances:
        lines.append(f"alliance {alliance.trust_domain} ({alliance.gateway})")
        for rule in alliance.rules:
            name = ListKind(rule.list).name
            if rule.conduct:
                name += f" / {ConductType(rule.conduct).name}"
            lines.append(f"  {name:<25} {rule.months}")
    return "\n".join(lines)


def test_get_deadline_rules_answers_the_documented_rules_it_enforces(
    gateway: Gateway, alliance: Alliance
) -> None:
    amr = alliance.members["zj-amr"]
    with amr.channel(gateway.port) as ch:
        rules = compliance_pb2_grpc.ComplianceStub(ch).GetDeadlineRules(
            co.GetDeadlineRulesRequest(), timeout=10
        )
        assert _rules_text(rules) == _example("deadline-rules")
        listed_at = _utc("2026-11-29T20:00:00Z")
        allowed = _utc("2027-01-29T20:00:00Z")  # the document's counterfeit example
        assert f"may carry a deadline up to\n{allowed:%Y-%m-%dT%H:%M:%SZ}" in DOC.read_text()
        counterfeit = {"conduct": ConductType.COUNTERFEIT, "listed_at": listed_at}
        ok = listing(amr, uscc=USCC[0], correction_deadline=allowed, **counterfeit)
        assert submit(ch, amr.sign(ok)).log_index > 0
        day_late = allowed.replace(day=30)
        late = listing(amr, uscc=USCC[1], correction_deadline=day_late, **counterfeit)
        with pytest.raises(grpc.RpcError) as refused:
            submit(ch, amr.sign(late))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


# --- 10: the gateway's certificate ---------------------------------------------------


def _tls_context(member: Member) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(member.ca))
    context.load_cert_chain(str(member.cert), str(member.key))
    context.set_alpn_protocols(["h2"])
    return context


def test_the_gateway_certificate_is_verified_as_documented(
    gateway: Gateway, alliance: Alliance
) -> None:
    monitor = alliance.members["ndrc"]
    context = _tls_context(monitor)
    with (
        socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [alliance.gateway_id]
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    # A name the certificate does not carry fails the host-name check.
    with (
        socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="gw.elsewhere.example")


# --- 10 and 5: checkpoints -----------------------------------------------------------


def _size(note: str) -> int:
    return Checkpoint.parse(parse_signed_note(note)[0]).size


def _checkpoint_past(ch: grpc.Channel, index: int) -> str:
    """Poll GetCheckpoint, as the document says, until one covers ``index``."""
    deadline = time.monotonic() + 15
    while True:
        note = audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10).note
        if _size(note) > index:
            return note
        assert time.monotonic() < deadline, f"no checkpoint covers index {index}"
        time.sleep(0.05)


def test_old_checkpoints_are_served_with_their_cosignatures_and_verify(
    gateway: Gateway, alliance: Alliance
) -> None:
    amr, ndrc = alliance.members["zj-amr"], alliance.members["ndrc"]
    verifier = NoteSigner(gateway.config.log_origin, gateway.core.key).verifier()
    cosigner = CosignatureSigner(ndrc.member_id, ndrc.signing_key)
    notes: list[str] = []
    with amr.channel(gateway.port) as ch, ndrc.channel(gateway.port) as mon:
        for code in USCC:
            index = submit(ch, amr.sign(listing(amr, uscc=code))).log_index
            notes.append(_checkpoint_past(mon, index))
            # A record acknowledged at index i is in a checkpoint of size > i; its proof
            # at that size verifies against that checkpoint's root.
            cp = open_checkpoint(notes[-1], verifier)
            proof = audit(mon).GetInclusionProof(
                au.GetInclusionProofRequest(leaf_index=index, tree_size=cp.size), timeout=10
            )
            (entry,) = audit(mon).GetEntries(
                au.GetEntriesRequest(start=index, end=index + 1), timeout=10
            )
            leaf = merkle.leaf_hash(codec.envelope_from_pb(entry.envelope).pae())
            merkle.verify_inclusion(index, cp.size, leaf, list(proof.hashes), cp.root_hash)
        first = open_checkpoint(notes[0], verifier)
        body = first.body()
        line = cosigner.cosign(body, int(time.time()))
        audit(mon).AddCosignature(
            au.AddCosignatureRequest(checkpoint=body, signature_line=line), timeout=10
        )
        old = audit(mon).GetCheckpoint(au.GetCheckpointRequest(tree_size=first.size), timeout=10)
        assert old.note.startswith(notes[0].rstrip("\n")) and old.note.endswith(line)
        assert open_checkpoint(old.note, verifier) == first
        # It is consistent with the newest, and rebuilt from the entries it covers.
        newest = open_checkpoint(notes[-1], verifier)
        consistency = audit(mon).GetConsistencyProof(
            au.GetConsistencyProofRequest(first_size=first.size, second_size=newest.size),
            timeout=10,
        )
        merkle.verify_consistency(
            first.size, newest.size, first.root_hash, newest.root_hash, list(consistency.hashes)
        )
        tree = merkle.CompactRange()
        for e in audit(mon).GetEntries(au.GetEntriesRequest(start=0, end=first.size)):
            tree.append(merkle.leaf_hash(codec.envelope_from_pb(e.envelope).pae()))
        assert tree.root() == first.root_hash
        # 0 asks for the newest; a size never signed, or past the log, is NOT_FOUND.
        newest_note = audit(mon).GetCheckpoint(au.GetCheckpointRequest(), timeout=10).note
        assert _size(newest_note) >= newest.size
        for size in (first.size + 10**6, 2**63):
            request = au.GetCheckpointRequest(tree_size=size)
            assert _code(lambda r=request: audit(mon).GetCheckpoint(r, timeout=10)) == (
                grpc.StatusCode.NOT_FOUND
            )


def test_a_consistency_proof_from_size_zero_is_empty(gateway: Gateway, alliance: Alliance) -> None:
    ndrc = alliance.members["ndrc"]
    with ndrc.channel(gateway.port) as ch:
        note = _checkpoint_past(ch, 0)
        cp = Checkpoint.parse(parse_signed_note(note)[0])
        proof = audit(ch).GetConsistencyProof(
            au.GetConsistencyProofRequest(first_size=0, second_size=cp.size), timeout=10
        )
        assert list(proof.hashes) == []
        merkle.verify_consistency(0, cp.size, merkle.EMPTY_ROOT, cp.root_hash, [])
        same = au.GetConsistencyProofRequest(first_size=cp.size, second_size=cp.size)
        assert list(audit(ch).GetConsistencyProof(same, timeout=10).hashes) == []
        for bad in (
            au.GetConsistencyProofRequest(first_size=2, second_size=1),
            au.GetConsistencyProofRequest(first_size=0, second_size=cp.size + 10**6),
        ):
            assert _code(lambda r=bad: audit(ch).GetConsistencyProof(r, timeout=10)) == (
                grpc.StatusCode.INVALID_ARGUMENT
            )


def test_add_cosignature_fields_as_documented(gateway: Gateway, alliance: Alliance) -> None:
    ndrc = alliance.members["ndrc"]
    cosigner = CosignatureSigner(ndrc.member_id, ndrc.signing_key)
    with ndrc.channel(gateway.port) as ch:
        note = _checkpoint_past(ch, 0)
        body = parse_signed_note(note)[0]
        size = Checkpoint.parse(body).size

        def add(checkpoint: str, line: str) -> grpc.StatusCode:
            request = au.AddCosignatureRequest(checkpoint=checkpoint, signature_line=line)
            return _code(lambda: audit(ch).AddCosignature(request, timeout=10))

        # The line with or without its final LF; a later cosignature replaces the held one,
        # an older one or one outside the clock window is refused.
        now = int(time.time())
        assert add(body, cosigner.cosign(body, now - 60)) is grpc.StatusCode.OK
        assert add(body, cosigner.cosign(body, now).rstrip("\n")) is grpc.StatusCode.OK
        served = audit(ch).GetCheckpoint(au.GetCheckpointRequest(tree_size=size), timeout=10)
        mine = [ln for ln in served.note.splitlines() if ln.startswith(f"\u2014 {ndrc.member_id} ")]
        assert mine == [cosigner.cosign(body, now).rstrip("\n")]  # the later one
        assert add(body, cosigner.cosign(body, now - 30)) is grpc.StatusCode.INVALID_ARGUMENT
        assert add(body, cosigner.cosign(body, 2**63 - 1)) is grpc.StatusCode.INVALID_ARGUMENT
        # The body must end with the LF of its last line, and carry no signature lines.
        line = cosigner.cosign(body, now)
        assert add(body.rstrip("\n"), line) is grpc.StatusCode.INVALID_ARGUMENT
        assert add(note, line) is grpc.StatusCode.INVALID_ARGUMENT
        # A well-formed body this log never signed.
        other = Checkpoint.parse(body)
        unsigned = Checkpoint(other.origin, other.size, b"\x07" * 32).body()
        assert add(unsigned, cosigner.cosign(unsigned, now)) is grpc.StatusCode.NOT_FOUND
        # A timestamp of 2^63 or more is refused: the signature cannot be one of ours.
        key_id, signature = base64.b64decode(line.split(" ")[2])[:4], b"\x00" * 64
        beyond = base64.b64encode(key_id + (2**63).to_bytes(8, "big") + signature).decode()
        forged = f"\u2014 {ndrc.member_id} {beyond}"
        assert add(body, forged) is grpc.StatusCode.INVALID_ARGUMENT
    assert "within `[checkpoint signed − S, now + S]`" in DOC.read_text(encoding="utf-8")


def _raw_verify(vkey: str, note: str) -> None:
    """Verify a checkpoint note the way the document says, without the project's parser."""
    name, key_id_hex, encoded = vkey.split("+", 2)
    material = base64.b64decode(encoded, validate=True)
    assert material[0] == 0x01 and len(material) == 33
    text, _, signatures = note.partition("\n\n")
    for line in signatures.splitlines():
        signer, blob = line.removeprefix("\u2014 ").split(" ")
        raw = base64.b64decode(blob)
        if signer == name and raw[:4].hex() == key_id_hex:
            Ed25519PublicKey.from_public_bytes(material[1:]).verify(raw[4:], (text + "\n").encode())
            return
    raise AssertionError("no signature by the vkey's key")


def test_a_vkey_splits_at_its_first_two_plus_signs(alliance: Alliance, database_url: str) -> None:
    example = _example("log-vkey")
    assert example.count("+") > 2  # the example itself has a "+" in its base64
    # Give the gateway a key whose vkey's base64 holds a "+", as the example's does.
    key_file = alliance.gw_dir / "signing-key.pem"
    config = alliance.config(database_url)
    for _ in range(200):
        vkey = NoteSigner(config.log_origin, load_signing_key(key_file)).verifier().vkey
        if "+" in vkey.split("+", 2)[2]:
            break
        generate_signing_key(key_file, force=True)
    else:
        raise AssertionError("no key with a '+' in its vkey in 200 tries")
    with running_gateway(config) as gw, alliance.gateway_member().channel(gw.port) as ch:
        note = _checkpoint_past(ch, 0)
    _raw_verify(vkey, note)
    wrong = vkey.split("+")
    assert len(wrong) > 3  # splitting at every "+" cuts the key apart


# --- 10: the document itself ---------------------------------------------------------


def test_the_contents_line_names_every_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = re.findall(r"^## (\d+)\. (.+)$", text, re.M)
    contents = text[text.index("Contents:") :].split("\n\n")[0].replace("\n", " ")
    for number, title in sections:
        assert f"{number}. " in contents, (number, title)
    assert "7. Compliance" in contents


def test_the_only_imported_file_not_shipped_is_named_and_is_a_well_known_type() -> None:
    protos = sorted((ROOT / "proto").rglob("*.proto"))
    shipped = {p.relative_to(ROOT / "proto").as_posix() for p in protos}
    imports = {
        name for p in protos for name in re.findall(r'^import "([^"]+)";', p.read_text(), re.M)
    }
    outside = imports - shipped
    assert outside == {"google/protobuf/timestamp.proto"}
    assert "`google/protobuf/timestamp.proto`" in DOC.read_text(encoding="utf-8")
    spec = importlib.util.find_spec("grpc_tools")  # protoc, as `make proto` runs it
    assert spec is not None and spec.submodule_search_locations
    include = Path(spec.submodule_search_locations[0]) / "_proto" / "google" / "protobuf"
    assert (include / "timestamp.proto").is_file()  # shipped with protoc


# --- 11: a third-party DSSE verifier -------------------------------------------------


def _dsse_json(envelope: dsse.Envelope) -> dict[str, object]:
    return {
        "payloadType": envelope.payload_type,
        "payload": base64.b64encode(envelope.payload).decode(),
        "signatures": [
            {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in envelope.signatures
        ],
    }


def _sslib_key(raw: bytes, keyid: str) -> SSlibKey:
    return SSlibKey(keyid, "ed25519", "ed25519", {"public": raw.hex()})


def test_securesystemslib_verifies_an_envelope_the_gateway_accepts(
    gateway: Gateway, alliance: Alliance
) -> None:
    amr = alliance.members["zj-amr"]
    with amr.channel(gateway.port) as ch:
        record_id = submit(ch, amr.sign(listing(amr))).record_id
        stored = exchange(ch).GetRecord(ex.GetRecordRequest(record_id=record_id), timeout=10)
    envelope = codec.envelope_from_pb(stored.entry.envelope)
    raw = amr.signing_key.public_key().raw
    document = SslibEnvelope.from_dict(_dsse_json(envelope))
    keyid = hashlib.sha256(raw).hexdigest()
    assert envelope.signatures[0].keyid == keyid
    assert set(document.verify([_sslib_key(raw, keyid)], 1)) == {keyid}
    # securesystemslib's own keyid for the same key does not match the signature's.
    own = SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(raw))
    assert own.keyid != keyid
    with pytest.raises(SslibVerificationError):
        document.verify([own], 1)


def test_the_documented_dsse_json_example_verifies_with_securesystemslib() -> None:
    document = json.loads(_example("dsse-json"))
    raw = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    keyid = hashlib.sha256(raw).hexdigest()
    assert document["signatures"][0]["keyid"] == keyid
    envelope = SslibEnvelope.from_dict(document)
    assert set(envelope.verify([_sslib_key(raw, keyid)], 1)) == {keyid}
    assert "keyid=hashlib.sha256(raw).hexdigest()," in DOC.read_text(encoding="utf-8")
