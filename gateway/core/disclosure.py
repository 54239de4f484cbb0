"""Salted commitments and disclosures: the bytes of redactable records (revision 4).

A redactable statement (listing.v2, status-change.v2, sanction-confirmation.v2,
government-measure.v2) does not sign the fields that identify its subject or carry
free text. It signs one **commitment** per field group instead,

    digest = SHA-256("alliance.v1.disclosure" LF || group || salt || value)

(``group`` one byte, ``salt`` exactly 32 bytes no one else can predict: derived from
the signer's key by ``keyed_salt``, or random), and the group's values travel
beside the envelope as a **disclosure** ``(group, salt, value)``: ``value`` is the
statement's own protobuf message, serialized, holding only that group's fields. A
verifier hashes the disclosure exactly as received (bytes are final, as for payloads)
and compares with the signed digest; merging the value into the payload's message
(protobuf concatenation) gives the statement in the clear. Erasing a record's
disclosures leaves its payload, its log leaf and every proof unchanged.

docs/PROTOCOL.md, section 3.1, has the byte layout with a worked example.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gateway.errors import RecordError

DOMAIN = b"alliance.v1.disclosure\n"
SALT_BYTES = 32


class Group(enum.IntEnum):
    """The field groups, each committed separately (``alliance.v1.DisclosureGroup``)."""

    SUBJECT = 1  # credit code or person token, name: what a public feed may reveal
    TEXT = 2  # references, summaries, reasons, notes
    STORES = 3  # the seller's stores on member platforms


_GROUPS = frozenset(int(g) for g in Group)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One group's values with their salt, as they travel beside an envelope."""

    group: Group
    salt: bytes
    value: bytes

    @property
    def digest(self) -> bytes:
        return commitment(self.group, self.salt, self.value)


def commitment(group: int, salt: bytes, value: bytes) -> bytes:
    """SHA-256(DOMAIN || group byte || salt || value): what the statement signs."""
    if group not in _GROUPS:
        raise RecordError(f"disclosure.group: {group} is not a group")
    if len(salt) != SALT_BYTES:
        raise RecordError(f"disclosure.salt: must be {SALT_BYTES} bytes, got {len(salt)}")
    return hashlib.sha256(DOMAIN + bytes([group]) + salt + value).digest()


# Chooses a group's salt: given the group and the statement's clear bytes (its whole
# message, serialized before the groups are moved out), 32 bytes.
Salter = Callable[[Group, bytes], bytes]


def random_salt(group: Group, clear: bytes) -> bytes:
    """A fresh random salt (what members use)."""
    return os.urandom(SALT_BYTES)


def keyed_salt(sign: Callable[[bytes], bytes]) -> Salter:
    """Salts derived from a deterministic signature (Ed25519) over the statement: a
    gateway that signs the same statement twice, or two replicas of one gateway
    identity, produce the same bytes and record id, and no one without the key can
    guess a salt."""

    def salt(group: Group, clear: bytes) -> bytes:
        return hashlib.sha256(sign(DOMAIN + b"salt\n" + bytes([group]) + clear)).digest()

    return salt


def disclose(
    values: Mapping[Group, bytes], clear: bytes, salt: Salter = random_salt
) -> tuple[Disclosure, ...]:
    """A disclosure per group (in group order), each with its own salt."""
    out = []
    for g in sorted(values):
        s = salt(g, clear)
        if len(s) != SALT_BYTES:
            raise RecordError(f"disclosure.salt: must be {SALT_BYTES} bytes, got {len(s)}")
        out.append(Disclosure(g, s, values[g]))
    return tuple(out)


def check_disclosures(
    committed: Mapping[Group, bytes],
    disclosures: Iterable[Disclosure],
    where: str,
    *,
    partial: bool,
) -> dict[Group, bytes]:
    """The disclosed values by group, once each disclosure matches its commitment.

    Either every committed group is disclosed exactly once, or none is (the record's
    disclosures were erased or withheld: an empty result); ``partial`` admits a subset
    (the public feed discloses no store references). Anything else, a digest that does
    not match or a group the statement does not commit to, is refused.
    """
    values: dict[Group, bytes] = {}
    for d in disclosures:
        if d.group not in committed:
            raise RecordError(f"{where}.disclosures: group {int(d.group)} is not committed")
        if d.group in values:
            raise RecordError(f"{where}.disclosures: group {d.group.name} disclosed twice")
        if not hmac.compare_digest(d.digest, committed[d.group]):
            raise RecordError(
                f"{where}.disclosures: the {d.group.name} disclosure does not match its commitment",
                reason="disclosure-mismatch",
            )
        values[d.group] = d.value
    if values and len(values) != len(committed) and not partial:
        missing = ", ".join(g.name for g in sorted(set(committed) - set(values)))
        raise RecordError(f"{where}.disclosures: missing {missing} (disclose every group or none)")
    return values
