"""DSSE v1: the PAE vector, record ids, signing, and every way verification must fail."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from gateway.core import dsse
from gateway.core.crypto import SigningKey, VerifyingKey
from gateway.core.dsse import Envelope, Signature
from gateway.errors import RecordError, VerificationError

TYPE = "http://example.com/HelloWorld"
BODY = b"hello world"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


def test_pae_spec_vector() -> None:
    assert dsse.pae(TYPE, BODY) == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert dsse.pae("t", b"") == b"DSSEv1 1 t 0 "


def test_record_id_is_sha256_of_pae_and_ignores_signatures(key: SigningKey) -> None:
    expected = hashlib.sha256(b"DSSEv1 29 http://example.com/HelloWorld 11 hello world").hexdigest()
    assert dsse.record_id(TYPE, BODY) == expected
    env = dsse.sign(TYPE, BODY, key)
    assert env.record_id == expected
    assert dsse.add_signature(env, SigningKey.generate()).record_id == expected


def test_sign_and_verify(key: SigningKey) -> None:
    env = dsse.sign(TYPE, BODY, key)
    assert env.signatures[0].keyid == key.public_key().keyid
    other = SigningKey.generate().public_key()
    assert dsse.verify(env, [other, key.public_key()]) == key.public_key()


def test_tampered_payload_fails(key: SigningKey) -> None:
    env = dataclasses.replace(dsse.sign(TYPE, BODY, key), payload=b"hello World")
    with pytest.raises(VerificationError, match="no valid signature"):
        dsse.verify(env, [key.public_key()])


def test_payload_type_swap_fails(key: SigningKey) -> None:
    env = dataclasses.replace(dsse.sign(TYPE, BODY, key), payload_type="http://example.com/Other")
    with pytest.raises(VerificationError, match="no valid signature"):
        dsse.verify(env, [key.public_key()])


def test_wrong_key_fails(key: SigningKey) -> None:
    env = dsse.sign(TYPE, BODY, key)
    with pytest.raises(VerificationError, match="registered key"):
        dsse.verify(env, [SigningKey.generate().public_key()])


def test_truncated_signature_fails(key: SigningKey) -> None:
    env = dsse.sign(TYPE, BODY, key)
    sig = env.signatures[0]
    env = dataclasses.replace(env, signatures=(Signature(sig.sig[:63], sig.keyid),))
    with pytest.raises(VerificationError, match="63 bytes"):
        dsse.verify(env, [key.public_key()])


def test_bad_signature_does_not_hide_a_good_one(key: SigningKey) -> None:
    good = dsse.sign(TYPE, BODY, key).signatures[0]
    bogus = Signature(b"\x00" * 64, good.keyid)
    env = Envelope(BODY, TYPE, (Signature(b"\x01" * 10), bogus, good))
    assert dsse.verify(env, [key.public_key()]) == key.public_key()


@pytest.mark.parametrize("hint", ["missing", "another trusted key", "garbage"])
def test_keyid_is_only_a_hint(key: SigningKey, hint: str) -> None:
    sig = dsse.sign(TYPE, BODY, key).signatures[0]
    decoy = SigningKey.generate().public_key()
    keyid = {"missing": "", "another trusted key": decoy.keyid, "garbage": "not-a-keyid"}[hint]
    env = Envelope(BODY, TYPE, (Signature(sig.sig, keyid),))
    assert dsse.verify(env, [decoy, key.public_key()]) == key.public_key()


def test_keyid_of_a_trusted_key_does_not_make_a_bad_signature_good(key: SigningKey) -> None:
    forged = Signature(SigningKey.generate().sign(dsse.pae(TYPE, BODY)), key.public_key().keyid)
    with pytest.raises(VerificationError):
        dsse.verify(Envelope(BODY, TYPE, (forged,)), [key.public_key()])


def test_no_signatures() -> None:
    with pytest.raises(VerificationError, match="no signatures"):
        dsse.verify(Envelope(BODY, TYPE), [SigningKey.generate().public_key()])


def test_no_candidates(key: SigningKey) -> None:
    with pytest.raises(VerificationError, match="no candidate keys"):
        dsse.verify(dsse.sign(TYPE, BODY, key), [])


def test_first_trusted_signer_is_returned() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    env = dsse.add_signature(dsse.sign(TYPE, BODY, a), b)
    assert len(env.signatures) == 2
    assert dsse.verify(env, [b.public_key(), a.public_key()]) == a.public_key()
    assert dsse.verify(env, [b.public_key()]) == b.public_key()


def test_add_signature_is_idempotent(key: SigningKey) -> None:
    env = dsse.sign(TYPE, BODY, key)
    assert dsse.add_signature(env, key) is env


@pytest.mark.parametrize(
    ("payload_type", "message"),
    [
        ("", "empty"),
        ("a" * 129, "at most 128"),
        ("application/x\n", "printable ASCII"),
        ("application/ü", "printable ASCII"),
    ],
)
def test_payload_type_validation(payload_type: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        Envelope(BODY, payload_type)
    with pytest.raises(RecordError, match=message):
        dsse.sign(payload_type, BODY, SigningKey.generate())


def test_size_caps() -> None:
    Envelope(BODY, "a" * dsse.MAX_PAYLOAD_TYPE_BYTES)
    with pytest.raises(RecordError, match="signatures"):
        Envelope(BODY, TYPE, tuple(Signature(b"\x00" * 64) for _ in range(17)))
    with pytest.raises(RecordError, match="payload"):
        Envelope(b"\x00" * (dsse.MAX_PAYLOAD_BYTES + 1), TYPE)
    with pytest.raises(RecordError, match="keyid"):
        Signature(b"\x00" * 64, "k" * (dsse.MAX_KEYID_CHARS + 1))
    with pytest.raises(RecordError, match="signature is"):
        Signature(b"\x00" * (dsse.MAX_SIGNATURE_BYTES + 1))


def test_duplicate_candidates_are_harmless(key: SigningKey) -> None:
    public = VerifyingKey.from_raw(key.public_key().raw)
    assert dsse.verify(dsse.sign(TYPE, BODY, key), [public, key.public_key()]) == public
