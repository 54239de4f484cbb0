"""The gateway's certificate revocation list: reloaded every ``crl_reload_interval_s``
(measured on an injected clock here), a stale CRL still revokes (with a warning), an
unreadable one fails the start-up or is ignored on reload with the previous list kept.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from gwtest import Alliance, Member, audit, running_gateway

from certs.pki import RevocationList, certificate_serial, revoke
from gateway.core.crypto import SigningKey
from gateway.core.possession import prove_possession
from gateway.errors import ConfigError
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au

Code = grpc.StatusCode
RELOAD_S = 5.0


class Monotonic:
    """A monotonic clock the test moves (``Gateway(monotonic=...)``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("platform", "shop-a")
    a.member("platform", "shop-b")
    return a


def _call(member: Member, port: int) -> Code:
    with member.channel(port) as ch:
        try:
            audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10)
        except grpc.RpcError as e:
            return e.code()
    return Code.OK


@pytest.fixture
def clocked(alliance: Alliance) -> Iterator[tuple[Gateway, Monotonic]]:
    clock = Monotonic()
    config = alliance.config(
        f"sqlite:///{alliance.root / 'gateway.db'}", crl_reload_interval_s=RELOAD_S
    )
    gateway = Gateway(config, monotonic=clock)
    for m in alliance.members.values():
        gateway.core.members.add(
            m.member_id, m.region, m.signing_key.public_key().raw, possession=m.possession()
        )
    gateway.start()
    try:
        yield gateway, clock
    finally:
        gateway.stop(grace_s=1.0)


def test_the_crl_is_reloaded_once_every_interval(
    alliance: Alliance, clocked: tuple[Gateway, Monotonic]
) -> None:
    """A revocation takes effect at the first reload ``crl_reload_interval_s`` after the
    last one, not before: the ticker rounds in between leave the file alone."""
    gw, clock = clocked
    shop_a = alliance.members["shop-a"]
    assert _call(shop_a, gw.port) is Code.OK
    revoke(alliance.ca_dir, shop_a.cert)

    clock.now += RELOAD_S - 0.001
    gw._tick()  # a ticker round before the interval is over: the old list stands
    assert _call(shop_a, gw.port) is Code.OK

    clock.now += 0.001
    gw._tick()  # the interval has passed: re-read, the certificate is refused
    assert _call(shop_a, gw.port) is Code.PERMISSION_DENIED
    assert _call(alliance.members["shop-b"], gw.port) is Code.OK

    # The next change waits a whole interval from this reload.
    revoke(alliance.ca_dir, alliance.members["shop-b"].cert)
    clock.now += RELOAD_S / 2
    gw._tick()
    assert _call(alliance.members["shop-b"], gw.port) is Code.OK
    clock.now += RELOAD_S / 2
    gw._tick()
    assert _call(alliance.members["shop-b"], gw.port) is Code.PERMISSION_DENIED


def _stale_crl(ca_dir: Path, revoked: list[int]) -> None:
    """A CRL properly signed by the CA whose next update passed a day ago (the operator
    forgot ``certs refresh-crl``)."""
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - dt.timedelta(days=8))
        .next_update(now - dt.timedelta(days=1))
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - dt.timedelta(days=8))
            .build()
        )
    crl = builder.sign(key, hashes.SHA256())
    (ca_dir / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))


def test_a_stale_crl_still_revokes_and_says_it_is_stale(
    alliance: Alliance, caplog: pytest.LogCaptureFixture
) -> None:
    """Past its next update a CRL still lists what was revoked: the gateway keeps
    refusing those certificates (an old list is better than none) and warns."""
    shop_a = alliance.members["shop-a"]
    _stale_crl(alliance.ca_dir, [certificate_serial(shop_a.cert.read_bytes())])
    caplog.set_level(logging.WARNING, logger="certs.pki")
    config = alliance.config(f"sqlite:///{alliance.root / 'gateway.db'}")
    with running_gateway(config, register=tuple(alliance.members.values())) as gw:
        assert _call(shop_a, gw.port) is Code.PERMISSION_DENIED
        assert _call(alliance.members["shop-b"], gw.port) is Code.OK
    stale = [r.getMessage() for r in caplog.records if "is stale since" in r.getMessage()]
    assert stale and "certs refresh-crl" in stale[0]


