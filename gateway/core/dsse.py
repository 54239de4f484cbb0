"""DSSE v1 envelopes (secure-systems-lab/dsse, protocol v1.0.2) with Ed25519 signatures.

The signature covers ``PAE(payload_type, payload)``, never a re-serialized message;
the record id is the SHA-256 of the same PAE bytes, so it does not change when
signatures are added. The ``keyid`` of a signature is an unauthenticated hint.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gateway.core.crypto import SIGNATURE_BYTES, SigningKey, VerifyingKey
from gateway.core.disclosure import Disclosure
from gateway.errors import RecordError, VerificationError

__all__ = [
    "MAX_KEYID_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MAX_PAYLOAD_TYPE_BYTES",
    "MAX_SIGNATURES",
    "MAX_SIGNATURE_BYTES",
    "Envelope",
    "Signature",
    "add_signature",
    "pae",
    "record_id",
    "sign",
    "verify",
]

MAX_PAYLOAD_BYTES: Final = 1024 * 1024
MAX_PAYLOAD_TYPE_BYTES: Final = 128
MAX_SIGNATURES: Final = 16
# One per field group; a few more are refused before any is hashed.
MAX_DISCLOSURES: Final = 3
MAX_KEYID_CHARS: Final = 128
# Ed25519 signatures are 64 bytes (checked at verify time); larger blobs are refused early.
MAX_SIGNATURE_BYTES: Final = 1024

_PAE_PREFIX: Final = b"DSSEv1"


def _check_payload_type(payload_type: str) -> None:
    if not payload_type:
        raise RecordError("envelope payload_type is empty")
    if len(payload_type) > MAX_PAYLOAD_TYPE_BYTES:
        raise RecordError(
            f"envelope payload_type is {len(payload_type)} characters, "
            f"at most {MAX_PAYLOAD_TYPE_BYTES} allowed"
        )
    bad = next((c for c in payload_type if not " " <= c <= "~"), None)
    if bad is not None:
        raise RecordError(
            f"envelope payload_type contains {bad!r}: only printable ASCII is allowed"
        )


def _check_payload(payload: bytes) -> None:
    if not isinstance(payload, bytes):
        raise RecordError(f"envelope payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise RecordError(
            f"envelope payload is {len(payload)} bytes, at most {MAX_PAYLOAD_BYTES} allowed"
        )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding.

    ``"DSSEv1" SP len(type) SP type SP len(body) SP body`` with decimal ASCII lengths
    of the UTF-8 bytes.
    """
    type_bytes = payload_type.encode("utf-8")
    return b" ".join(
        (
            _PAE_PREFIX,
            str(len(type_bytes)).encode("ascii"),
            type_bytes,
            str(len(payload)).encode("ascii"),
            bytes(payload),
        )
    )


def record_id(payload_type: str, payload: bytes) -> str:
    """Lowercase hex SHA-256 of the PAE bytes."""
    return hashlib.sha256(pae(payload_type, payload)).hexdigest()


@dataclass(frozen=True, slots=True)
class Signature:
    sig: bytes
    keyid: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.sig, bytes):
            raise RecordError(f"signature must be bytes, not {type(self.sig).__name__}")
        if len(self.sig) > MAX_SIGNATURE_BYTES:
            raise RecordError(
                f"signature is {len(self.sig)} bytes, at most {MAX_SIGNATURE_BYTES} allowed"
            )
        if len(self.keyid) > MAX_KEYID_CHARS:
            raise RecordError(
                f"signature keyid is {len(self.keyid)} characters, "
                f"at most {MAX_KEYID_CHARS} allowed"
            )


