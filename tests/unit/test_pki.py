from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs import cli, pki
from gateway.core.identifiers import Role
from gateway.errors import ConfigError

TD = "north.example"
PLATFORM = f"spiffe://{TD}/platform/acme"
REPO = Path(__file__).resolve().parents[2]


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    pki.create_ca(tmp_path / "ca", TD)
    return tmp_path / "ca"


def test_ca_is_a_constrained_self_signed_ca(ca_dir: Path) -> None:
    ca = _cert(ca_dir / "ca.pem")
    ca.verify_directly_issued_by(ca)
    assert ca.subject.rfc4514_string() == f"CN={TD} alliance CA,O={TD}"
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    assert constraints.permitted_subtrees == [x509.UniformResourceIdentifier(TD)]
    assert (ca_dir / "crl.pem").exists()


def test_member_chain_verifies_with_exactly_one_uri_san(ca_dir: Path, tmp_path: Path) -> None:
    files = pki.issue_member(ca_dir, PLATFORM, tmp_path / "out")
    assert files.cert == tmp_path / "out" / "acme.pem"
    assert files.key == tmp_path / "out" / "acme-key.pem"
    cert = _cert(files.cert)
    cert.verify_directly_issued_by(_cert(ca_dir / "ca.pem"))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [PLATFORM]
    assert len(list(san)) == 1
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.serial_number == files.serial
    assert pki.read_member_id(files.cert.read_bytes()) == PLATFORM
    assert pki.certificate_serial(files.cert.read_bytes()) == files.serial
    assert pki.certificate_not_after(files.cert.read_bytes()) == files.not_after


def test_serials_are_random(ca_dir: Path, tmp_path: Path) -> None:
    a = pki.issue_member(ca_dir, PLATFORM, tmp_path / "a")
    b = pki.issue_member(ca_dir, PLATFORM, tmp_path / "b")
    assert a.serial != b.serial
    assert 0 < a.serial < 2**128


def test_gateway_certificate_carries_host_sans(ca_dir: Path, tmp_path: Path) -> None:
    files = pki.issue_gateway(ca_dir, TD, "gw1", tmp_path / "out")
    san = _cert(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"spiffe://{TD}/gateway/gw1"
    ]
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_private_keys_are_owner_only(ca_dir: Path, tmp_path: Path) -> None:
    files = pki.issue_member(ca_dir, PLATFORM, tmp_path / "out")
    pki.generate_signing_key(tmp_path / "sign" / "acme.key")
    assert _mode(ca_dir / "ca-key.pem") == 0o600
    assert _mode(files.key) == 0o600
    assert _mode(tmp_path / "sign" / "acme.key") == 0o600
    assert _mode(ca_dir) == 0o700
    assert _mode(files.cert) == 0o644
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_existing_ca_is_not_replaced_without_force(ca_dir: Path) -> None:
    before = (ca_dir / "ca.pem").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        pki.create_ca(ca_dir, TD)
    assert (ca_dir / "ca.pem").read_bytes() == before
    pki.create_ca(ca_dir, TD, force=True)
    assert (ca_dir / "ca.pem").read_bytes() != before


@pytest.mark.parametrize("trust_domain", ["", "North.example", "north example", "a/b", "é"])
def test_bad_trust_domain_is_refused(tmp_path: Path, trust_domain: str) -> None:
    with pytest.raises(ConfigError, match="trust domain"):
        pki.create_ca(tmp_path / "ca", trust_domain)
    assert not (tmp_path / "ca").exists()


