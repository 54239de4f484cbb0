"""DSSE edges found by mutation testing (docs/TESTING.md): each test names what it stops.

The limits are inclusive: a gateway that refused a record at exactly the limit while its
peers accept it would compute a different state from the same log. The messages are the
status details a member reads, so they are compared whole.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.core import dsse
from gateway.core.crypto import SigningKey, VerifyingKey
from gateway.core.disclosure import Disclosure, Group
from gateway.core.dsse import Envelope, Signature
from gateway.errors import RecordError, VerificationError

TYPE = "application/vnd.alliance.test+json"
BODY = b"{}"


def test_every_limit_admits_a_record_exactly_at_it() -> None:
    """A peer's record at the limit must not be refused here (replicas would diverge)."""
    Envelope(b"\x00" * dsse.MAX_PAYLOAD_BYTES, TYPE)
    dsse.sign(TYPE, b"\x00" * dsse.MAX_PAYLOAD_BYTES, SigningKey.generate())
    Envelope(BODY, TYPE, tuple(Signature(b"\x00" * 64) for _ in range(dsse.MAX_SIGNATURES)))
    Signature(b"\x00" * dsse.MAX_SIGNATURE_BYTES)
    Signature(b"\x00" * 64, "k" * dsse.MAX_KEYID_CHARS)


@pytest.mark.parametrize("payload_type", [" ", "~", "a b~", "!~"])
def test_payload_type_alphabet_includes_its_ends(payload_type: str) -> None:
    """Space and tilde are the ends of printable ASCII, allowed like the rest."""
    assert Envelope(BODY, payload_type).payload_type == payload_type


def _not_bytes_payload() -> object:
    return Envelope("text", TYPE)  # type: ignore[arg-type]


def _not_bytes_signature() -> object:
    return Signature("sig")  # type: ignore[arg-type]


def _list_of_signatures() -> object:
    return Envelope(BODY, TYPE, [Signature(b"\x00" * 64)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (_not_bytes_payload, RecordError, "envelope payload must be bytes, not str"),
        (_not_bytes_signature, RecordError, "signature must be bytes, not str"),
        (_list_of_signatures, RecordError, "envelope signatures must be a tuple"),
        (lambda: Envelope(BODY, ""), RecordError, "envelope payload_type is empty"),
        (
            lambda: dsse.verify(Envelope(BODY, TYPE), [SigningKey.generate().public_key()]),
            VerificationError,
            "envelope has no signatures",
        ),
        (
            lambda: dsse.verify(dsse.sign(TYPE, BODY, SigningKey.generate()), []),
            VerificationError,
            "no candidate keys to verify the envelope with",
        ),
    ],
)
def test_rejections_say_exactly_what_is_wrong(
    build: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        build()
    assert str(caught.value) == message


def test_only_malformed_signatures_are_listed_each() -> None:
    """An envelope of truncated signatures says which, not 'no valid signature'."""
    env = Envelope(BODY, TYPE, (Signature(b"\x01" * 10), Signature(b"\x02" * 63)))
    with pytest.raises(VerificationError) as caught:
        dsse.verify(env, [SigningKey.generate().public_key()])
    assert str(caught.value) == (
        "no signature of the Ed25519 length (64 bytes): "
        "signature 0 has 10 bytes; signature 1 has 63 bytes"
    )


def test_a_bad_signature_beside_malformed_ones_reports_both() -> None:
    env = Envelope(
        BODY,
        TYPE,
        (Signature(b"\x01" * 10), Signature(b"\x00" * 64), Signature(b"\x02" * 65)),
    )
    with pytest.raises(VerificationError) as caught:
        dsse.verify(env, [SigningKey.generate().public_key()])
    assert str(caught.value) == (
        "no valid signature by a registered key: 3 signature(s) checked against "
        "1 candidate key(s) (signature 0 has 10 bytes; signature 2 has 65 bytes)"
    )


def test_a_forged_signature_is_reported_without_a_length_note() -> None:
    forged = Signature(SigningKey.generate().sign(dsse.pae(TYPE, BODY)))
    with pytest.raises(VerificationError) as caught:
        dsse.verify(Envelope(BODY, TYPE, (forged,)), [SigningKey.generate().public_key()])
    assert str(caught.value) == (
        "no valid signature by a registered key: 1 signature(s) checked against 1 candidate key(s)"
    )


class _CountingKey(VerifyingKey):
    __slots__ = ("calls",)

    def __init__(self, public: VerifyingKey) -> None:
        super().__init__(Ed25519PublicKey.from_public_bytes(public.raw))
        self.calls = 0

    def verify(self, signature: bytes, data: bytes) -> None:
        self.calls += 1
        super().verify(signature, data)


def test_keyid_hint_makes_an_honest_signature_cost_one_verification() -> None:
    """A member with many registered keys: the keyid picks the right one first, so an
    honest envelope is not checked against every key (work an attacker could multiply)."""
    signer = SigningKey.generate()
    others = [_CountingKey(SigningKey.generate().public_key()) for _ in range(6)]
    mine = _CountingKey(signer.public_key())
    env = dsse.sign(TYPE, BODY, signer)
    assert dsse.verify(env, [*others, mine]) == mine
    assert mine.calls == 1
    assert sum(k.calls for k in others) == 0


def test_a_signature_added_keeps_the_disclosures_beside_the_envelope() -> None:
    """A co-signature must not strip what travels beside the signed bytes: without its
    disclosures a redactable record reads redacted, and is refused where it is
    submitted."""
    disclosures = (Disclosure(group=Group.SUBJECT, salt=bytes(32), value=b"\x0a\x03abc"),)
    env = Envelope(
        payload=b"statement", payload_type="application/vnd.example", disclosures=disclosures
    )
    first, second = SigningKey.generate(), SigningKey.generate()
    signed = dsse.add_signature(dsse.add_signature(env, first), second)
    assert signed.disclosures == disclosures
    assert len(signed.signatures) == 2