@dataclass(frozen=True, slots=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...] = ()
    # Protocol revision 4: a redactable record's disclosures, beside the envelope:
    # covered by no signature and no part of the record id (gateway.core.disclosure).
    disclosures: tuple[Disclosure, ...] = ()
    # The PAE bytes and the record id, computed on first use: a submission verifies the
    # signature over them, names the record by them and appends them to the log.
    _pae: bytes | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _record_id: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_payload(self.payload)
        _check_payload_type(self.payload_type)
        if not isinstance(self.signatures, tuple):
            raise RecordError("envelope signatures must be a tuple")
        if not isinstance(self.disclosures, tuple) or len(self.disclosures) > MAX_DISCLOSURES:
            raise RecordError(f"envelope: at most {MAX_DISCLOSURES} disclosures, as a tuple")
        if len(self.signatures) > MAX_SIGNATURES:
            raise RecordError(
                f"envelope has {len(self.signatures)} signatures, at most {MAX_SIGNATURES} allowed"
            )

    def pae(self) -> bytes:
        encoded = self._pae
        if encoded is None:
            encoded = pae(self.payload_type, self.payload)
            object.__setattr__(self, "_pae", encoded)
        return encoded

    @property
    def record_id(self) -> str:
        return _record_id(self)


def _signature_by(key: SigningKey, data: bytes) -> Signature:
    return Signature(sig=key.sign(data), keyid=key.public_key().keyid)


def sign(payload_type: str, payload: bytes, key: SigningKey) -> Envelope:
    """A new envelope carrying ``key``'s signature over ``PAE(payload_type, payload)``."""
    _check_payload(payload)
    _check_payload_type(payload_type)
    signature = _signature_by(key, pae(payload_type, payload))
    return Envelope(payload=payload, payload_type=payload_type, signatures=(signature,))


def with_disclosures(env: Envelope, disclosures: tuple[Disclosure, ...]) -> Envelope:
    """``env`` carrying ``disclosures`` (the signatures and the record id are unchanged)."""
    return dataclasses.replace(env, disclosures=disclosures)


def add_signature(env: Envelope, key: SigningKey) -> Envelope:
    """``env`` with one more signature by ``key``; unchanged if it already carries it.

    Ed25519 is deterministic, so signing twice yields the same signature.
    """
    signature = _signature_by(key, env.pae())
    if signature in env.signatures:
        return env
    return Envelope(
        payload=env.payload,
        payload_type=env.payload_type,
        signatures=(*env.signatures, signature),
        disclosures=env.disclosures,
    )


def verify(env: Envelope, candidates: Iterable[VerifyingKey]) -> VerifyingKey:
    """Return the first trusted key that signed ``env``; else raise ``VerificationError``.

    Signatures are tried in order. A signature's keyid selects the candidate tried
    first, but it is only a hint: the signature is then tried against every other
    candidate, so a missing or wrong keyid does not hide a valid signature.
    """
    keys = list(dict.fromkeys(candidates))
    if not env.signatures:
        raise VerificationError("envelope has no signatures")
    if not keys:
        raise VerificationError("no candidate keys to verify the envelope with")
    by_keyid = {key.keyid: key for key in keys}
    message = env.pae()
    wrong_length: list[str] = []
    for position, signature in enumerate(env.signatures):
        if len(signature.sig) != SIGNATURE_BYTES:
            wrong_length.append(f"signature {position} has {len(signature.sig)} bytes")
            continue
        hinted = by_keyid.get(signature.keyid)
        ordered = keys if hinted is None else [hinted, *(k for k in keys if k is not hinted)]
        for key in ordered:
            try:
                key.verify(signature.sig, message)
            except VerificationError:
                continue
            return key
    if len(wrong_length) == len(env.signatures):
        raise VerificationError(
            f"no signature of the Ed25519 length ({SIGNATURE_BYTES} bytes): "
            + "; ".join(wrong_length)
        )
    detail = f" ({'; '.join(wrong_length)})" if wrong_length else ""
    raise VerificationError(
        f"no valid signature by a registered key: {len(env.signatures)} signature(s) "
        f"checked against {len(keys)} candidate key(s){detail}"
    )


def _record_id(env: Envelope) -> str:
    """``Envelope.record_id``: SHA-256 of the PAE, lowercase hex, computed once. (A
    function of its own because mutmut does not mutate decorated ones: docs/TESTING.md.)"""
    rid = env._record_id
    if rid is None:
        rid = hashlib.sha256(env.pae()).hexdigest()
        object.__setattr__(env, "_record_id", rid)
    return rid