@pytest.mark.parametrize(
    ("member_id", "message"),
    [
        ("spiffe://south.example/platform/acme", "outside the CA's trust domain"),
        # The gateway's own grammar (gateway.core.identifiers.MemberId) and its messages.
        (f"spiffe://{TD}/admin/acme", "role 'admin' is not one of"),
        (f"spiffe://{TD}/platform", "must be spiffe://<trust-domain>/<role>/<name>"),
        (f"spiffe://{TD}/platform/acme/extra", "must be spiffe://<trust-domain>/<role>/<name>"),
        (f"https://{TD}/platform/acme", "must start with spiffe://"),
        (f"spiffe://{TD}/platform/..", "name must not be '.' or '..'"),
        (f"spiffe://{TD}/platform/a b", "name 'a b' may contain only"),
        (f"spiffe://{TD}/platform/", "name must not be empty"),
    ],
)
def test_bad_member_id_is_refused(
    ca_dir: Path, tmp_path: Path, member_id: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        pki.issue_member(ca_dir, member_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_sans_are_refused(ca_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DNS name"):
        pki.issue_member(ca_dir, PLATFORM, tmp_path, dns_names=["bad_host!"])
    with pytest.raises(ConfigError, match="IP address"):
        pki.issue_member(ca_dir, PLATFORM, tmp_path, ip_addresses=["300.1.1.1"])


def test_expired_certificate_can_be_made(ca_dir: Path, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    files = pki.issue_member(
        ca_dir,
        PLATFORM,
        tmp_path,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    assert _cert(files.cert).not_valid_after_utc < now
    with pytest.raises(ConfigError, match="timezone"):
        pki.issue_member(ca_dir, PLATFORM, tmp_path, not_after=dt.datetime(2030, 1, 1))


def test_validity_is_capped_at_the_ca_expiry(tmp_path: Path) -> None:
    pki.create_ca(tmp_path / "ca", TD, days=30)
    files = pki.issue_member(tmp_path / "ca", PLATFORM, tmp_path, days=397)
    assert files.not_after == _cert(tmp_path / "ca" / "ca.pem").not_valid_after_utc


def test_revocation_reaches_a_reloaded_list(ca_dir: Path, tmp_path: Path) -> None:
    member = pki.issue_member(ca_dir, PLATFORM, tmp_path / "out")
    other = pki.issue_member(ca_dir, f"spiffe://{TD}/monitor/watch", tmp_path / "out")
    crl = pki.RevocationList(ca_dir / "crl.pem", ca_dir / "ca.pem")
    assert not crl.is_revoked(member.serial)
    assert crl.reload_if_changed() is False

    pki.revoke(ca_dir, member.cert)
    assert crl.reload_if_changed() is True
    assert crl.is_revoked(member.serial)
    assert not crl.is_revoked(other.serial)
    assert crl.reload_if_changed() is False

    pki.revoke(ca_dir, other.serial)
    pki.revoke(ca_dir, other.serial)  # idempotent
    assert crl.reload_if_changed() is True
    assert crl.revoked_serials == {member.serial, other.serial}

    parsed = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert parsed.get_revoked_certificate_by_serial_number(member.serial) is not None
    assert parsed.next_update_utc is not None and parsed.last_update_utc is not None
    assert parsed.next_update_utc - parsed.last_update_utc == dt.timedelta(days=7)
    assert parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 4
    fresh = pki.RevocationList(ca_dir / "crl.pem", ca_dir / "ca.pem")
    assert fresh.revoked_serials == {member.serial, other.serial}


def test_refresh_keeps_revocations(ca_dir: Path, tmp_path: Path) -> None:
    member = pki.issue_member(ca_dir, PLATFORM, tmp_path)
    pki.revoke(ca_dir, member.cert)
    pki.refresh_crl(ca_dir)
    assert pki.RevocationList(ca_dir / "crl.pem", ca_dir / "ca.pem").is_revoked(member.serial)


def test_certificate_of_another_ca_cannot_be_revoked(ca_dir: Path, tmp_path: Path) -> None:
    pki.create_ca(tmp_path / "other", TD)
    foreign = pki.issue_member(tmp_path / "other", PLATFORM, tmp_path / "foreign")
    with pytest.raises(ConfigError, match="not issued by"):
        pki.revoke(ca_dir, foreign.cert)


def test_crl_signed_by_another_ca_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    pki.create_ca(tmp_path / "other", TD)
    with pytest.raises(ConfigError, match="not signed by the CA"):
        pki.RevocationList(tmp_path / "other" / "crl.pem", ca_dir / "ca.pem")


def test_missing_crl_means_nothing_revoked(tmp_path: Path, ca_dir: Path) -> None:
    crl = pki.RevocationList(tmp_path / "absent.pem", ca_dir / "ca.pem")
    assert crl.revoked_serials == frozenset()
    assert crl.next_update is None
    assert crl.reload_if_changed() is False


def test_bad_replacement_keeps_previous_list(
    ca_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    member = pki.issue_member(ca_dir, PLATFORM, tmp_path)
    pki.revoke(ca_dir, member.cert)
    crl_path = ca_dir / "crl.pem"
    crl = pki.RevocationList(crl_path, ca_dir / "ca.pem")
    pki.create_ca(tmp_path / "other", TD)
    caplog.set_level(logging.WARNING, logger="certs.pki")

    crl_path.write_bytes(b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
    assert crl.reload_if_changed() is False
    os.replace(tmp_path / "other" / "crl.pem", crl_path)
    assert crl.reload_if_changed() is False
    crl_path.unlink()
    assert crl.reload_if_changed() is False

    assert crl.is_revoked(member.serial)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3


def test_corrupt_crl_at_start_is_refused(ca_dir: Path) -> None:
    (ca_dir / "crl.pem").write_bytes(b"not a crl")
    with pytest.raises(ConfigError, match="not a PEM CRL"):
        pki.RevocationList(ca_dir / "crl.pem", ca_dir / "ca.pem")


def test_signing_key(tmp_path: Path) -> None:
    path = tmp_path / "acme.key"
    public_hex = pki.generate_signing_key(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert public_hex == pki.signing_public_key_hex(key.public_key())
    assert len(bytes.fromhex(public_hex)) == 32
    assert pki.write_public_key(path, tmp_path / "acme.pub") == public_hex
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "acme.pub").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        pki.generate_signing_key(path)


def test_read_member_id_needs_exactly_one_uri(ca_dir: Path) -> None:
    with pytest.raises(ConfigError, match="0 URI SANs"):
        pki.read_member_id((ca_dir / "ca.pem").read_bytes())
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        pki.read_member_id(b"junk")


def test_parse_member_id_round_trips() -> None:
    mid = pki.parse_member_id(PLATFORM)
    assert (mid.trust_domain, mid.role, mid.name) == (TD, Role.PLATFORM, "acme")
    assert str(mid) == PLATFORM


def test_cli_issues_and_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = str(tmp_path / "ca")
    assert cli.main(["init-ca", "--dir", ca, "--trust-domain", TD]) == 0
    out = str(tmp_path / "out")
    assert cli.main(["issue", "--ca", ca, "--member-id", PLATFORM, "--out", out]) == 0
    argv = ["issue-gateway", "--ca", ca, "--trust-domain", TD, "--name", "gw1", "--out", out]
    assert cli.main([*argv, "--host", "gw1.internal", "--host", "::1"]) == 0
    assert cli.main(["signing-key", "--out", str(tmp_path / "acme.key")]) == 0
    capsys.readouterr()
    assert cli.main(["show", str(tmp_path / "out" / "acme.pem")]) == 0
    shown = capsys.readouterr().out
    serial = pki.certificate_serial((tmp_path / "out" / "acme.pem").read_bytes())
    assert f"member id: {PLATFORM}" in shown
    assert f"serial: {serial:#x}" in shown
    assert cli.main(["revoke", "--ca", ca, "--serial", f"{serial:#x}"]) == 0
    crl = pki.RevocationList(tmp_path / "ca" / "crl.pem", tmp_path / "ca" / "ca.pem")
    assert crl.is_revoked(serial)


def test_cli_error_prints_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["issue", "--ca", str(tmp_path / "none"), "--member-id", PLATFORM, "--out", "x"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: CA certificate")
    assert "\nhint: " in err
    assert "Traceback" not in err


def test_python_m_certs_fails_with_hint_and_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "certs", "init-ca", "--dir", str(tmp_path), "--trust-domain", "BAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: trust_domain: trust domain 'BAD' may contain only")
    assert "Traceback" not in result.stderr
