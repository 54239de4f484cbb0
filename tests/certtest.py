"""Test support: certificates built by hand, the ones ``certs/pki.py`` would never issue.

A CA made by another vendor's tool (no name constraints), a client certificate with
whatever SANs a careless or subverted issuing process could put in it, a CA
certificate with the wrong key type or no trust domain. Everything else in the suite
gets its certificates from ``certs.pki`` (see gwtest.Alliance).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "Issuer",
    "Key",
    "certificate",
    "client_certificate",
    "foreign_ca",
    "key_pem",
    "load_ca",
    "pem",
]

Key = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
"""A CA's certificate and its signing key."""


def certificate(
    subject: x509.Name,
    key: Key,
    *,
    issuer: Issuer | None = None,
    sans: Sequence[x509.GeneralName] | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """``subject``'s certificate for ``key``, valid from five minutes ago for a day.

    Signed by ``issuer`` or, when None, by ``key`` itself; carrying ``extensions``
    (each with its criticality) and, unless ``sans`` is None, a SubjectAlternativeName
    of exactly ``sans`` (no such extension at all when None)."""
    issuer_name, signer = (subject, key) if issuer is None else (issuer[0].subject, issuer[1])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    # Ed25519 signs the message itself: no separate digest.
    digest = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, digest)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def foreign_ca(directory: Path, subject: x509.Name) -> Issuer:
    """A CA as another vendor's tool might make it: valid, but without the name
    constraint ``certs init-ca`` puts on alliance CAs, so TLS refuses none of its
    leaves for their SANs (the gateway must). Written as ``ca.pem`` and ``ca-key.pem``
    in ``directory``, as ``certs.pki`` lays a CA out."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(
        subject,
        key,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        ],
    )
    directory.mkdir(parents=True)
    (directory / "ca.pem").write_bytes(pem(cert))
    (directory / "ca-key.pem").write_bytes(key_pem(key))
    return cert, key


def load_ca(directory: Path) -> Issuer:
    """The CA in ``directory`` (``ca.pem``, ``ca-key.pem``), to issue what it would not."""
    cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def client_certificate(
    ca: Issuer, common_name: str, sans: Sequence[x509.GeneralName] | None, folder: Path
) -> tuple[Path, Path]:
    """A TLS client certificate ``ca`` issues with exactly ``sans`` (see
    ``certificate``), written with its key as ``cert.pem`` and ``key.pem`` in
    ``folder``; returns their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
        key,
        issuer=ca,
        sans=sans,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), False),
        ],
    )
    folder.mkdir(parents=True)
    (folder / "cert.pem").write_bytes(pem(cert))
    (folder / "key.pem").write_bytes(key_pem(key))
    return folder / "cert.pem", folder / "key.pem"
