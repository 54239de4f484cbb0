"""Key handling edges found by mutation testing (docs/TESTING.md): each test names what
it stops."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed448, x448, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.core import crypto
from gateway.core.crypto import (
    SigningKey,
    VerifyingKey,
    load_signing_key,
    load_verifying_key,
    write_private_key,
)
from gateway.errors import VerificationError

SEED = bytes(range(32))


@pytest.mark.parametrize(
    ("key", "name"),
    [
        (ed448.Ed448PrivateKey.generate().public_key(), "Ed448"),
        (x25519.X25519PrivateKey.generate().public_key(), "X25519"),
        (x448.X448PrivateKey.generate().public_key(), "X448"),
        (object(), "object"),
    ],
)
def test_a_foreign_key_type_is_refused_by_its_name(key: object, name: str) -> None:
    """An operator who configured the wrong kind of key is told which kind it is."""
    with pytest.raises(VerificationError) as caught:
        VerifyingKey(key)  # type: ignore[arg-type]
    assert str(caught.value) == f"unsupported public key type {name}: only Ed25519 is allowed"


@pytest.mark.parametrize("loader", [load_signing_key, load_verifying_key])
def test_an_endless_key_file_is_refused_without_reading_it_all(loader: object) -> None:
    """A key path pointing at a device (or a huge file) must not be read to its end:
    the read is bounded and the file refused."""
    assert callable(loader)
    with pytest.raises(VerificationError) as caught:
        loader("/dev/zero")
    assert str(caught.value) == f"PEM key file larger than {crypto._MAX_PEM_BYTES} bytes"


@pytest.mark.parametrize("loader", [load_signing_key, load_verifying_key])
def test_a_key_file_one_byte_over_the_limit_is_refused_as_too_large(
    loader: object, tmp_path: Path
) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"-" * (crypto._MAX_PEM_BYTES + 1))
    assert callable(loader)
    with pytest.raises(VerificationError, match=r"^PEM key file larger than 65536 bytes$"):
        loader(path)


def test_a_pem_exactly_at_the_limit_is_parsed_not_refused() -> None:
    """At the limit the PEM is read (and here fails as PEM), not refused for its size."""
    data = b"x" * crypto._MAX_PEM_BYTES
    with pytest.raises(VerificationError, match=r"^cannot read PEM private key"):
        SigningKey.from_pem(data)
    with pytest.raises(VerificationError, match=r"^cannot read PEM public key"):
        VerifyingKey.from_pem(data)


def test_a_new_private_key_file_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is created 0600, not widened and narrowed afterwards: a process that
    opened it in between would keep reading the key. Checked without the later chmod."""
    monkeypatch.setattr(os, "fchmod", lambda fd, mode: None)
    old = os.umask(0)
    try:
        path = tmp_path / "signing-key.pem"
        write_private_key(path, SigningKey.generate())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_derived_secrets_are_hkdf_per_purpose_and_per_key() -> None:
    """A secret derived for one purpose (the access-log digest) is neither the key nor
    another purpose's secret, and another gateway's key derives another one."""
    key = SigningKey.from_raw(SEED)
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"a").derive(SEED)
    assert key.derive_secret(b"a") == expected
    assert key.derive_secret(b"b") != expected
    assert SigningKey.generate().derive_secret(b"a") != expected


def test_reprs_show_the_public_keyid_prefix_only() -> None:
    key = SigningKey.generate()
    keyid = key.public_key().keyid
    assert repr(key) == f"SigningKey(public keyid={keyid[:16]}…)"
    assert repr(key.public_key()) == f"VerifyingKey(keyid={keyid[:16]}…)"


def test_equal_keys_are_one_set_member() -> None:
    key = SigningKey.generate()
    same = SigningKey.from_pem(key.to_pem())
    assert len({key, same, SigningKey.generate()}) == 2
    assert hash(key) == hash(same)


def test_a_foreign_private_key_is_refused_by_its_name() -> None:
    """A signing key of the wrong kind (an Ed448 key where Ed25519 is required) is
    refused, naming the kind, before it could sign anything no peer would verify."""
    with pytest.raises(VerificationError) as caught:
        SigningKey(ed448.Ed448PrivateKey.generate())  # type: ignore[arg-type]
    assert str(caught.value) == "unsupported private key type Ed448: only Ed25519 is allowed"


def test_a_bad_signature_names_the_key_it_was_checked_with() -> None:
    """The refusal names the key (its keyid's first 16 hex digits), so an operator can
    tell a forged signature from a signer using another key than the one registered."""
    key = SigningKey.from_raw(SEED)
    signature = bytearray(key.sign(b"record"))
    signature[0] ^= 1
    with pytest.raises(VerificationError) as caught:
        key.public_key().verify(bytes(signature), b"record")
    assert str(caught.value) == (
        f"signature does not verify with key {key.public_key().keyid[:16]}\u2026"
    )
