"""Member administration: the gateway signs member records for its region.

Used by ``alliance-gateway members …`` (which appends through the same sequencer lock
as a running gateway, so both may run at once) and at start-up for the gateway's own
record.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey, VerifyingKey
from gateway.core.identifiers import MemberId
from gateway.core.statements import MemberKey, MemberRecord, MemberStatus, Role
from gateway.errors import NotFoundError, RecordError
from gateway.service.directory import Directory
from gateway.service.ledger import Accepted, Appended, Clock, Ledger, utc_now

_SMALLEST_WINDOW = timedelta(microseconds=1)


class MemberAdmin:
    def __init__(
        self,
        ledger: Ledger,
        directory: Directory,
        gateway_key: SigningKey,
        *,
        gateway_id: str,
        origin: str,
        clock: Clock = utc_now,
    ) -> None:
        self._ledger = ledger
        self._directory = directory
        self._key = gateway_key
        self._gateway_id = gateway_id
        self._origin = origin
        self._clock = clock

    def ensure_self(self, region_code: str) -> Appended | None:
        """Publish the gateway's own member record unless the current one holds its key."""
        current = self._directory.member(self._gateway_id)
        own = self._key.public_key().raw
        now = self._clock()
        if current is not None and any(
            k.public_key == own and k.valid_at(now) for k in current.keys
        ):
            return None
        return self._publish(
            MemberRecord(
                issuer=self._gateway_id,
                member_id=self._gateway_id,
                role=Role.GATEWAY,
                region_code=region_code,
                keys=(MemberKey(public_key=own, not_before=now),),
                status=MemberStatus.ACTIVE,
                issued_at=now,
                display_name="regional gateway",
            )
        )

    def add(
        self, member_id: str, region_code: str, public_key: bytes, *, display_name: str = ""
    ) -> Appended:
        member = MemberId.parse(member_id)
        if member.trust_domain != MemberId.parse(self._gateway_id).trust_domain:
            raise RecordError(
                f"member_id: {member_id} is not in this gateway's trust domain",
                advice="register members at the gateway of their own region",
            )
        VerifyingKey.from_raw(public_key)
        now = self._clock()
        return self._publish(
            MemberRecord(
                issuer=self._gateway_id,
                member_id=member_id,
                role=member.role,
                region_code=region_code,
                keys=(MemberKey(public_key=public_key, not_before=now),),
                status=MemberStatus.ACTIVE,
                issued_at=now,
                display_name=display_name,
            )
        )

    def set_status(self, member_id: str, status: MemberStatus) -> Appended:
        current = self._require(member_id)
        return self._publish(_replace(current, status=status, issued_at=self._clock()))

    def rotate_key(self, member_id: str, new_key: bytes, *, overlap: timedelta) -> Appended:
        """Add ``new_key``; every older key stops being valid after ``overlap``."""
        current = self._require(member_id)
        VerifyingKey.from_raw(new_key)
        now = self._clock()
        ends = now + overlap
        kept = tuple(
            MemberKey(
                public_key=k.public_key,
                not_before=k.not_before,
                # A window must not be empty; the smallest one a Timestamp carries (1 µs)
                # ends a key registered a moment ago at once, as asked, not a second later.
                not_after=min(k.not_after, ends)
                if k.not_after
                else max(ends, k.not_before + _SMALLEST_WINDOW),
            )
            for k in current.keys
            if k.public_key != new_key and (k.not_after is None or k.not_after > now)
        )
        keys = (*kept, MemberKey(public_key=new_key, not_before=now))
        return self._publish(_replace(current, keys=keys, issued_at=now))

    def _require(self, member_id: str) -> MemberRecord:
        current = self._directory.member(member_id)
        if current is None:
            raise NotFoundError(f"member_id: {member_id} is not registered")
        return current

    def _publish(self, record: MemberRecord) -> Appended:
        payload_type, payload = codec.encode_statement(record)
        env = dsse.sign(payload_type, payload, self._key)
        accepted = Accepted(env, env.record_id, self._gateway_id, record, self._origin)
        return self._ledger.append([accepted])[0]


def _replace(
    r: MemberRecord,
    *,
    issued_at: datetime,
    status: MemberStatus | None = None,
    keys: tuple[MemberKey, ...] | None = None,
) -> MemberRecord:
    return MemberRecord(
        issuer=r.issuer,
        member_id=r.member_id,
        role=r.role,
        region_code=r.region_code,
        keys=r.keys if keys is None else keys,
        status=r.status if status is None else status,
        issued_at=issued_at,
        display_name=r.display_name,
    )
