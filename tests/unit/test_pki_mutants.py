"""The CRL handling of ``certs/pki.py``, edges found by mutation testing
(docs/TESTING.md, run 5): each test names what it stops."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from certtest import certificate, key_pem, pem
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from certs import pki
from gateway.errors import ConfigError

TD = "north.example"
PLATFORM = f"spiffe://{TD}/platform/acme"
CRL_ADVICE = "regenerate it with `alliance-gateway certs revoke` using the matching CA"


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    pki.create_ca(tmp_path / "ca", TD)
    return tmp_path / "ca"


def _crl(ca_dir: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl((ca_dir / pki.CRL_FILE).read_bytes())


def _crl_number(ca_dir: Path) -> int:
    return _crl(ca_dir).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _revoked(ca_dir: Path) -> set[int]:
    return {r.serial_number for r in _crl(ca_dir)}


# --- revoke ------------------------------------------------------------------------------


@pytest.mark.parametrize("serial", [1, 2**159 - 1])
def test_every_serial_a_certificate_can_carry_can_be_revoked(ca_dir: Path, serial: int) -> None:
    """RFC 5280 §4.1.2.2: a positive serial of up to 20 octets. The smallest and the
    largest must be revocable, or a certificate carrying one could never be revoked."""
    pki.revoke(ca_dir, serial)
    assert _revoked(ca_dir) == {serial}
    assert pki.RevocationList(ca_dir / pki.CRL_FILE, ca_dir / pki.CA_CERT_FILE).is_revoked(serial)


@pytest.mark.parametrize("serial", [0, -1, 2**159])
def test_a_serial_no_certificate_can_carry_is_refused_by_name(ca_dir: Path, serial: int) -> None:
    """A mistyped serial is named, not written into the CRL (where it would hide the one
    the operator meant to revoke)."""
    with pytest.raises(ConfigError) as refused:
        pki.revoke(ca_dir, serial)
    assert str(refused.value) == f"serial {serial} is out of range"
    assert refused.value.advice == "copy it from `certs show`"
    assert _revoked(ca_dir) == set() and _crl_number(ca_dir) == 1


def test_a_missing_certificate_file_is_named(ca_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        pki.revoke(ca_dir, tmp_path / "gone.pem")
    assert str(refused.value) == f"certificate {tmp_path / 'gone.pem'} not found"


def test_a_certificate_of_another_ca_is_refused_with_advice(ca_dir: Path, tmp_path: Path) -> None:
    """Revoking a serial of another CA's certificate would leave that certificate valid
    where it matters (at its own CA) while the operator believes it revoked."""
    pki.create_ca(tmp_path / "other", TD)
    foreign = pki.issue_member(tmp_path / "other", PLATFORM, tmp_path / "foreign")
    with pytest.raises(ConfigError) as refused:
        pki.revoke(ca_dir, foreign.cert)
    assert str(refused.value) == f"{foreign.cert} was not issued by the CA in {ca_dir}"
    assert refused.value.advice == "revoke it with the CA that issued it"
    assert _revoked(ca_dir) == set()


def test_every_new_crl_has_the_next_number(ca_dir: Path, tmp_path: Path) -> None:
    """RFC 5280 §5.2.3: the CRL number increases with each CRL, so a relying party can
    tell a newer list from an older one replayed to it; each step is exactly one."""
    assert _crl_number(ca_dir) == 1
    pki.refresh_crl(ca_dir)
    assert _crl_number(ca_dir) == 2
    member = pki.issue_member(ca_dir, PLATFORM, tmp_path / "out")
    pki.revoke(ca_dir, member.cert)
    assert _crl_number(ca_dir) == 3
    pki.refresh_crl(ca_dir)
    assert _crl_number(ca_dir) == 4
    assert json.loads((ca_dir / pki.STATE_FILE).read_text())["crl_number"] == 4
    assert _revoked(ca_dir) == {member.serial}


def test_the_crl_extensions_are_non_critical_as_rfc_5280_requires(ca_dir: Path) -> None:
    """RFC 5280 §5.2.3 (CRL number) and §4.2.1.1 (authority key identifier): both
    non-critical; a relying party must reject a CRL with a critical extension it does
    not process, so a critical one could make a verifier drop every revocation."""
    crl = _crl(ca_dir)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber)
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert not number.critical and not aki.critical
    ca = x509.load_pem_x509_certificate((ca_dir / pki.CA_CERT_FILE).read_bytes())
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.value.key_identifier == ski.digest


# --- the CA's revocation state --------------------------------------------------------------


def test_a_missing_ca_state_is_named(ca_dir: Path) -> None:
    (ca_dir / pki.STATE_FILE).unlink()
    with pytest.raises(ConfigError) as refused:
        pki.refresh_crl(ca_dir)
    assert str(refused.value) == f"CA state {ca_dir / pki.STATE_FILE} not found"


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("{}", "'revoked'"),
        ('{"crl_number": 3, "revoked": {"zz": "2026-01-01T00:00:00+00:00"}}', None),
        ('{"crl_number": "x", "revoked": {}}', None),
        ("[]", None),
    ],
)
def test_a_corrupt_ca_state_is_refused_not_reset(
    ca_dir: Path, state: str, error: str | None
) -> None:
    """A state file that does not parse is refused: starting again from CRL number 1
    with no revoked serials would silently un-revoke every certificate."""
    path = ca_dir / pki.STATE_FILE
    path.write_text(state)
    with pytest.raises(ConfigError) as refused:
        pki.refresh_crl(ca_dir)
    assert str(refused.value).startswith(f"{path} is corrupt: ")
    if error is not None:
        assert str(refused.value) == f"{path} is corrupt: {error}"
    assert refused.value.advice == "restore it from the CA's backup"
    assert path.read_text() == state


# --- RevocationList ---------------------------------------------------------------------------


def test_a_file_that_is_not_a_crl_is_refused_with_advice(ca_dir: Path) -> None:
    (ca_dir / pki.CRL_FILE).write_bytes(b"not a crl")
    with pytest.raises(ConfigError) as refused:
        pki.RevocationList(ca_dir / pki.CRL_FILE, ca_dir / pki.CA_CERT_FILE)
    assert str(refused.value) == f"{ca_dir / pki.CRL_FILE} is not a PEM CRL"
    assert refused.value.advice == CRL_ADVICE


def test_a_crl_of_another_ca_is_refused_with_advice(ca_dir: Path, tmp_path: Path) -> None:
    pki.create_ca(tmp_path / "other", TD)
    with pytest.raises(ConfigError) as refused:
        pki.RevocationList(tmp_path / "other" / pki.CRL_FILE, ca_dir / pki.CA_CERT_FILE)
    assert str(refused.value) == f"{tmp_path / 'other' / pki.CRL_FILE} is not signed by the CA"
    assert refused.value.advice == CRL_ADVICE


def test_a_ca_certificate_without_an_ecdsa_key_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    """The alliance CA signs with ECDSA P-256; a CA certificate with another key cannot
    have signed this CRL, whatever the CRL says."""
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, TD)])
    ca_pem = tmp_path / "ed25519-ca.pem"
    ca_pem.write_bytes(pem(certificate(name, ed25519.Ed25519PrivateKey.generate())))
    with pytest.raises(ConfigError) as refused:
        pki.RevocationList(ca_dir / pki.CRL_FILE, ca_pem)
    assert str(refused.value) == "the CA key is not ECDSA"
    assert refused.value.advice == CRL_ADVICE


def _messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "certs.pki"]


def test_each_reload_outcome_is_logged_with_the_file_and_the_count(
    ca_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator's only sign that a revocation took effect, or that a replacement
    CRL was ignored and the previous list still applies."""
    crl_path = ca_dir / pki.CRL_FILE
    crl = pki.RevocationList(crl_path, ca_dir / pki.CA_CERT_FILE)
    caplog.set_level(logging.INFO, logger="certs.pki")
    member = pki.issue_member(ca_dir, PLATFORM, tmp_path / "out")
    pki.revoke(ca_dir, member.cert)
    assert crl.reload_if_changed() is True

    crl_path.write_bytes(b"not a crl")
    assert crl.reload_if_changed() is False
    crl_path.unlink()
    assert crl.reload_if_changed() is False
    assert crl.is_revoked(member.serial)

    assert _messages(caplog) == [
        (logging.INFO, f"loaded CRL {crl_path}: 1 revoked serials"),
        (
            logging.WARNING,
            f"ignoring CRL {crl_path}: {crl_path} is not a PEM CRL; keeping the previous list",
        ),
        (
            logging.WARNING,
            f"CRL {crl_path} disappeared; keeping the 1 revoked serials already loaded",
        ),
    ]


