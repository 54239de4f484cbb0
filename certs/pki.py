"""The alliance PKI: a CA per trust domain, member certificates with SPIFFE SANs,
revocation through a CRL, and Ed25519 record-signing keys.

TLS material is ECDSA P-256 with SHA-256 throughout, which gRPC's TLS stack
(BoringSSL) accepts. The CA directory holds ``ca.pem``, ``ca-key.pem`` (0600),
``crl.pem`` and ``state.json`` (CRL number and revoked serials). The trust domain is
read back from the CA certificate's organization attribute.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.core.crypto import load_signing_key
from gateway.core.identifiers import MemberId, Role, validate_trust_domain
from gateway.core.possession import prove_possession
from gateway.errors import ConfigError, GatewayError, RecordError

logger = logging.getLogger(__name__)

ROLES = frozenset(role.name.lower() for role in Role)
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CRL_FILE = "crl.pem"
STATE_FILE = "state.json"
CRL_VALIDITY = dt.timedelta(days=7)
_CLOCK_SKEW = dt.timedelta(minutes=5)
_FILE_ADVICE = "check the path and its permissions"
_SIGNING_KEY_ADVICE = "pass a key made by `alliance-gateway certs signing-key`"
_MAX_SERIAL = 2**159

_MEMBER_ID_ADVICE = (
    "write it as spiffe://<trust-domain>/<role>/<name>: trust domain 1-255 and name "
    "1-128 characters of a-z 0-9 . - _, role one of authority, gateway, monitor, platform"
)
# X.509 caps a commonName at 64 characters; a longer member name is left out of the
# subject (the URI SAN alone names the member).
_MAX_COMMON_NAME = 64
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_member_id(member_id: str) -> MemberId:
    """Parse ``spiffe://<trust-domain>/<role>/<name>`` by the gateway's own grammar
    (``gateway.core.identifiers.MemberId``), so the tool issues exactly the names the
    gateway accepts; ConfigError when malformed."""
    try:
        return MemberId.parse(member_id, field="member id")
    except RecordError as e:
        raise ConfigError(str(e), advice=_MEMBER_ID_ADVICE) from e


def _member_id(trust_domain: str, role: Role, name: str) -> MemberId:
    try:
        return MemberId(trust_domain, role, name)
    except RecordError as e:
        raise ConfigError(str(e), advice=_MEMBER_ID_ADVICE) from e


@dataclass(frozen=True)
class CaFiles:
    trust_domain: str
    cert: Path
    key: Path
    crl: Path
    state: Path


@dataclass(frozen=True)
class IssuedFiles:
    member_id: str
    cert: Path
    key: Path
    serial: int
    not_after: dt.datetime


@dataclass(frozen=True)
class _Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    trust_domain: str
    directory: Path


# --- creating the CA and issuing -------------------------------------------------------


def create_ca(
    directory: Path, trust_domain: str, *, days: int = 3650, force: bool = False
) -> CaFiles:
    """Create a self-signed CA for one trust domain; refuses to replace one unless force."""
    directory = Path(directory)
    _check_trust_domain(trust_domain)
    _check_days(days)
    if not force and any((directory / n).exists() for n in (CA_CERT_FILE, CA_KEY_FILE)):
        raise ConfigError(
            f"a CA already exists in {directory}",
            advice="pick another directory, or pass --force to replace it "
            "(every certificate it issued stops verifying)",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cn = f"{trust_domain} alliance CA"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
            x509.NameAttribute(NameOID.COMMON_NAME, cn if len(cn) <= 64 else cn[-64:]),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(_random_serial())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            # RFC 5280: a URI constraint names the host part, here the trust domain.
            x509.NameConstraints(
                permitted_subtrees=[x509.UniformResourceIdentifier(trust_domain)],
                excluded_subtrees=None,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _make_dir(directory, private=True)
    files = CaFiles(
        trust_domain=trust_domain,
        cert=directory / CA_CERT_FILE,
        key=directory / CA_KEY_FILE,
        crl=directory / CRL_FILE,
        state=directory / STATE_FILE,
    )
    _write(files.key, _private_pem(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    ca = _Ca(cert=cert, key=key, trust_domain=trust_domain, directory=directory)
    _save_state_and_crl(ca, crl_number=1, revoked={})
    return files


def issue_member(
    ca_dir: Path,
    member_id: str,
    out_dir: Path,
    *,
    days: int = 397,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str | IpAddress] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> IssuedFiles:
    """Issue a TLS certificate whose only URI SAN is ``member_id``.

    Writes ``<name>.pem`` and ``<name>-key.pem`` (0600) in ``out_dir``, replacing any
    earlier pair. Without overrides the validity is ``days``, capped at the CA's expiry.
    """
    mid = parse_member_id(member_id)
    ca = _load_ca(Path(ca_dir))
    if mid.trust_domain != ca.trust_domain:
        raise ConfigError(
            f"member id {member_id!r} is outside the CA's trust domain {ca.trust_domain!r}",
            advice=f"use spiffe://{ca.trust_domain}/<role>/<name>, or that domain's own CA",
        )
    _check_days(days)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(mid))]
    sans += [x509.DNSName(_check_dns_name(n)) for n in dns_names]
    sans += [x509.IPAddress(_check_ip(a)) for a in ip_addresses]
    subject = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, mid.trust_domain),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, mid.role.name.lower()),
    ]
    if len(mid.name) <= _MAX_COMMON_NAME:
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, mid.name))
    now = _now()
    start = _aware(not_before, "not_before") if not_before else now - _CLOCK_SKEW
    if not_after is not None:
        end = _aware(not_after, "not_after")
    else:
        end = min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc)
    if end <= start:
        raise ConfigError(
            f"validity ends ({end.isoformat()}) before it starts ({start.isoformat()})",
            advice="check the requested days and the CA's expiry",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    serial = _random_serial()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
        .sign(ca.key, hashes.SHA256())
    )
    out_dir = Path(out_dir)
    _make_dir(out_dir, private=False)
    files = IssuedFiles(
        member_id=str(mid),
        cert=out_dir / f"{mid.name}.pem",
        key=out_dir / f"{mid.name}-key.pem",
        serial=serial,
        not_after=cert.not_valid_after_utc,
    )
    _write(files.key, _private_pem(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    return files


def issue_gateway(
    ca_dir: Path,
    trust_domain: str,
    name: str,
    out_dir: Path,
    *,
    hosts: Iterable[str] = ("localhost", "127.0.0.1"),
    days: int = 397,
) -> IssuedFiles:
    """Issue a gateway's certificate (server and federation client) for ``hosts``."""
    dns: list[str] = []
    ips: list[IpAddress] = []
    for host in hosts:
        try:
            ips.append(ipaddress.ip_address(host))
        except ValueError:
            dns.append(host)
    member_id = str(_member_id(trust_domain, Role.GATEWAY, name))
    return issue_member(ca_dir, member_id, out_dir, days=days, dns_names=dns, ip_addresses=ips)


