"""Member administration: the gateway signs member records for its region.

Used by ``alliance-gateway members …`` (which appends through the same sequencer lock
as a running gateway, so both may run at once) and at start-up for the gateway's own
record. Every record is signed as ``member-record.v2``: each key carries the member's
proof of possession (``gateway.core.possession``), made with the member's private key,
so a key can be registered only by whoever holds it, and only for one member.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey, VerifyingKey
from gateway.core.identifiers import MemberId
from gateway.core.intake import DEFAULT_INTAKE_RULES, IntakeRules, check_submitted
from gateway.core.possession import prove_possession
from gateway.core.statements import AuthorityScope, MemberKey, MemberRecord, MemberStatus, Role
from gateway.errors import NotFoundError, PermissionError, RecordError
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
        intake: IntakeRules = DEFAULT_INTAKE_RULES,
        clock: Clock = utc_now,
    ) -> None:
        self._ledger = ledger
        self._directory = directory
        self._key = gateway_key
        self._gateway_id = gateway_id
        self._origin = origin
        self._intake = intake
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
                keys=(
                    MemberKey(
                        public_key=own,
                        not_before=now,
                        possession=prove_possession(self._key, self._gateway_id),
                    ),
                ),
                status=MemberStatus.ACTIVE,
                issued_at=now,
                display_name="regional gateway",
            )
        )

    def add(
        self,
        member_id: str,
        region_code: str,
        public_key: bytes,
        *,
        possession: bytes,
        display_name: str = "",
        national: bool = False,
    ) -> Appended:
        """Register ``member_id`` with its signing key and the key's proof of possession.

        ``national``: an authority that speaks for the whole country (scope NATIONAL);
        every other authority speaks for the reporting unit of ``region_code``.
        """
        member = MemberId.parse(member_id)
        if member.trust_domain != MemberId.parse(self._gateway_id).trust_domain:
            raise RecordError(
                f"member_id: {member_id} is not in this gateway's trust domain",
                advice="register members at the gateway of their own region",
            )
        if member.role is Role.GATEWAY and member_id != self._gateway_id:
            raise PermissionError(
                f"member_id: {member_id} is a gateway identity other than this gateway's "
                f"configured one ({self._gateway_id})",
                advice="a region has one gateway identity, configured out of band; "
                "its replicas share it and need no registration",
            )
        if national and member.role is not Role.AUTHORITY:
            raise RecordError("--national: only an authority has a national scope")
        scope = None
        if member.role is Role.AUTHORITY:
            scope = AuthorityScope.NATIONAL if national else AuthorityScope.UNIT
        self._require_free(public_key, member_id)
        now = self._clock()
        return self._publish(
            MemberRecord(
                issuer=self._gateway_id,
                member_id=member_id,
                role=member.role,
                region_code=region_code,
                keys=(MemberKey(public_key=public_key, not_before=now, possession=possession),),
                status=MemberStatus.ACTIVE,
                issued_at=now,
                display_name=display_name,
                scope=scope,
            )
        )

    def set_status(self, member_id: str, status: MemberStatus) -> Appended:
        current = self._require(member_id)
        keys = _proven(current.keys)
        if status is MemberStatus.ACTIVE and not keys:
            raise RecordError(
                f"member_id: {member_id} has no key with a proof of possession to be active with",
                advice="register a key with its proof first (members rotate-key --possession)",
            )
        return self._publish(_replace(current, status=status, keys=keys, issued_at=self._clock()))

    def rotate_key(
        self, member_id: str, new_key: bytes, *, possession: bytes, overlap: timedelta
    ) -> Appended:
        """Add ``new_key``; every older key stops being valid after ``overlap``.

        Keys registered before proofs of possession existed (member-record.v1) cannot be
        carried into a v2 record: they end at once.
        """
        current = self._require(member_id)
        self._require_free(new_key, member_id)
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
                possession=k.possession,
            )
            for k in _proven(current.keys)
            if k.public_key != new_key and (k.not_after is None or k.not_after > now)
        )
        keys = (*kept, MemberKey(public_key=new_key, not_before=now, possession=possession))
        return self._publish(_replace(current, keys=keys, issued_at=now))

    def _require(self, member_id: str) -> MemberRecord:
        current = self._directory.member(member_id)
        if current is None:
            raise NotFoundError(f"member_id: {member_id} is not registered")
        return current

    def _require_free(self, public_key: bytes, member_id: str) -> None:
        """A signing key belongs to one member: refuse one another member holds."""
        VerifyingKey.from_raw(public_key)
        owner = self._directory.owner(public_key)
        if owner is not None and owner != member_id:
            raise PermissionError(
                f"public key: this key is registered to {owner}; a signing key belongs to "
                "exactly one member",
                advice="the member must generate its own key (alliance-gateway certs signing-key)",
            )

    def _publish(self, record: MemberRecord) -> Appended:
        check_submitted(record, now=self._clock(), rules=self._intake)
        payload_type, payload = codec.encode_statement(record)
        env = dsse.sign(payload_type, payload, self._key)
        accepted = Accepted(env, env.record_id, self._gateway_id, record, self._origin)
        return self._ledger.append([accepted])[0]


def _proven(keys: tuple[MemberKey, ...]) -> tuple[MemberKey, ...]:
    """The keys a v2 record can carry: those with a proof of possession."""
    return tuple(k for k in keys if k.possession is not None)


def _replace(
    r: MemberRecord,
    *,
    issued_at: datetime,
    status: MemberStatus | None = None,
    keys: tuple[MemberKey, ...] | None = None,
) -> MemberRecord:
    scope = r.authority_scope  # a v1 authority record means UNIT; v2 states it
    return MemberRecord(
        issuer=r.issuer,
        member_id=r.member_id,
        role=r.role,
        region_code=r.region_code,
        keys=r.keys if keys is None else keys,
        status=r.status if status is None else status,
        issued_at=issued_at,
        display_name=r.display_name,
        scope=scope,
    )