def test_a_crl_signed_with_the_ca_key_but_another_issuer_name_is_refused(
    ca_dir: Path,
) -> None:
    """The signature alone is not enough: a CRL must name the CA as its issuer."""
    ca_key = serialization.load_pem_private_key(
        (ca_dir / pki.CA_KEY_FILE).read_bytes(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "other.example")]))
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    (ca_dir / pki.CRL_FILE).write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ConfigError, match="is not signed by the CA"):
        pki.RevocationList(ca_dir / pki.CRL_FILE, ca_dir / pki.CA_CERT_FILE)


def test_a_missing_ca_certificate_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        pki.RevocationList(tmp_path / "crl.pem", tmp_path / "ca.pem")
    assert str(refused.value) == f"CA certificate {tmp_path / 'ca.pem'} not found"


def test_a_crl_path_that_cannot_be_read_is_refused_with_advice(
    ca_dir: Path, tmp_path: Path
) -> None:
    """Not a missing file (which means "nothing revoked"): a path that cannot be read
    must stop the gateway, or a typo in the setting would silently revoke nothing."""
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError) as refused:
        pki.RevocationList(tmp_path / "a-file" / "crl.pem", ca_dir / pki.CA_CERT_FILE)
    assert str(refused.value).startswith(f"cannot read CRL {tmp_path / 'a-file' / 'crl.pem'}: ")
    assert refused.value.advice == "check the path and its permissions"