# --- revocation ------------------------------------------------------------------------


def revoke(ca_dir: Path, cert_path_or_serial: Path | str | int) -> None:
    """Add a serial to the CA's revocation state and atomically rewrite ``crl.pem``.

    A certificate file must have been issued by this CA; revoking twice is harmless.
    """
    ca = _load_ca(Path(ca_dir))
    if isinstance(cert_path_or_serial, int):
        serial = cert_path_or_serial
        if not 0 < serial < _MAX_SERIAL:
            raise ConfigError(
                f"serial {serial} is out of range", advice="copy it from `certs show`"
            )
    else:
        cert = _load_cert(_read(Path(cert_path_or_serial), "certificate"))
        try:
            cert.verify_directly_issued_by(ca.cert)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise ConfigError(
                f"{cert_path_or_serial} was not issued by the CA in {ca_dir}",
                advice="revoke it with the CA that issued it",
            ) from e
        serial = cert.serial_number
    number, revoked = _load_state(ca)
    revoked.setdefault(serial, _now())
    _save_state_and_crl(ca, crl_number=number + 1, revoked=revoked)


def refresh_crl(ca_dir: Path) -> Path:
    """Re-sign ``crl.pem`` with a fresh nextUpdate (run at least weekly)."""
    ca = _load_ca(Path(ca_dir))
    number, revoked = _load_state(ca)
    _save_state_and_crl(ca, crl_number=number + 1, revoked=revoked)
    return ca.directory / CRL_FILE


