"""The crypto boundary: Ed25519 only, VerificationError for bad signatures and key types."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from gateway.core.crypto import (
    SigningKey,
    VerifyingKey,
    load_signing_key,
    load_verifying_key,
    write_private_key,
)
from gateway.errors import RecordError, VerificationError

# RFC 8032 §7.1, TEST 1
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8032_vector() -> None:
    key = SigningKey.from_raw(RFC8032_SEED)
    assert key.public_key().raw == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIG
    VerifyingKey.from_raw(RFC8032_PUBLIC).verify(RFC8032_SIG, b"")


def test_keyid_is_hex_sha256_of_raw_key() -> None:
    key = VerifyingKey.from_raw(RFC8032_PUBLIC)
    assert key.keyid == hashlib.sha256(RFC8032_PUBLIC).hexdigest()
    assert key.keyid == key.keyid.lower() and len(key.keyid) == 64


def test_sign_and_verify_round_trip() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"payload")
    assert len(sig) == 64
    key.public_key().verify(sig, b"payload")


def test_bad_signature_raises_verification_error_from_invalid_signature() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"payload")
    with pytest.raises(VerificationError) as info:
        key.public_key().verify(sig, b"payloaD")
    assert isinstance(info.value.__cause__, InvalidSignature)
    with pytest.raises(VerificationError):
        SigningKey.generate().public_key().verify(sig, b"payload")


@pytest.mark.parametrize("length", [0, 63, 65])
def test_wrong_signature_length_is_a_verification_error(length: int) -> None:
    with pytest.raises(VerificationError, match="64 bytes"):
        SigningKey.generate().public_key().verify(b"\x00" * length, b"x")


@pytest.mark.parametrize("length", [0, 31, 33])
def test_raw_public_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(RecordError, match="32 bytes"):
        VerifyingKey.from_raw(b"\x01" * length)
    with pytest.raises(RecordError, match="32 bytes"):
        SigningKey.from_raw(b"\x01" * length)


def test_pem_round_trips() -> None:
    key = SigningKey.generate()
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SigningKey.from_pem(pem) == key
    public = key.public_key()
    assert VerifyingKey.from_pem(public.to_pem()) == public
    assert VerifyingKey.from_pem(pem) == public


def test_equality_and_hashing_by_raw_bytes() -> None:
    a = VerifyingKey.from_raw(RFC8032_PUBLIC)
    b = VerifyingKey.from_raw(bytes(RFC8032_PUBLIC))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != SigningKey.generate().public_key()
    assert SigningKey.from_raw(RFC8032_SEED) == SigningKey.from_raw(RFC8032_SEED)
    assert SigningKey.from_raw(RFC8032_SEED) != SigningKey.generate()
    assert RFC8032_SEED.hex() not in repr(SigningKey.from_raw(RFC8032_SEED))


def _pem_private(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey,
) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ECDSA secp256r1"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA-2048"),
        (ed448.Ed448PrivateKey.generate, "Ed448"),
    ],
)
def test_other_key_types_are_refused_by_name(make: object, name: str) -> None:
    key = make()  # type: ignore[operator]
    with pytest.raises(VerificationError, match=f"{name}.*only Ed25519"):
        SigningKey.from_pem(_pem_private(key))
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(VerificationError, match=f"{name}.*only Ed25519"):
        VerifyingKey.from_pem(public_pem)


def test_garbage_and_encrypted_pem_are_refused() -> None:
    with pytest.raises(VerificationError, match="cannot read"):
        SigningKey.from_pem(b"not a key")
    with pytest.raises(VerificationError, match="cannot read"):
        VerifyingKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    encrypted = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(VerificationError, match="cannot read"):
        SigningKey.from_pem(encrypted)


def test_write_and_load_key_files(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    path.write_bytes(b"old contents, world readable")
    path.chmod(0o644)
    key = SigningKey.generate()
    write_private_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(path) == key
    assert load_verifying_key(path) == key.public_key()

    fresh = tmp_path / "fresh.pem"
    write_private_key(str(fresh), key)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600

    public = tmp_path / "public.pem"
    public.write_bytes(key.public_key().to_pem())
    assert load_verifying_key(public) == key.public_key()
    with pytest.raises(VerificationError):
        load_signing_key(public)
