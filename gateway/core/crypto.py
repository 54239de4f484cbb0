"""The one crypto boundary: loading, writing, signing with and verifying Ed25519 keys.

Only Ed25519 is allowed (DESIGN.md §2): loading any other key type fails with a
``VerificationError`` that names the type. Verification catches only
``InvalidSignature`` and re-raises it as the project's ``VerificationError``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from typing import Final, TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import RecordError, VerificationError

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SEED_BYTES",
    "SIGNATURE_BYTES",
    "SigningKey",
    "VerifyingKey",
    "load_signing_key",
    "load_verifying_key",
    "write_private_key",
]

PUBLIC_KEY_BYTES: Final = 32
SEED_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
_MAX_PEM_BYTES: Final = 64 * 1024

StrPath: TypeAlias = str | os.PathLike[str]


def _key_type_name(key: object) -> str:
    """A readable name for a refused key, e.g. ``RSA-2048`` or ``ECDSA secp256r1``."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, dsa.DSAPrivateKey | dsa.DSAPublicKey):
        return f"DSA-{key.key_size}"
    if isinstance(key, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, x25519.X25519PrivateKey | x25519.X25519PublicKey):
        return "X25519"
    if isinstance(key, x448.X448PrivateKey | x448.X448PublicKey):
        return "X448"
    return type(key).__name__


class VerifyingKey:
    """An Ed25519 public key. Equal and hashable by its raw 32 bytes."""

    __slots__ = ("_key", "_keyid", "_raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        if not isinstance(key, Ed25519PublicKey):
            raise VerificationError(
                f"unsupported public key type {_key_type_name(key)}: only Ed25519 is allowed"
            )
        self._key = key
        self._raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._keyid = hashlib.sha256(self._raw).hexdigest()

    @classmethod
    def from_raw(cls, data: bytes) -> VerifyingKey:
        if len(data) != PUBLIC_KEY_BYTES:
            raise RecordError(
                f"Ed25519 public key must be {PUBLIC_KEY_BYTES} bytes, got {len(data)}"
            )
        return _key_from_raw(bytes(data))

    @classmethod
    def from_pem(cls, data: bytes) -> VerifyingKey:
        """Load a SubjectPublicKeyInfo PEM; a private key PEM is accepted too."""
        if len(data) > _MAX_PEM_BYTES:
            raise VerificationError(f"PEM key file larger than {_MAX_PEM_BYTES} bytes")
        if b"PRIVATE KEY-----" in data:
            return SigningKey.from_pem(data).public_key()
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise VerificationError(f"cannot read PEM public key: {e}") from e
        if not isinstance(key, Ed25519PublicKey):
            raise VerificationError(
                f"unsupported public key type {_key_type_name(key)}: only Ed25519 is allowed"
            )
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def keyid(self) -> str:
        """Lowercase hex SHA-256 of the raw public key (the DSSE keyid hint)."""
        return self._keyid

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise ``VerificationError`` unless ``signature`` is this key's over ``data``."""
        if len(signature) != SIGNATURE_BYTES:
            raise VerificationError(
                f"Ed25519 signature must be {SIGNATURE_BYTES} bytes, got {len(signature)}"
            )
        try:
            self._key.verify(bytes(signature), bytes(data))
        except InvalidSignature as e:
            raise VerificationError(f"signature does not verify with key {self.keyid[:16]}…") from e

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyingKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash((VerifyingKey, self._raw))

    def __repr__(self) -> str:
        return f"VerifyingKey(keyid={self.keyid[:16]}…)"


def _load_raw_key(raw: bytes) -> VerifyingKey:
    try:
        return VerifyingKey(Ed25519PublicKey.from_public_bytes(raw))
    except ValueError as e:
        raise RecordError(f"not a valid Ed25519 public key: {e}") from e


# Every verification looks up its signer's registered keys as raw bytes; the loaded key
# is immutable, so each is loaded once (bounded: keys come from member records). Cached
# by assignment, not by decorator, so that mutation testing reaches the function
# (docs/TESTING.md, "Decorated functions are not mutated").
_key_from_raw = functools.lru_cache(maxsize=4096)(_load_raw_key)


class SigningKey:
    """An Ed25519 private key. Never printed; equal by its raw seed (constant time)."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        if not isinstance(key, Ed25519PrivateKey):
            raise VerificationError(
                f"unsupported private key type {_key_type_name(key)}: only Ed25519 is allowed"
            )
        self._key = key
        self._public = VerifyingKey(key.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, seed: bytes) -> SigningKey:
        """Build from the 32-byte RFC 8032 seed."""
        if len(seed) != SEED_BYTES:
            raise RecordError(
                f"Ed25519 private key seed must be {SEED_BYTES} bytes, got {len(seed)}"
            )
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM private key."""
        if len(data) > _MAX_PEM_BYTES:
            raise VerificationError(f"PEM key file larger than {_MAX_PEM_BYTES} bytes")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError as e:  # encrypted PEM and no password
            raise VerificationError(f"cannot read PEM private key: {e}") from e
        except (ValueError, UnsupportedAlgorithm) as e:
            raise VerificationError(f"cannot read PEM private key: {e}") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise VerificationError(
                f"unsupported private key type {_key_type_name(key)}: only Ed25519 is allowed"
            )
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def _seed(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def public_key(self) -> VerifyingKey:
        return self._public

    def derive_secret(self, info: bytes) -> bytes:
        """A 32-byte secret for another purpose, named by ``info``: HKDF-SHA256 (RFC 5869)
        over the seed, no salt. It never signs, and reveals nothing of the seed."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._seed())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(bytes(data))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return hmac.compare_digest(self._seed(), other._seed())

    def __hash__(self) -> int:
        return hash((SigningKey, self._public.raw))

    def __repr__(self) -> str:
        return f"SigningKey(public keyid={self._public.keyid[:16]}…)"


def load_signing_key(path: StrPath) -> SigningKey:
    """Read an Ed25519 PKCS#8 PEM private key file. ``OSError`` propagates."""
    with open(path, "rb") as f:
        data = f.read(_MAX_PEM_BYTES + 1)
    return SigningKey.from_pem(data)


def load_verifying_key(path: StrPath) -> VerifyingKey:
    """Read an Ed25519 public key PEM file (or the public half of a private key file)."""
    with open(path, "rb") as f:
        data = f.read(_MAX_PEM_BYTES + 1)
    return VerifyingKey.from_pem(data)


def write_private_key(path: StrPath, key: SigningKey) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM, readable by the owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the file may have existed with a wider mode
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(key.to_pem())
    finally:
        os.close(fd)
