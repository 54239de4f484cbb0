"""Proof of possession of a record-signing key (member-record.v2).

Registering a public key someone else holds would let a member block that key's owner
(or have records credited to the wrong member), so a v2 member record carries, for
every key, a signature made with that key over its member id. The distinct DSSE
payload type separates these signatures from record signatures: a possession proof is
never a valid signature of any record, and no record signature is a proof.

    possession = Ed25519-Sign(key, PAE("application/vnd.alliance.key-possession.v1",
                                       UTF-8 bytes of member_id))
"""

from __future__ import annotations

from typing import Final

from gateway.core.crypto import SIGNATURE_BYTES, SigningKey, VerifyingKey
from gateway.core.dsse import pae
from gateway.errors import RecordError, VerificationError

__all__ = [
    "KEY_POSSESSION_TYPE",
    "possession_message",
    "prove_possession",
    "verify_possession",
]

KEY_POSSESSION_TYPE: Final = "application/vnd.alliance.key-possession.v1"


def possession_message(member_id: str) -> bytes:
    """The bytes a key signs to prove that ``member_id`` holds it."""
    return pae(KEY_POSSESSION_TYPE, member_id.encode("utf-8"))


def prove_possession(key: SigningKey, member_id: str) -> bytes:
    """The 64-byte proof that the holder of ``key`` is registering it for ``member_id``."""
    return key.sign(possession_message(member_id))


def verify_possession(
    public_key: bytes, member_id: str, proof: bytes, *, field: str = "possession"
) -> None:
    """RecordError naming ``field`` unless ``proof`` is ``public_key``'s proof for ``member_id``."""
    if not isinstance(proof, bytes) or len(proof) != SIGNATURE_BYTES:
        size = len(proof) if isinstance(proof, bytes) else type(proof).__name__
        raise RecordError(
            f"{field}: must be a {SIGNATURE_BYTES}-byte Ed25519 signature, got {size}"
        )
    try:
        VerifyingKey.from_raw(public_key).verify(proof, possession_message(member_id))
    except VerificationError:
        raise RecordError(
            f"{field}: is not this key's signature over the member id {member_id}",
            advice="the member makes the proof with its private key: "
            "`alliance-gateway certs possession --key … --member-id …`",
        ) from None
