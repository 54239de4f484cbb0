"""Trust checks that, disabled one at a time, once left the whole suite green (issue 12).

Each test states the attack its check stops, runs it against a real gateway (or the
monitor's real client code), and fails when the check is removed:

- the caller's certificate carries exactly one URI SAN, a member id
  (``gateway/transport/identity.py``);
- the monitor verifies the checkpoint's signature with the log key it was given
  (``clients/audit.py``);
- replay: a record's issuer is the member whose key signed it (``clients/audit.py``);
- a replicated entry's record id is the SHA-256 of its bytes
  (``gateway/service/replication/verify.py``);
- a SubmitRecords stream carries at most ``max_stream_records`` records
  (``gateway/transport/exchange.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from certtest import client_certificate, foreign_ca, load_ca
from cryptography import x509
from cryptography.x509.oid import NameOID
from gwtest import USCC, Alliance, Member, audit, exchange, listing, running_gateway
from test_audit_tooling import (
    AUTHORITY,
    GATEWAY,
    ORIGIN,
    FakeLog,
    _listing_env,
    _member_record,
    _record,
    wait_for_checkpoint,
)
from test_audit_tooling import audit as audit_cli
from test_client import write_profile
from test_federation import (
    EvilLog,
    ScriptedFederation,
    _cp,
    eventually,
    evil_server,
    has,
    make_region,
)

from certs.pki import generate_signing_key
from clients import audit as monitor
from clients.profile import load_profile
from gateway import codec
from gateway.core.crypto import SigningKey
from gateway.core.notes import Checkpoint, NoteSigner
from gateway.core.statements import Role
from gateway.errors import LogIntegrityError
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import federation_pb2 as fe

Code = grpc.StatusCode
TRUST_DOMAIN = "zj.alliance.test"


# --- exactly one URI SAN, a member id --------------------------------------------------


def _unconstrained_ca(ca_dir: Path, trust_domain: str) -> Path:
    """A CA made by some other tool, without the name constraint ``certs init-ca`` puts
    on alliance CAs (TLS then refuses no leaf for lack of a URI SAN: the gateway must)."""
    foreign_ca(ca_dir, x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)]))
    return ca_dir / "ca.pem"


def _certificate(
    alliance: Alliance,
    name: str,
    sans: list[x509.GeneralName] | None,
    *,
    ca_dir: Path | None = None,
) -> Member:
    """A client certificate signed by the alliance's CA (or the CA in ``ca_dir``) with
    exactly ``sans`` (no SubjectAlternativeName extension at all when None): what a
    careless or subverted issuing process could hand out."""
    ca = load_ca(ca_dir or alliance.ca_dir)
    cert, key = client_certificate(ca, name, sans, alliance.root / "forged" / name)
    return Member(f"forged:{name}", cert, key, SigningKey.generate(), alliance.ca, alliance.region)


EXTERNAL = "ext.alliance.test"


@pytest.fixture(scope="module")
def identity_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Alliance, int]]:
    """One gateway for the certificate cases (they do not depend on the database). Its
    client roots include a peer CA without name constraints (``EXTERNAL``), as a peer
    region running its own PKI may have."""
    root = tmp_path_factory.mktemp("identity")
    alliance = Alliance(root, TRUST_DOMAIN)
    alliance.member("platform", "shop-a")
    alliance.member("authority", "zj-amr", region="330000")
    origin = f"{EXTERNAL}/alliance-log/v1"
    external_peer = {
        "name": "gw",
        "trust_domain": EXTERNAL,
        "ca_file": str(_unconstrained_ca(root / "external-ca", EXTERNAL)),
        "log_origin": origin,
        "log_vkey": NoteSigner(origin, SigningKey.generate()).verifier().vkey,
        "pull": False,
    }
    config = alliance.config(f"sqlite:///{root / 'gateway.db'}", peers=[external_peer])
    with running_gateway(config, register=tuple(alliance.members.values())) as gw:
        yield alliance, gw.port


def _checkpoint_call(member: Member, port: int) -> Code:
    with member.channel(port) as ch:
        try:
            audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10)
        except grpc.RpcError as e:
            return e.code()
    return Code.OK


def _uri(path: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(f"spiffe://{TRUST_DOMAIN}/{path}")


def test_the_alliance_ca_s_own_members_are_admitted(identity_gw: tuple[Alliance, int]) -> None:
    """The control for the cases below: the same gateway admits a proper certificate,
    and one made by ``_certificate`` with the one URI SAN of a registered member."""
    alliance, port = identity_gw
    assert _checkpoint_call(alliance.members["shop-a"], port) is Code.OK
    proper = _certificate(alliance, "one-uri", [_uri("platform/shop-a")])
    assert _checkpoint_call(proper, port) is Code.OK


def test_a_certificate_naming_two_members_is_refused(identity_gw: tuple[Alliance, int]) -> None:
    """Attack: a certificate carrying two member ids (a platform and an authority). If
    the gateway just took the first URI, its holder would act as whichever member the
    gateway happens to pick, while a proxy, log or audit tool reading the other URI
    would attribute the calls to someone else. Exactly one URI SAN is an identity."""
    alliance, port = identity_gw
    both = _certificate(alliance, "two-uris", [_uri("platform/shop-a"), _uri("authority/zj-amr")])
    assert _checkpoint_call(both, port) is Code.PERMISSION_DENIED


def test_a_certificate_without_a_san_is_refused(identity_gw: tuple[Alliance, int]) -> None:
    """Attack: a certificate with no SubjectAlternativeName (say one a peer region's
    own CA issued for a non-member service) names nobody; it must be refused as
    unauthenticated (PERMISSION_DENIED), not crash the call (INTERNAL) or be taken for
    a member. Alliance CAs carry a name constraint, under which TLS itself refuses such
    a leaf, hence a peer CA without one."""
    alliance, port = identity_gw
    no_san = _certificate(alliance, "no-san", None, ca_dir=alliance.root / "external-ca")
    assert _checkpoint_call(no_san, port) is Code.PERMISSION_DENIED


def test_a_certificate_with_no_uri_san_is_refused(identity_gw: tuple[Alliance, int]) -> None:
    """Attack: a SAN extension with only a DNS name: no member id at all."""
    alliance, port = identity_gw
    dns_only = _certificate(alliance, "dns-only", [x509.DNSName("shop-a.example")])
    assert _checkpoint_call(dns_only, port) is Code.PERMISSION_DENIED


@pytest.mark.parametrize(
    "path", ["root", "admin/shop-a", "platform/shop-a/extra", "platform/Shop-A"]
)
def test_a_uri_san_that_is_not_a_member_id_is_refused(
    identity_gw: tuple[Alliance, int], path: str
) -> None:
    """Attack: a URI SAN inside the trust domain (the CA's name constraint allows it)
    that is not a member id: no role to authorize, so the caller is refused as
    unauthenticated (PERMISSION_DENIED), not told its request was malformed."""
    alliance, port = identity_gw
    odd = _certificate(alliance, f"odd-{path.replace('/', '-').lower()}", [_uri(path)])
    assert _checkpoint_call(odd, port) is Code.PERMISSION_DENIED


# --- the monitor checks the checkpoint's signature -------------------------------------


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", TRUST_DOMAIN)
    a.member("authority", "zj-amr", region="330000")
    a.member("monitor", "ndrc", region="110000")
    return a


def test_the_monitor_refuses_a_checkpoint_not_signed_by_the_log_key(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attack: an impostor at the gateway's address (or the gateway's operator after
    swapping keys) serves a log of its own, signed with a key the monitor was never
    given. The monitor must refuse it and keep nothing: a checkpoint stored on first
    use would become the trusted base that every later check is measured against."""
    impostor_key = alliance.root / "impostor-signing-key.pem"
    generate_signing_key(impostor_key)
    amr, ndrc = alliance.members["zj-amr"], alliance.members["ndrc"]
    config = alliance.config(database_url, signing_key_file=str(impostor_key))
    with running_gateway(config, register=(amr, ndrc)) as gw:
        # The monitor's profile holds the real log key (alliance.gw_dir/signing-key.pem).
        profile = write_profile(alliance, ndrc, f"127.0.0.1:{gw.port}", gw.config.log_origin)
        wait_for_checkpoint(profile, 1)
        code, out, err = audit_cli(capsys, profile, "verify")
        assert code == 1 and out == ""
        assert err.startswith("error: latest checkpoint: note has no signature by a known key")
        assert not load_profile(profile).state_dir.joinpath("checkpoint.note").exists()
        # Every other audit command starts from a verified checkpoint: refused too.
        for command in ("replay", "cosign"):
            assert audit_cli(capsys, profile, command)[0] == 1


# --- replay: the issuer is the signer ----------------------------------------------------


def test_replay_refuses_a_listing_whose_issuer_is_not_its_signer() -> None:
    """Attack: a gateway (or whoever can write its log) appends a listing that names the
    provincial authority as issuer but is signed by a platform's registered key. Every
    signature in the log verifies under some member's key; only trying the keys of the
    issuer the payload names (as the gateway does) shows the platform put words in the
    authority's mouth."""
    gateway_key, amr_key, shop_key = (SigningKey.generate() for _ in range(3))
    log = FakeLog(gateway_key, ORIGIN)
    shop = f"spiffe://{TRUST_DOMAIN}/platform/shop-a"
    log.append(_member_record(gateway_key, GATEWAY, Role.GATEWAY, gateway_key))
    log.append(_member_record(gateway_key, AUTHORITY, Role.AUTHORITY, amr_key))
    log.append(_member_record(gateway_key, shop, Role.PLATFORM, shop_key))
    log.append(_listing_env(amr_key, USCC[0]))  # honest
    honest = monitor.replay(
        log, Checkpoint(ORIGIN, 4, log.root(4)), log.signer.verifier(), trust_domain=TRUST_DOMAIN
    )
    assert honest.signers == {GATEWAY, AUTHORITY}

    forged = _listing_env(shop_key, USCC[1])  # the authority's listing, the shop's key
    assert (
        codec.decode_statement(forged.payload_type, forged.payload, forged.disclosures).issuer
        == AUTHORITY
    )
    log.append(forged)
    with pytest.raises(LogIntegrityError, match="entry 4: no key its signer ever held verifies"):
        monitor.replay(
            log,
            Checkpoint(ORIGIN, 5, log.root(5)),
            log.signer.verifier(),
            trust_domain=TRUST_DOMAIN,
        )


def test_replay_refuses_a_peer_vouching_for_another_peer_s_members() -> None:
    """Attack: peer gateway GD, trusted for its own domain, signs a member record that
    names BJ's gateway as issuer and registers a key for a BJ platform. Were its keys not
    chosen by the issuer it names (BJ's, unknown here), GD could mint members of any
    other region."""
    gateway_key = SigningKey.generate()
    log = FakeLog(gateway_key, ORIGIN)
    log.append(_member_record(gateway_key, GATEWAY, Role.GATEWAY, gateway_key))
    gd, gd_key = "spiffe://gd.alliance.test/gateway/gd", SigningKey.generate()
    bj = "spiffe://bj.alliance.test/gateway/bj"
    log.append(_record(gd_key, gd, gd, Role.GATEWAY, gd_key))  # GD, trusted on first use
    intruder = "spiffe://bj.alliance.test/platform/intruder"
    log.append(_record(gd_key, bj, intruder, Role.PLATFORM, SigningKey.generate()))
    with pytest.raises(LogIntegrityError, match="entry 2: no known key verifies member record"):
        monitor.replay(
            log,
            Checkpoint(ORIGIN, 3, log.root(3)),
            log.signer.verifier(),
            trust_domain=TRUST_DOMAIN,
        )


# --- a replicated entry's record id ------------------------------------------------------


def test_a_peer_entry_labelled_with_another_record_id_is_refused(tmp_path: Path) -> None:
    """Attack: a peer serves a genuine, signed listing under the record id of another
    record. Stored under that label, it would be what a status change or sanction naming
    the label attaches to, and would shadow the real record of that id (later copies are
    skipped as duplicates). The batch is refused whole and the peer's failures count."""
    home = make_region(tmp_path, "zj", "330100")
    peer = make_region(tmp_path, "gd", "440300")
    log = EvilLog(peer)
    member = log.gateway_sign(log.member_record(peer.authority))
    the_listing = peer.authority.sign(listing(peer.authority, uscc=USCC[0]))
    label = peer.authority.sign(listing(peer.authority, uscc=USCC[1])).record_id
    entries = [member, the_listing]
    script = [
        _cp(log.checkpoint(entries)),
        *[
            fe.ReplicateResponse(
                entry=ex.LogEntry(
                    log_index=i, record_id=record_id, envelope=codec.envelope_to_pb(env)
                )
            )
            for i, (env, record_id) in enumerate([(member, member.record_id), (the_listing, label)])
        ],
    ]
    config = home.config(f"sqlite:///{tmp_path / 'home.db'}", [peer.peer()])
    with (
        evil_server(peer, home.alliance.ca, ScriptedFederation(script)),
        running_gateway(config, register=home.members()) as gw,
    ):
        size = gw.core.store.log_size()

        def status() -> tuple[int, str]:
            (s,) = gw.replication.status()
            return s.consecutive_failures, s.last_error

        eventually(lambda: status()[0] >= 3, "the peer's batch is refused again and again")
        assert "is not the SHA-256 of its PAE bytes" in status()[1]
        assert not any(has(gw, rid) for rid in (member.record_id, the_listing.record_id, label))
        assert gw.core.store.log_size() == size


# --- the per-stream record cap -----------------------------------------------------------


def test_a_stream_carries_at_most_max_stream_records(alliance: Alliance, tmp_path: Path) -> None:
    """Attack: one SubmitRecords stream kept open for ever, feeding records without end,
    holds a worker thread and the member's stream slot for as long as it likes. Past
    ``max_stream_records`` the gateway answers the next record with INVALID_ARGUMENT and
    ends the stream; the records before it stand."""
    amr = alliance.members["zj-amr"]
    config = alliance.config(f"sqlite:///{tmp_path / 'gateway.db'}", max_stream_records=3)
    envs = [amr.sign(listing(amr, uscc=USCC[i % 3], decision_ref=f"CAP-{i}")) for i in range(6)]
    requests = [ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs]
    with running_gateway(config, register=(amr,)) as gw, amr.channel(gw.port) as ch:
        size = gw.core.store.log_size()
        results = list(exchange(ch).SubmitRecords(iter(requests), timeout=30))
        assert [r.code for r in results] == [0, 0, 0, Code.INVALID_ARGUMENT.value[0]]
        assert "at most 3 records" in results[3].message
        assert [r.record_id for r in results[:3]] == [e.record_id for e in envs[:3]]
        assert gw.core.store.log_size() == size + 3
        assert not any(has(gw, e.record_id) for e in envs[3:])
