"""Who may sign: the member directory as the gateway uses it to verify envelopes.

Member records are folded by ``gateway.core.fold.MemberDirectory`` (current record per
member at a time, one owner per key); this adds the trust anchors (each regional
gateway's own key, configured out of band) and the clock. Thread-safe: the sequencer
updates it while RPC threads read it.

Signatures are checked against the keys of the record's **issuer** (docs/PROTOCOL.md
§2.2): the caller reads the claimed issuer from the parsed payload, and any signature
of the envelope that verifies under one of that member's keys suffices. Other members'
signatures beside it are neither needed nor credited; the ``keyid`` only chooses which
of the issuer's keys is tried first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from gateway.codec import decode_statement
from gateway.core import dsse
from gateway.core.crypto import VerifyingKey
from gateway.core.fold import MemberDirectory
from gateway.core.statements import MemberRecord, MemberStatus
from gateway.errors import PermissionError, VerificationError
from gateway.service.ledger import Clock, utc_now


class Directory:
    def __init__(self, anchors: Mapping[str, VerifyingKey], *, clock: Clock = utc_now) -> None:
        """``anchors``: gateway member id -> its configured key (ours and our peers')."""
        self._anchors = dict(anchors)
        self._anchor_owners = {key.raw: member for member, key in self._anchors.items()}
        self._clock = clock
        self._lock = threading.Lock()
        self._fold = MemberDirectory(self._anchor_owners)

    def reload(self, records: Iterable[tuple[str, str, bytes]]) -> None:
        """Replace the directory by the fold of stored member records
        ``(record_id, payload_type, payload)``."""
        fold = MemberDirectory(self._anchor_owners)
        for record_id, payload_type, payload in records:
            statement = decode_statement(payload_type, payload)
            assert isinstance(statement, MemberRecord)
            fold.apply(record_id, statement)
        with self._lock:
            self._fold = fold

    def apply(self, updates: Sequence[tuple[str, MemberRecord]]) -> None:
        with self._lock:
            for record_id, record in updates:
                self._fold.apply(record_id, record)

    def is_anchor(self, member_id: str) -> bool:
        """Is ``member_id`` a configured gateway (ours or a peer's)?"""
        return member_id in self._anchors

    def members(self) -> list[MemberRecord]:
        """Current member records, now."""
        now = self._clock()
        with self._lock:
            return list(self._fold.members(now))

    def member(self, member_id: str) -> MemberRecord | None:
        """The member's current record, now (a record dated later is not in force yet)."""
        now = self._clock()
        with self._lock:
            return self._fold.get(member_id, now)

    def owner(self, public_key: bytes) -> str | None:
        """The member a raw public key belongs to, if any (docs/PROTOCOL.md §3)."""
        with self._lock:
            return self._fold.owner(public_key)

    def require_active(self, member_id: str) -> MemberRecord | None:
        """The caller's member record; PermissionError when unregistered or suspended.

        Gateways named as anchors need no member record to call in.
        """
        record = self.member(member_id)
        if record is None:
            if member_id in self._anchors:
                return None
            raise PermissionError(
                f"{member_id} is not a registered member of this alliance",
                advice="ask the gateway operator to register you (alliance-gateway members add)",
                reason="not-registered",
            )
        if record.status != MemberStatus.ACTIVE:
            raise PermissionError(
                f"{member_id} is suspended",
                advice="ask the gateway operator why; records are refused until reactivation",
                reason="member-suspended",
            )
        return record

    def keys_at(self, member_id: str, at: datetime) -> list[VerifyingKey]:
        """Keys ``member_id`` may sign with at ``at``, plus its anchor key if it has one."""
        with self._lock:
            raw = self._fold.keys_valid_at(member_id, at)
        return self._with_anchor(member_id, raw)

    def keys_ever(
        self, member_id: str, extra: Iterable[tuple[str, MemberRecord]] = ()
    ) -> list[VerifyingKey]:
        """Every key any record of ``member_id`` lists and it owns (also counting the
        ``extra`` records not folded in yet), plus its anchor key."""
        with self._lock:
            raw = self._fold.keys_ever(member_id, extra)
        return self._with_anchor(member_id, raw)

    def _with_anchor(self, member_id: str, raw: Sequence[bytes]) -> list[VerifyingKey]:
        keys = [VerifyingKey.from_raw(k) for k in raw]
        anchor = self._anchors.get(member_id)
        if anchor is not None and anchor not in keys:
            keys.append(anchor)
        return keys


def verify_issuer(env: dsse.Envelope, issuer: str, keys: Sequence[VerifyingKey]) -> None:
    """VerificationError unless a signature of ``env`` verifies under one of ``keys``,
    the keys registered for ``issuer``."""
    if not keys:
        raise VerificationError(
            f"{issuer} has no registered signing key that is valid",
            advice="sign with a key registered for the issuer (alliance-gateway members)",
        )
    try:
        dsse.verify(env, keys)
    except VerificationError as e:
        raise VerificationError(f"issuer {issuer}: {e}") from e