def test_an_unreadable_crl_fails_the_start_up(alliance: Alliance) -> None:
    """A CRL path that cannot be read is a configuration error, not 'nothing revoked'."""
    crl = alliance.ca_dir / "crl.pem"
    crl.unlink()
    crl.mkdir()  # a folder where the file should be
    config = alliance.config(f"sqlite:///{alliance.root / 'gateway.db'}")
    with pytest.raises(ConfigError, match="cannot read CRL"):
        Gateway(config)

    blocked = alliance.root / "not-a-folder"
    blocked.write_text("")
    config = alliance.config(
        f"sqlite:///{alliance.root / 'gateway.db'}", crl_file=str(blocked / "crl.pem")
    )
    with pytest.raises(ConfigError, match="cannot read CRL"):
        Gateway(config)


def test_an_unreadable_replacement_keeps_the_previous_list(
    alliance: Alliance, caplog: pytest.LogCaptureFixture
) -> None:
    shop_a = alliance.members["shop-a"]
    revoke(alliance.ca_dir, shop_a.cert)
    crl_path = alliance.ca_dir / "crl.pem"
    crl = RevocationList(crl_path, alliance.ca)
    assert crl.is_revoked(certificate_serial(shop_a.cert.read_bytes()))
    caplog.set_level(logging.WARNING, logger="certs.pki")

    crl_path.unlink()
    crl_path.mkdir()  # replaced by something that cannot be read as a file
    assert crl.reload_if_changed() is False
    assert crl.is_revoked(certificate_serial(shop_a.cert.read_bytes()))
    assert any("cannot read CRL" in r.getMessage() for r in caplog.records)
    shutil.rmtree(crl_path)


def test_a_crl_that_becomes_unreadable_keeps_the_list_and_the_ticker_going(
    alliance: Alliance, caplog: pytest.LogCaptureFixture
) -> None:
    """The CRL's folder turns into something else (a botched deployment): reading it
    fails with an error other than 'not found'. The gateway keeps the serials it loaded,
    says so, and its periodic round completes (a checkpoint is signed, no error)."""
    shop_a, shop_b = alliance.members["shop-a"], alliance.members["shop-b"]
    revoke(alliance.ca_dir, shop_a.cert)
    folder = alliance.root / "crl"
    folder.mkdir()
    shutil.copy(alliance.ca_dir / "crl.pem", folder / "crl.pem")
    clock = Monotonic()
    config = alliance.config(
        f"sqlite:///{alliance.root / 'gateway.db'}",
        crl_file=str(folder / "crl.pem"),
        crl_reload_interval_s=RELOAD_S,
    )
    members = tuple(alliance.members.values())
    with running_gateway(config, register=members, monotonic=clock) as gw:
        assert _call(shop_a, gw.port) is Code.PERMISSION_DENIED
        folder.rename(alliance.root / "crl.moved")
        folder.write_text("not a folder")
        caplog.set_level(logging.WARNING)
        clock.now += RELOAD_S
        size = gw.core.ledger.size
        shop_c_key = SigningKey.generate()
        shop_c = "spiffe://zj.alliance.test/platform/shop-c"
        gw.core.members.add(  # a change the tick's checkpoint must cover
            shop_c,
            "330100",
            shop_c_key.public_key().raw,
            possession=prove_possession(shop_c_key, shop_c),
        )
        gw._tick()
        assert any("cannot read CRL" in r.getMessage() for r in caplog.records)
        latest = gw.core.store.latest_checkpoint()
        assert latest is not None and latest.tree_size == size + 1
        assert _call(shop_a, gw.port) is Code.PERMISSION_DENIED
        assert _call(shop_b, gw.port) is Code.OK
