"""Who may call the gateway, and as whom, against real gateways (mTLS on port 0).

Three layers refuse a caller: TLS (no certificate, another CA, expired), admission
(revoked serial, unregistered or suspended member, foreign trust domain that is not a
configured peer) and authorization (DESIGN.md §2: a member submits and signs only as
itself; monitors write nothing; status changes are scoped to the listing's issuer and
the authorities of its reporting unit). Every rejected record leaves the log unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from certtest import Issuer, client_certificate, foreign_ca
from cryptography import x509
from cryptography.x509.oid import NameOID
from gwtest import (
    BACKENDS,
    USCC,
    Alliance,
    Member,
    audit,
    confirmation,
    exchange,
    listing,
    pg_base_url,
    pg_schema_url,
    running_gateway,
    subject_pb,
    submit,
)

from certs.pki import create_ca, issue_member, revoke
from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey
from gateway.core.intake import DOCUMENT_STEPS
from gateway.core.notes import NoteSigner
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    PAYLOAD_TYPES,
    LifecycleStep,
    Listing,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
    StatusChange,
)
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import statements_pb2 as pb

TRUST_DOMAIN = "yrd.alliance.test"  # a Yangtze River Delta alliance: several provinces
DENIED = grpc.StatusCode.PERMISSION_DENIED
OK = grpc.StatusCode.OK


# --- helpers ---------------------------------------------------------------------------


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return OK


def _read(member: Member, port: int) -> grpc.StatusCode:
    """A read every role may make: the newest checkpoint."""
    with member.channel(port) as ch:
        return _code(lambda: audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10))


def _submit_code(gw: Gateway, member: Member, env: dsse.Envelope) -> grpc.StatusCode:
    """Submit ``env`` as ``member``; a refused record must leave the log as it was."""
    store = gw.core.store
    before, known = store.log_size(), store.record_by_id(env.record_id) is not None
    with member.channel(gw.port) as ch:
        code = _code(lambda: submit(ch, env))
    if code != OK:
        assert store.log_size() == before, f"{code} but the log grew"
        assert known or store.record_by_id(env.record_id) is None
    return code


def _fresh_listing(issuer: Member, **kw: Any) -> Listing:
    """A listing no other test submitted (the module's gateway outlives each test)."""
    return listing(issuer, decision_ref=f"T-{secrets.token_hex(6)}", **kw)


def _step(issuer: Member, listing_id: str, step: LifecycleStep) -> StatusChange:
    return StatusChange(
        issuer=issuer.member_id,
        listing_id=listing_id,
        step=step,
        effective_at=dt.datetime(2026, 10, 3, tzinfo=dt.UTC),
        # A notice or commitment states its document's SHA-256 (intake rule).
        document_sha256=hashlib.sha256(b"document").digest() if step in DOCUMENT_STEPS else b"",
    )


def _sign_pb(member: Member, msg: pb.MemberRecord, payload_type: str) -> dsse.Envelope:
    """Sign protobuf bytes the domain model would refuse to build."""
    return dsse.sign(payload_type, msg.SerializeToString(), member.signing_key)


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _peer(trust_domain: str, ca_file: Path, key: SigningKey) -> dict[str, str | bool]:
    """A ``[[peers]]`` entry for the gateway ``spiffe://<trust_domain>/gateway/gw``."""
    origin = f"{trust_domain}/alliance-log/v1"
    return {
        "name": "gw",
        "address": "127.0.0.1:1",  # never dialled by these tests
        "pull": False,
        "trust_domain": trust_domain,
        "ca_file": str(ca_file),
        "log_origin": origin,
        "log_vkey": NoteSigner(origin, key).verifier().vkey,
    }


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def yrd(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    a = Alliance(tmp_path_factory.mktemp("yrd"), TRUST_DOMAIN)
    a.member("authority", "zj-amr", region="330000")
    a.member("authority", "sh-amr", region="310000")
    a.member("platform", "shop-a")
    a.member("platform", "shop-b")
    a.member("monitor", "ndrc", region="110000")
    a.member("platform", "shop-s")  # suspended and re-activated
    a.member("platform", "shop-r")  # its certificate is revoked
    now = dt.datetime.now(dt.UTC)
    a.member(
        "platform",
        "shop-x",
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    return a


@pytest.fixture(scope="module")
def walk_in(yrd: Alliance) -> Member:
    """A certificate of our CA for a member the gateway never registered."""
    m = yrd.member("platform", "walk-in")
    del yrd.members["walk-in"]
    return m


@pytest.fixture(scope="module")
def tls_gw(yrd: Alliance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """TLS-level checks do not depend on the database: one SQLite gateway for them."""
    url = f"sqlite:///{tmp_path_factory.mktemp('tls') / 'gateway.db'}"
    with running_gateway(yrd.config(url), register=tuple(yrd.members.values())) as gw:
        yield gw


@pytest.fixture(scope="module", params=BACKENDS)
def backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like conftest's ``database_url``, once per module: SQLite, and PostgreSQL when
    ALLIANCE_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"
        return
    base = pg_base_url()
    assert base is not None
    with pg_schema_url(base) as url:
        yield url


@pytest.fixture(scope="module")
def gw(yrd: Alliance, backend_url: str) -> Iterator[Gateway]:
    with running_gateway(yrd.config(backend_url), register=tuple(yrd.members.values())) as g:
        yield g


# --- 1. TLS ----------------------------------------------------------------------------


def test_call_without_client_certificate_fails_the_handshake(
    yrd: Alliance, tls_gw: Gateway
) -> None:
    anonymous = grpc.ssl_channel_credentials(root_certificates=yrd.ca.read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{tls_gw.port}", anonymous) as ch:
        code = _code(lambda: audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert _read(yrd.members["shop-a"], tls_gw.port) == OK


def test_certificate_from_another_ca_fails_the_handshake(
    yrd: Alliance, tls_gw: Gateway, tmp_path: Path
) -> None:
    # Same trust domain, same member id as a registered member, but a CA we never trusted.
    create_ca(tmp_path / "rogue-ca", TRUST_DOMAIN)
    shop_a = yrd.members["shop-a"]
    issued = issue_member(tmp_path / "rogue-ca", shop_a.member_id, tmp_path / "rogue")
    impostor = Member(
        shop_a.member_id, issued.cert, issued.key, shop_a.signing_key, yrd.ca, shop_a.region
    )
    assert _read(impostor, tls_gw.port) == grpc.StatusCode.UNAVAILABLE
    assert _read(shop_a, tls_gw.port) == OK


def test_expired_certificate_fails_the_handshake(yrd: Alliance, tls_gw: Gateway) -> None:
    expired = yrd.members["shop-x"]
    assert tls_gw.core.directory.require_active(expired.member_id) is not None  # registered
    assert _read(expired, tls_gw.port) == grpc.StatusCode.UNAVAILABLE


def test_revoked_certificate_is_refused_without_restart(yrd: Alliance, tls_gw: Gateway) -> None:
    shop_r, shop_a = yrd.members["shop-r"], yrd.members["shop-a"]
    with shop_r.channel(tls_gw.port) as ch:
        stub = audit(ch)

        def call() -> grpc.StatusCode:
            return _code(lambda: stub.GetCheckpoint(au.GetCheckpointRequest(), timeout=10))

        assert call() == OK
        revoke(yrd.ca_dir, shop_r.cert)
        # The gateway's ticker reloads crl.pem; the open connection stays up, each call
        # is checked against the serials loaded now.
        assert _wait_for(lambda: call() == DENIED), "revocation not applied within 5 s"
        stored = tls_gw.core.store.log_size()
        env = shop_r.sign(_fresh_listing(shop_r))
        assert _code(lambda: submit(ch, env)) == DENIED
        assert tls_gw.core.store.log_size() == stored
    assert _read(shop_a, tls_gw.port) == OK


# --- 2. membership ---------------------------------------------------------------------


def test_unregistered_member_is_denied(gw: Gateway, walk_in: Member) -> None:
    assert _read(walk_in, gw.port) == DENIED
    assert _submit_code(gw, walk_in, walk_in.sign(_fresh_listing(walk_in))) == DENIED


def test_suspended_member_is_denied_until_reactivated(yrd: Alliance, gw: Gateway) -> None:
    shop_s = yrd.members["shop-s"]
    members = gw.core.members
    assert _read(shop_s, gw.port) == OK
    members.set_status(shop_s.member_id, MemberStatus.SUSPENDED)
    try:
        assert _read(shop_s, gw.port) == DENIED
        assert _submit_code(gw, shop_s, shop_s.sign(_fresh_listing(shop_s))) == DENIED
        # Its records relayed by someone else do not verify either: no key is valid.
        assert gw.core.directory.keys_at(shop_s.member_id, dt.datetime.now(dt.UTC)) == []
    finally:
        members.set_status(shop_s.member_id, MemberStatus.ACTIVE)
    assert _read(shop_s, gw.port) == OK
    assert _submit_code(gw, shop_s, shop_s.sign(_fresh_listing(shop_s))) == OK


def _lax_ca(directory: Path) -> Issuer:
    """A CA as another vendor's PKI might make it: valid, but without name constraints."""
    return foreign_ca(
        directory, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lax peer CA")])
    )


def _lax_member(ca: Issuer, member_id: str, folder: Path, server_ca: Path) -> Member:
    cert, key = client_certificate(
        ca, "impostor", [x509.UniformResourceIdentifier(member_id)], folder
    )
    return Member(member_id, cert, key, SigningKey.generate(), server_ca, "")


@pytest.fixture(scope="module")
def foreign(
    yrd: Alliance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, dict[str, Member]]]:
    """Our gateway trusting three more CAs: a configured peer's (gd), a lax peer CA, and
    one (sc) that is only in our root bundle, a trust domain with no peer entry."""
    root = tmp_path_factory.mktemp("foreign")
    gd = Alliance(root / "gd", "gd.alliance.test", region="440100")
    sc = Alliance(root / "sc", "sc.alliance.test", region="510100")
    lax = _lax_ca(root / "lax-ca")
    bundle = root / "roots.pem"
    bundle.write_bytes(yrd.ca.read_bytes() + sc.ca.read_bytes())  # ours first: CRL issuer
    peers = [
        _peer(gd.trust_domain, gd.ca, gd.gateway_member().signing_key),
        _peer("lax.alliance.test", root / "lax-ca" / "ca.pem", SigningKey.generate()),
    ]
    callers = {
        "gd-peer": Member(
            gd.gateway_id,
            gd.gateway_member().cert,
            gd.gateway_member().key,
            gd.gateway_member().signing_key,
            yrd.ca,
            gd.region,
        ),
    }
    for alliance, role, name in ((gd, "platform", "gd-shop"), (gd, "gateway", "gw2")):
        m = alliance.member(role, name)
        callers[name] = Member(m.member_id, m.cert, m.key, m.signing_key, yrd.ca, m.region)
    sc_shop = sc.member("platform", "sc-shop")
    callers["sc-shop"] = Member(
        sc_shop.member_id, sc_shop.cert, sc_shop.key, sc_shop.signing_key, yrd.ca, sc.region
    )
    for label, member_id in (
        ("lax-as-shop-a", yrd.members["shop-a"].member_id),
        ("lax-as-our-gateway", yrd.gateway_id),
        ("lax-as-gd-gateway", gd.gateway_id),
    ):
        callers[label] = _lax_member(lax, member_id, root / label, yrd.ca)
    url = f"sqlite:///{root / 'gateway.db'}"
    config = yrd.config(url, ca_file=str(bundle), peers=peers)
    with running_gateway(config, register=tuple(yrd.members.values())) as g:
        yield g, callers


@pytest.mark.parametrize("who", ["gd-shop", "gw2", "sc-shop"])
def test_foreign_trust_domain_that_is_no_configured_peer_is_denied(
    foreign: tuple[Gateway, dict[str, Member]], who: str
) -> None:
    g, callers = foreign
    assert _read(callers[who], g.port) == DENIED
    # The configured peer gateway passes the same admission.
    assert _read(callers["gd-peer"], g.port) == OK


@pytest.mark.parametrize("who", ["lax-as-shop-a", "lax-as-our-gateway", "lax-as-gd-gateway"])
def test_a_peer_ca_cannot_vouch_for_another_trust_domain(
    foreign: tuple[Gateway, dict[str, Member]], who: str
) -> None:
    g, callers = foreign
    assert _read(callers[who], g.port) == DENIED


# --- 3. authorization ------------------------------------------------------------------


def test_platform_cannot_submit_a_listing_signed_as_another(yrd: Alliance, gw: Gateway) -> None:
    shop_a, shop_b = yrd.members["shop-a"], yrd.members["shop-b"]
    theirs = shop_a.sign(_fresh_listing(shop_a))
    assert _submit_code(gw, shop_b, theirs) == DENIED  # shop-a's signature, shop-b's call
    in_their_name = shop_b.sign(_fresh_listing(shop_a))
    assert _submit_code(gw, shop_b, in_their_name) == DENIED  # issuer is not the signer
    # Once shop-a stored it, replaying it is still not shop-b's to submit.
    assert _submit_code(gw, shop_a, theirs) == OK
    size = gw.core.store.log_size()
    assert _submit_code(gw, shop_b, theirs) == DENIED
    assert gw.core.store.log_size() == size


def test_platform_cannot_sign_a_member_record(yrd: Alliance, gw: Gateway) -> None:
    shop_a = yrd.members["shop-a"]
    now = dt.datetime.now(dt.UTC)
    puppet, puppet_key = f"spiffe://{TRUST_DOMAIN}/platform/sock-puppet", SigningKey.generate()
    vouch = MemberRecord(
        issuer=yrd.gateway_id,  # well formed: the gateway vouches ...
        member_id=puppet,
        role=Role.PLATFORM,
        region_code="330100",
        keys=(
            MemberKey(
                public_key=puppet_key.public_key().raw,
                not_before=now,
                possession=prove_possession(puppet_key, puppet),
            ),
        ),
        status=MemberStatus.ACTIVE,
        issued_at=now,
    )
    # ... but a platform signed it: an authorization failure.
    assert _submit_code(gw, shop_a, shop_a.sign(vouch)) == DENIED
    # A member record naming a platform as its issuer breaks a field rule of the record
    # itself (issuer must be a gateway of the member's trust domain): malformed, refused
    # when parsed, before any authorization is asked.
    self_made = codec.statement_to_pb(vouch)
    assert isinstance(self_made, pb.MemberRecord)
    self_made.issuer = shop_a.member_id
    env = _sign_pb(shop_a, self_made, PAYLOAD_TYPES[MemberRecord])
    assert _submit_code(gw, shop_a, env) == grpc.StatusCode.INVALID_ARGUMENT
    assert gw.core.directory.member(vouch.member_id) is None


def test_monitor_reads_everything_and_writes_nothing(yrd: Alliance, gw: Gateway) -> None:
    ndrc, amr = yrd.members["ndrc"], yrd.members["zj-amr"]
    env = amr.sign(_fresh_listing(amr))
    assert _submit_code(gw, ndrc, env) == DENIED
    size = gw.core.store.log_size()
    with ndrc.channel(gw.port) as ch:
        stream = exchange(ch).SubmitRecords(
            iter([ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env))]), timeout=10
        )
        assert _code(lambda: list(stream)) == DENIED
        assert gw.core.store.log_size() == size
        reply = exchange(ch).CheckSubjects(
            ex.CheckSubjectsRequest(subjects=[subject_pb(listing(amr))]),
            timeout=10,
        )
        assert len(reply.results) == 1
        note = audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10).note
        assert note.startswith(f"{TRUST_DOMAIN}/alliance-log/v1\n")


def test_platform_cannot_confirm_a_sanction_as_another(yrd: Alliance, gw: Gateway) -> None:
    amr, shop_a, shop_b = (yrd.members[n] for n in ("zj-amr", "shop-a", "shop-b"))
    listing_env = amr.sign(_fresh_listing(amr))
    assert _submit_code(gw, amr, listing_env) == OK
    theirs = shop_a.sign(confirmation(shop_a, listing_env.record_id))
    assert _submit_code(gw, shop_b, theirs) == DENIED
    in_their_name = shop_b.sign(confirmation(shop_a, listing_env.record_id))
    assert _submit_code(gw, shop_b, in_their_name) == DENIED
    assert _submit_code(gw, shop_a, theirs) == OK


def test_status_change_only_by_issuer_or_an_authority_of_its_region(
    yrd: Alliance, gw: Gateway
) -> None:
    shop_a, shop_b = yrd.members["shop-a"], yrd.members["shop-b"]
    zj_amr, sh_amr = yrd.members["zj-amr"], yrd.members["sh-amr"]
    own = yrd.gateway_member()
    listing_env = shop_a.sign(_fresh_listing(shop_a))  # region 330100: reporting unit 33
    assert _submit_code(gw, shop_a, listing_env) == OK
    lid = listing_env.record_id
    served = LifecycleStep.NOTICE_SERVED
    assert _submit_code(gw, shop_b, shop_b.sign(_step(shop_b, lid, served))) == DENIED
    assert _submit_code(gw, sh_amr, sh_amr.sign(_step(sh_amr, lid, served))) == DENIED
    # The gateway may only escalate, nothing else.
    assert _submit_code(gw, own, own.sign(_step(own, lid, served))) == DENIED
    assert _submit_code(gw, zj_amr, zj_amr.sign(_step(zj_amr, lid, served))) == OK
    committed = LifecycleStep.COMMITMENT_SIGNED
    assert _submit_code(gw, shop_a, shop_a.sign(_step(shop_a, lid, committed))) == OK
    # Not even an escalation: a gateway's records enter its own log from the gateway
    # itself (its escalator) and other logs by replication, never through Exchange.
    escalated = LifecycleStep.ESCALATED
    assert _submit_code(gw, own, own.sign(_step(own, lid, escalated))) == DENIED


def test_bulk_submission_applies_the_same_authorization(yrd: Alliance, gw: Gateway) -> None:
    shop_a, shop_b = yrd.members["shop-a"], yrd.members["shop-b"]
    listing_env = shop_a.sign(_fresh_listing(shop_a))
    assert _submit_code(gw, shop_a, listing_env) == OK
    lid = listing_env.record_id
    envs = [
        shop_a.sign(_fresh_listing(shop_a)),  # not shop-b's
        shop_b.sign(_step(shop_b, lid, LifecycleStep.NOTICE_SERVED)),  # not shop-b's listing
        shop_b.sign(_step(shop_b, "ab" * 32, LifecycleStep.NOTICE_SERVED)),  # no such listing
        shop_b.sign(confirmation(shop_b, lid)),  # fine
    ]
    size = gw.core.store.log_size()
    with shop_b.channel(gw.port) as ch:
        results = list(
            exchange(ch).SubmitRecords(
                iter([ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs]),
                timeout=10,
            )
        )
    assert [r.code for r in results] == [
        DENIED.value[0],
        DENIED.value[0],
        grpc.StatusCode.NOT_FOUND.value[0],
        OK.value[0],
    ]
    assert gw.core.store.log_size() == size + 1


def test_unknown_listing_is_not_found(yrd: Alliance, gw: Gateway) -> None:
    shop_a, amr = yrd.members["shop-a"], yrd.members["zj-amr"]
    unknown = secrets.token_hex(32)
    step = amr.sign(_step(amr, unknown, LifecycleStep.NOTICE_SERVED))
    assert _submit_code(gw, amr, step) == grpc.StatusCode.NOT_FOUND
    sanction = shop_a.sign(confirmation(shop_a, unknown))
    assert _submit_code(gw, shop_a, sanction) == grpc.StatusCode.NOT_FOUND
    # A record that exists but is no listing is a malformed reference.
    listing_env = amr.sign(_fresh_listing(amr, uscc=USCC[1]))
    assert _submit_code(gw, amr, listing_env) == OK
    first = shop_a.sign(confirmation(shop_a, listing_env.record_id))
    assert _submit_code(gw, shop_a, first) == OK
    on_sanction = shop_a.sign(confirmation(shop_a, first.record_id))
    assert _submit_code(gw, shop_a, on_sanction) == grpc.StatusCode.INVALID_ARGUMENT