class RevocationList:
    """The revoked serials of one CA, read from a CRL whose signature is verified.

    A missing file means nothing is revoked. ``reload_if_changed`` re-reads the file
    when it changed; a corrupt or missing replacement keeps the previous list.
    """

    def __init__(self, crl_path: Path, ca_cert_path: Path) -> None:
        self._path = Path(crl_path)
        self._ca = _load_cert(_read(Path(ca_cert_path), "CA certificate"))
        self._lock = threading.Lock()
        self._revoked: frozenset[int] = frozenset()
        self._next_update: dt.datetime | None = None
        stamp = self._stamp()
        if stamp is not None:
            self._revoked, self._next_update = self._load()
        self._seen = stamp

    @property
    def path(self) -> Path:
        return self._path

    @property
    def revoked_serials(self) -> frozenset[int]:
        return self._revoked

    @property
    def next_update(self) -> dt.datetime | None:
        """When the loaded CRL goes stale; None when no CRL file was loaded."""
        return self._next_update

    def is_revoked(self, serial: int) -> bool:
        return serial in self._revoked

    def reload_if_changed(self) -> bool:
        """Re-read the CRL if its file changed; True when a new list was loaded."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self._seen:
                return False
            self._seen = stamp
            if stamp is None:
                logger.warning(
                    "CRL %s disappeared; keeping the %d revoked serials already loaded",
                    self._path,
                    len(self._revoked),
                )
                return False
            try:
                revoked, next_update = self._load()
            except ConfigError as e:
                logger.warning("ignoring CRL %s: %s; keeping the previous list", self._path, e)
                return False
            self._revoked, self._next_update = revoked, next_update
            logger.info("loaded CRL %s: %d revoked serials", self._path, len(revoked))
            return True

    def _stamp(self) -> tuple[int, int, int, int] | None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ConfigError(f"cannot read CRL {self._path}: {e}", advice=_FILE_ADVICE) from e
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _load(self) -> tuple[frozenset[int], dt.datetime | None]:
        data = _read(self._path, "CRL")
        try:
            crl = x509.load_pem_x509_crl(data)
        except ValueError as e:
            raise ConfigError(f"{self._path} is not a PEM CRL", advice=_CRL_ADVICE) from e
        public_key = self._ca.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ConfigError("the CA key is not ECDSA", advice=_CRL_ADVICE)
        try:
            valid = crl.issuer == self._ca.subject and crl.is_signature_valid(public_key)
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise ConfigError(f"{self._path} is not signed by the CA", advice=_CRL_ADVICE)
        next_update = crl.next_update_utc
        if next_update is not None and next_update < _now():
            logger.warning(
                "CRL %s is stale since %s; run `certs refresh-crl`", self._path, next_update
            )
        return frozenset(r.serial_number for r in crl), next_update


_CRL_ADVICE = "regenerate it with `alliance-gateway certs revoke` using the matching CA"


def _load_state(ca: _Ca) -> tuple[int, dict[int, dt.datetime]]:
    path = ca.directory / STATE_FILE
    try:
        raw = json.loads(_read(path, "CA state"))
        revoked = {int(s, 16): dt.datetime.fromisoformat(t) for s, t in raw["revoked"].items()}
        return int(raw["crl_number"]), revoked
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(
            f"{path} is corrupt: {e}", advice="restore it from the CA's backup"
        ) from e


def _save_state_and_crl(ca: _Ca, *, crl_number: int, revoked: dict[int, dt.datetime]) -> None:
    state = {
        "crl_number": crl_number,
        "revoked": {f"{s:x}": t.isoformat() for s, t in sorted(revoked.items())},
    }
    _write(ca.directory / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    crl = builder.sign(ca.key, hashes.SHA256())
    _write(ca.directory / CRL_FILE, crl.public_bytes(serialization.Encoding.PEM))


# --- signing keys and certificate inspection -------------------------------------------


def generate_signing_key(path: Path, *, force: bool = False) -> str:
    """Write a new Ed25519 record-signing key (PKCS8 PEM, 0600); return its public hex."""
    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists",
            advice="records signed with it would no longer verify; pick another path",
        )
    key = ed25519.Ed25519PrivateKey.generate()
    _make_dir(path.parent, private=False)
    _write(path, _private_pem(key), private=True)
    return signing_public_key_hex(key.public_key())


def possession_proof(signing_key_path: Path, member_id: str) -> tuple[str, bytes]:
    """The member's proof that it holds the key in ``signing_key_path``, made for
    ``member_id`` (member-record.v2): ``(public key hex, 64-byte proof)``."""
    mid = parse_member_id(member_id)
    try:
        key = load_signing_key(Path(signing_key_path))
    except (GatewayError, OSError) as e:
        raise ConfigError(
            f"cannot use {signing_key_path} as a signing key: {e}", advice=_SIGNING_KEY_ADVICE
        ) from e
    return key.public_key().raw.hex(), prove_possession(key, str(mid))


def signing_public_key_hex(key: ed25519.Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def write_public_key(private_key_path: Path, out_path: Path) -> str:
    """Write the SubjectPublicKeyInfo PEM of an Ed25519 signing key; return its hex."""
    data = _read(Path(private_key_path), "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"{private_key_path} is not an unencrypted PEM key", advice=_SIGNING_KEY_ADVICE
        ) from e
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{private_key_path} is not an Ed25519 key", advice=_SIGNING_KEY_ADVICE)
    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write(Path(out_path), pem)
    return signing_public_key_hex(public)


def read_member_id(cert_pem: bytes) -> str:
    """The single URI SAN of a certificate; ConfigError when there are none or several."""
    cert = _load_cert(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if len(uris) != 1:
        raise ConfigError(
            f"the certificate has {len(uris)} URI SANs, expected exactly one member id",
            advice="use a certificate issued by `alliance-gateway certs issue`",
        )
    return uris[0]


def certificate_serial(cert_pem: bytes) -> int:
    return _load_cert(cert_pem).serial_number


def certificate_not_after(cert_pem: bytes) -> dt.datetime:
    return _load_cert(cert_pem).not_valid_after_utc


# --- helpers ---------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _random_serial() -> int:
    serial = 0
    while serial == 0:
        serial = secrets.randbits(128)
    return serial


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None:
        raise ConfigError(f"{what} must carry a timezone", advice="use datetime.now(UTC)")
    return value.astimezone(dt.UTC)


def _check_trust_domain(trust_domain: str) -> None:
    try:
        validate_trust_domain(trust_domain, field="trust_domain")
    except RecordError as e:
        raise ConfigError(
            str(e), advice="use 1-255 lowercase letters, digits, '.', '-' or '_'"
        ) from e


def _check_days(days: int) -> None:
    if days < 1:
        raise ConfigError(f"validity of {days} days", advice="ask for at least one day")


def _check_dns_name(name: str) -> str:
    lowered = name.lower()
    if len(lowered) > 253 or not all(_DNS_LABEL_RE.fullmatch(p) for p in lowered.split(".")):
        raise ConfigError(f"bad DNS name {name!r}", advice="use a host name such as localhost")
    return lowered


def _check_ip(address: str | IpAddress) -> IpAddress:
    if not isinstance(address, str):
        return address
    try:
        return ipaddress.ip_address(address)
    except ValueError as e:
        raise ConfigError(f"bad IP address {address!r}", advice="e.g. 127.0.0.1 or ::1") from e


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise ConfigError("not a PEM certificate", advice="pass a .pem certificate file") from e


def _load_ca(directory: Path) -> _Ca:
    cert = _load_cert(_read(directory / CA_CERT_FILE, "CA certificate"))
    try:
        key = serialization.load_pem_private_key(
            _read(directory / CA_KEY_FILE, "CA key"), password=None
        )
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"{directory / CA_KEY_FILE} is not an unencrypted PEM key",
            advice="restore the CA directory from its backup",
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise ConfigError(
            f"{directory / CA_KEY_FILE} does not match {directory / CA_CERT_FILE}",
            advice="restore the CA directory from its backup",
        )
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    trust_domain = orgs[0].value if orgs else ""
    try:
        if not isinstance(trust_domain, str):
            raise RecordError("the organization attribute is not text")
        validate_trust_domain(trust_domain)
    except RecordError as e:
        raise ConfigError(
            f"{directory / CA_CERT_FILE} names no trust domain",
            advice="use a CA made by `alliance-gateway certs init-ca`",
        ) from e
    return _Ca(cert=cert, key=key, trust_domain=trust_domain, directory=directory)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError(f"{what} {path} not found", advice=_FILE_ADVICE) from e
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}", advice=_FILE_ADVICE) from e


def _make_dir(path: Path, *, private: bool) -> None:
    try:
        path.mkdir(mode=0o700 if private else 0o755, parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create directory {path}: {e.strerror}", advice=_FILE_ADVICE
        ) from e


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically: a temp file (created 0600 by mkstemp), then os.replace."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise ConfigError(
            f"cannot write in {path.parent}: {e.strerror}", advice=_FILE_ADVICE
        ) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if not private:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {e.strerror}", advice=_FILE_ADVICE) from e