def test_a_crl_is_stale_only_after_its_next_update(
    ca_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stale CRL still revokes; the warning names the file and since when, so the
    operator runs `certs refresh-crl`. At the nextUpdate instant itself it is current."""
    crl_path = ca_dir / pki.CRL_FILE
    next_update = _crl(ca_dir).next_update_utc
    assert next_update is not None
    caplog.set_level(logging.WARNING, logger="certs.pki")
    monkeypatch.setattr(pki, "_now", lambda: next_update)
    pki.RevocationList(crl_path, ca_dir / pki.CA_CERT_FILE)
    assert _messages(caplog) == []
    monkeypatch.setattr(pki, "_now", lambda: next_update + dt.timedelta(seconds=1))
    stale = pki.RevocationList(crl_path, ca_dir / pki.CA_CERT_FILE)
    assert stale.next_update == next_update
    assert _messages(caplog) == [
        (
            logging.WARNING,
            f"CRL {crl_path} is stale since {next_update}; run `certs refresh-crl`",
        )
    ]


# --- outside the CRL handling: the CA files and the member certificate profile -----------


def test_a_ca_key_that_does_not_match_its_certificate_is_refused(ca_dir: Path) -> None:
    """A CRL signed with a key that is not the CA's is refused by every gateway, so the
    revocations in it would silently never apply: the mismatch stops the tool first."""
    (ca_dir / pki.CA_KEY_FILE).write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ConfigError) as refused:
        pki.revoke(ca_dir, 5)
    assert str(refused.value) == (
        f"{ca_dir / pki.CA_KEY_FILE} does not match {ca_dir / pki.CA_CERT_FILE}"
    )
    assert refused.value.advice == "restore the CA directory from its backup"
    assert _revoked(ca_dir) == set()


def test_a_ca_key_that_is_not_a_pem_key_is_named(ca_dir: Path) -> None:
    (ca_dir / pki.CA_KEY_FILE).write_bytes(b"not a key")
    with pytest.raises(ConfigError) as refused:
        pki.refresh_crl(ca_dir)
    assert str(refused.value) == f"{ca_dir / pki.CA_KEY_FILE} is not an unencrypted PEM key"
    assert refused.value.advice == "restore the CA directory from its backup"
    (ca_dir / pki.CA_KEY_FILE).unlink()
    with pytest.raises(ConfigError, match=r"^CA key .* not found$"):
        pki.refresh_crl(ca_dir)


def test_a_ca_certificate_without_a_trust_domain_is_refused(ca_dir: Path) -> None:
    """The trust domain is read from the CA certificate's organization: a CA without
    one cannot say which member ids it may certify."""
    key = serialization.load_pem_private_key((ca_dir / pki.CA_KEY_FILE).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no organization")])
    (ca_dir / pki.CA_CERT_FILE).write_bytes(pem(certificate(name, key)))
    with pytest.raises(ConfigError) as refused:
        pki.refresh_crl(ca_dir)
    assert str(refused.value) == f"{ca_dir / pki.CA_CERT_FILE} names no trust domain"
    assert refused.value.advice == "use a CA made by `alliance-gateway certs init-ca`"


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension:  # type: ignore[type-arg]
    return cert.extensions.get_extension_for_class(kind)


def test_a_member_certificate_has_the_documented_profile(ca_dir: Path, tmp_path: Path) -> None:
    """Not a CA (critical basic constraints, so no verifier may skip it), key usage
    critical, the member id the only URI; 397 days by default (the CA/Browser limit
    the gateway's peers may apply)."""
    files = pki.issue_member(ca_dir, PLATFORM, tmp_path / "out")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    basic = _ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    assert _ext(cert, x509.KeyUsage).critical
    assert not _ext(cert, x509.ExtendedKeyUsage).critical
    assert not _ext(cert, x509.SubjectAlternativeName).critical
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == (
        "platform"
    )
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=397, minutes=5)
    assert files.member_id == PLATFORM
    gateway = pki.issue_gateway(ca_dir, TD, "gw", tmp_path / "gw")
    gw_cert = x509.load_pem_x509_certificate(gateway.cert.read_bytes())
    assert gw_cert.not_valid_after_utc - gw_cert.not_valid_before_utc == dt.timedelta(
        days=397, minutes=5
    )


@pytest.mark.parametrize(("length", "has_cn"), [(64, True), (65, False)])
def test_a_common_name_is_set_up_to_its_x509_limit(
    ca_dir: Path, tmp_path: Path, length: int, has_cn: bool
) -> None:
    member = f"spiffe://{TD}/platform/{'a' * length}"
    cert = x509.load_pem_x509_certificate(
        pki.issue_member(ca_dir, member, tmp_path / "out").cert.read_bytes()
    )
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [n.value for n in names] == (["a" * length] if has_cn else [])


def test_a_certificate_valid_for_no_time_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ConfigError) as refused:
        pki.issue_member(ca_dir, PLATFORM, tmp_path / "out", not_before=at, not_after=at)
    assert str(refused.value) == (
        f"validity ends ({at.isoformat()}) before it starts ({at.isoformat()})"
    )
    assert refused.value.advice == "check the requested days and the CA's expiry"


@pytest.mark.parametrize("field", ["not_before", "not_after"])
def test_a_validity_bound_without_a_timezone_is_refused(
    ca_dir: Path, tmp_path: Path, field: str
) -> None:
    """A naive time would be read in the issuing machine's zone: hours off for a
    certificate meant to expire (or start) at a precise instant."""
    naive = {field: dt.datetime(2026, 1, 1)}
    with pytest.raises(ConfigError) as refused:
        pki.issue_member(ca_dir, PLATFORM, tmp_path / "out", **naive)  # type: ignore[arg-type]
    assert str(refused.value) == f"{field} must carry a timezone"
    assert refused.value.advice == "use datetime.now(UTC)"
