"""Who may sign: the member directory as the gateway uses it to verify envelopes.

Member records are folded by ``gateway.core.fold.MemberDirectory``; this adds the
trust anchors (each regional gateway's own key, configured out of band) and an index
from DSSE keyid hints to candidate keys. Thread-safe: the sequencer updates it while
RPC threads read it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from gateway.codec import decode_statement
from gateway.core import dsse
from gateway.core.crypto import VerifyingKey
from gateway.core.fold import MemberDirectory
from gateway.core.statements import MemberRecord, MemberStatus
from gateway.errors import PermissionError, VerificationError


class Directory:
    def __init__(self, anchors: Mapping[str, VerifyingKey]) -> None:
        """``anchors``: gateway member id -> its configured key (ours and our peers')."""
        self._anchors = dict(anchors)
        self._lock = threading.Lock()
        self._fold = MemberDirectory()
        self._by_keyid = self._anchor_index()

    def reload(self, records: Iterable[tuple[str, str, bytes]]) -> None:
        """Replace the directory by the fold of stored member records
        ``(record_id, payload_type, payload)``."""
        updates = []
        for record_id, payload_type, payload in records:
            statement = decode_statement(payload_type, payload)
            assert isinstance(statement, MemberRecord)
            updates.append((record_id, statement))
        fold = MemberDirectory()
        by_keyid = self._anchor_index()
        _fold_into(fold, by_keyid, updates)
        with self._lock:
            self._fold, self._by_keyid = fold, by_keyid

    def apply(self, updates: Sequence[tuple[str, MemberRecord]]) -> None:
        with self._lock:
            _fold_into(self._fold, self._by_keyid, updates)

    def _anchor_index(self) -> dict[str, set[str]]:
        index: dict[str, set[str]] = defaultdict(set)
        for member_id, key in self._anchors.items():
            index[key.keyid].add(member_id)
        return index

    def members(self) -> list[MemberRecord]:
        with self._lock:
            return list(self._fold.members())

    def member(self, member_id: str) -> MemberRecord | None:
        with self._lock:
            return self._fold.get(member_id)

    def region(self, member_id: str) -> str | None:
        record = self.member(member_id)
        return None if record is None else record.region_code

    def require_active(self, member_id: str) -> MemberRecord | None:
        """The caller's member record; PermissionError when suspended.

        Gateways named as anchors need no member record to call in.
        """
        record = self.member(member_id)
        if record is None:
            if member_id in self._anchors:
                return None
            raise PermissionError(
                f"{member_id} is not a registered member of this alliance",
                advice="ask the gateway operator to register you (alliance-gateway members add)",
            )
        if record.status != MemberStatus.ACTIVE:
            raise PermissionError(f"{member_id} is suspended")
        return record

    def keys_at(self, member_id: str, at: datetime | None) -> list[VerifyingKey]:
        """Keys ``member_id`` may sign with at ``at``, plus its anchor key if it has one.

        ``at=None`` (replicated records, see ``gateway.service.replication``): every key
        the member's current record lists, whatever its window or the member's status.
        """
        with self._lock:
            if at is None:
                record = self._fold.get(member_id)
                raw = [] if record is None else [k.public_key for k in record.keys]
            else:
                raw = self._fold.keys_valid_at(member_id, at)
            keys = [VerifyingKey.from_raw(k) for k in raw]
        anchor = self._anchors.get(member_id)
        if anchor is not None and anchor not in keys:
            keys.append(anchor)
        return keys

    def verify(self, env: dsse.Envelope, at: datetime | None, *, prefer: str | None = None) -> str:
        """Verify ``env`` against the keys valid at ``at``; return the signer's member id.

        Candidates are the members whose keys match a signature's keyid hint, plus
        ``prefer`` (the caller): the keyid is only a hint, never trusted on its own.
        """
        with self._lock:
            members = {m for s in env.signatures for m in self._by_keyid.get(s.keyid, ())}
        if prefer is not None:
            members.add(prefer)
        owners: dict[VerifyingKey, str] = {}
        for member_id in sorted(members):
            for key in self.keys_at(member_id, at):
                owners.setdefault(key, member_id)
        if not owners:
            raise VerificationError(
                "no registered signing key matches the envelope's signatures",
                advice="sign with a key registered for your member id (alliance-gateway members)",
            )
        key = dsse.verify(env, owners)
        return owners[key]


def _fold_into(
    fold: MemberDirectory,
    by_keyid: dict[str, set[str]],
    updates: Sequence[tuple[str, MemberRecord]],
) -> None:
    for record_id, record in updates:
        fold.apply(record_id, record)
        for key in record.keys:
            by_keyid[VerifyingKey.from_raw(key.public_key).keyid].add(record.member_id)
