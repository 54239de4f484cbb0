"""The signed statements as self-validating domain objects.

These mirror ``proto/alliance/v1/statements.proto`` (same enum numbers, short names)
but know nothing of protobuf; ``gateway.codec`` converts. A constructor either returns
a fully valid statement or raises ``RecordError`` naming the field, so no half-valid
statement exists anywhere in the program. Datetimes are stored in UTC.
"""

from __future__ import annotations

import calendar
import dataclasses
import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import TypeVar

from gateway.core.identifiers import (
    REPORTING_UNITS,
    MemberId,
    Role,
    validate_region_code,
    validate_uscc,
)
from gateway.core.possession import verify_possession
from gateway.errors import RecordError

__all__ = [
    "ALLIANCE_POLICY_V1",
    "CHINA_STANDARD_TIME",
    "ERASURE_V1",
    "GOVERNMENT_MEASURE_V1",
    "GOVERNMENT_MEASURE_V2",
    "LISTING_V1",
    "LISTING_V2",
    "MAX_ERASED_RECORDS",
    "MEMBER_RECORD_TYPES",
    "MEMBER_RECORD_V1",
    "MEMBER_RECORD_V2",
    "MONTHLY_REPORT_TYPES",
    "MONTHLY_REPORT_V1",
    "MONTHLY_REPORT_V2",
    "PAYLOAD_TYPES",
    "REDACTABLE_TYPES",
    "REPORT_CONTENT_TYPE",
    "SANCTION_CONFIRMATION_V1",
    "SANCTION_CONFIRMATION_V2",
    "STATEMENT_TYPES",
    "STATUS_CHANGE_V1",
    "STATUS_CHANGE_V2",
    "SUPERSEDED_TYPES",
    "AlliancePolicy",
    "AuthorityScope",
    "ConductType",
    "DayKind",
    "Erasure",
    "ErasureBasis",
    "GovernmentMeasure",
    "GovernmentMeasureKind",
    "HolidayCalendar",
    "LifecycleStep",
    "ListKind",
    "Listing",
    "MeasureRequirement",
    "MemberKey",
    "MemberRecord",
    "MemberStatus",
    "MonthlyReport",
    "PublicationPeriod",
    "ReportFile",
    "ReportSubmission",
    "Role",
    "SanctionAction",
    "SanctionConfirmation",
    "SanctionMeasure",
    "Statement",
    "StatusChange",
    "StoreRef",
    "Subject",
    "SubmittedFile",
    "add_months",
    "check_member_record_v1",
    "check_member_record_v2",
    "without_disclosures",
]


class ListKind(enum.IntEnum):
    BLACKLIST = 1
    KEY_SCRUTINY = 2


class ConductType(enum.IntEnum):
    """Conduct types of the governing notice; 1-19 blacklist, 20-39 key scrutiny."""

    JUDGMENT_DEFAULTER = 1
    COUNTERFEIT = 2
    IP_INFRINGEMENT = 3
    FAKE_TRANSACTIONS = 4
    SHOPPING_CONTRACT_DISPUTE = 5
    EMPTY_PARCEL = 6
    PERSONAL_INFORMATION_ABUSE = 7
    FALSE_ADVERTISING_PENALTY = 20
    CONTRACT_BREACH_PENALTY = 21
    OTHER_ADMINISTRATIVE_PENALTY = 22
    OTHER = 99

    @property
    def lists(self) -> frozenset[ListKind]:
        """The lists a listing with this conduct may be on."""
        if self is ConductType.OTHER:
            return frozenset(ListKind)
        if 1 <= self.value <= 19:
            return frozenset({ListKind.BLACKLIST})
        return frozenset({ListKind.KEY_SCRUTINY})


class LifecycleStep(enum.IntEnum):
    LISTED = 1
    NOTICE_SERVED = 2
    COMMITMENT_SIGNED = 3
    CORRECTED = 4
    REMOVED = 5
    ESCALATED = 6
    # Protocol revision 3 (due process).
    IDENTIFIED = 7
    DISPUTED = 8
    UPHELD = 9
    WITHDRAWN = 10
    # Issue 18: the maximum publication period ended (signed by the issuing gateway).
    RETIRED = 11


# Steps that rest on a document: DISPUTED requires its SHA-256, these allow it.
_DOCUMENT_REQUIRED = frozenset({LifecycleStep.DISPUTED})
_DOCUMENT_ALLOWED = _DOCUMENT_REQUIRED | {
    LifecycleStep.NOTICE_SERVED,
    LifecycleStep.COMMITMENT_SIGNED,
}


class SanctionMeasure(enum.IntEnum):
    RESTRICT_NEW_ACCOUNTS = 1
    BLOCK_OR_DELETE_ACCOUNTS = 2
    RESTRICT_PUBLISHING = 3
    RESTRICT_PROMOTIONS = 4
    DEDUCT_CREDIT_POINTS = 5
    LOWER_CREDIT_RATING = 6
    RESTRICT_ACCOUNT_PERMISSIONS = 7
    PUBLIC_EXPOSURE = 8
    RESTRICT_PLATFORM_ENTRY = 9
    RESTRICT_LOGISTICS = 10
    RESTRICT_ONLINE_ADVERTISING = 11
    CLOSE_STORE = 12
    WARNING = 13  # protocol revision 3
    OTHER = 99


class SanctionAction(enum.IntEnum):
    APPLIED = 1
    LIFTED = 2
    # Protocol revision 3: the seller has no account with the platform (no measure).
    NOT_APPLICABLE = 3


class GovernmentMeasureKind(enum.IntEnum):
    """Measures of the government side (notice §V); protocol revision 3."""

    SUMMONS = 1  # 约谈
    NOTIFICATION = 2  # 通报
    ADDITIONAL_INSPECTIONS = 3  # 加大检查频次
    RESTRICT_OPERATION = 4  # 限制经营
    RESTRICT_FINANCING = 5  # 限制融资
    OTHER = 99


class MemberStatus(enum.IntEnum):
    ACTIVE = 1
    SUSPENDED = 2


class AuthorityScope(enum.IntEnum):
    """What an authority speaks for (member-record.v2; a v1 authority record means UNIT)."""

    UNIT = 1  # the reporting unit of its region_code
    NATIONAL = 2


class ErasureBasis(enum.IntEnum):
    """Why disclosures are erased (erasure.v1, protocol revision 4)."""

    PURPOSE_ACHIEVED = 1  # publication ended: repair, removal, retirement (PIPL art. 47(1))
    RETENTION_ENDED = 2  # the record kind's retention period ended (a gateway signs)
    DECISION = 3  # a court or administrative decision orders it
    WITHDRAWN = 4  # the listing was withdrawn as erroneous


# Maximum lengths in characters (code points).
_MAX_REF = 256
_MAX_TEXT = 2048
_MAX_STORE_ID = 128
_MAX_STORES = 100
_MAX_KEYS = 32
_MAX_REPORT_BYTES = 1024 * 1024
_MAX_LOG_SIZE = 2**63 - 1
REPORT_CONTENT_TYPE = "application/json"
_MAX_REPORT_FILES = 16
# A media type: type "/" subtype, RFC 6838 restricted names (no parameters).
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_HEX = frozenset("0123456789abcdef")


# Calendar months are counted on the calendar of the notice: China Standard Time. Every
# gateway must compute the same deadline, so this is part of the protocol (PROTOCOL.md).
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(dt: datetime, n: int) -> datetime:
    """Add calendar months in China Standard Time (UTC+08:00), clamping the day to the
    target month's last day; the result is in UTC.

    2024-11-30 + 3 months is 2025-02-28, as a person reading a notice would count, and a
    listing made at 2026-10-01 00:00 in Beijing is due 2027-01-01 00:00 in Beijing.
    """
    if dt.tzinfo is None:
        raise ValueError("add_months needs a timezone-aware datetime")
    local = dt.astimezone(CHINA_STANDARD_TIME)
    index = local.year * 12 + (local.month - 1) + n
    year, month = divmod(index, 12)
    month += 1
    last = 29 if month == 2 and calendar.isleap(year) else _DAYS_IN_MONTH[month]
    return local.replace(year=year, month=month, day=min(local.day, last)).astimezone(UTC)


# --- field checks --------------------------------------------------------------------

_E = TypeVar("_E", bound=enum.IntEnum)

# Control characters (C0 and DEL); free text may keep line feeds and tabs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_EXCEPT_BREAKS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _set(obj: object, name: str, value: object) -> None:
    # The dataclasses are frozen; normalising a field in __post_init__ is the exception.
    object.__setattr__(obj, name, value)


_LISTING_TEXTS = ("decision_ref", "summary", "legal_basis")
_STATUS_CHANGE_TEXTS = ("decision_ref", "reason", "decided_by")


def _redacted(stmt: object, name: str, *, texts: tuple[str, ...], subject: object = None) -> None:
    """A redacted statement holds nothing in its committed fields: the reader of an
    erased record must not mistake a placeholder for a value."""
    if subject is not None or any(getattr(stmt, t) for t in texts):
        raise RecordError(f"{name}: a redacted statement carries no committed value")


def _text(
    value: object, field: str, max_len: int, *, required: bool = False, multiline: bool = False
) -> None:
    if not isinstance(value, str):
        raise RecordError(f"{field}: must be a string")
    if required and not value:
        raise RecordError(f"{field}: must not be empty")
    if len(value) > max_len:
        raise RecordError(f"{field}: must be at most {max_len} characters, got {len(value)}")
    # Single-line fields may not hide line breaks or terminal escapes (they end up in
    # logs and reports); free text may break lines.
    if (_CONTROL_EXCEPT_BREAKS if multiline else _CONTROL).search(value) is not None:
        raise RecordError(f"{field}: must not contain control characters")


def _enum(cls: type[_E], value: object, field: str) -> _E:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{field}: must be a {cls.__name__}")
    try:
        return cls(value)
    except ValueError:
        raise RecordError(f"{field}: {value} is not a {cls.__name__}") from None


def _utc(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise RecordError(f"{field}: must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise RecordError(f"{field}: must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def _member(value: object, field: str) -> MemberId:
    if not isinstance(value, str):
        raise RecordError(f"{field}: must be a member id string")
    return MemberId.parse(value, field=field)


def _record_id(value: object, field: str) -> None:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise RecordError(f"{field}: must be a record id (64 lowercase hex characters)")


def _other(value: str, field: str, is_other: bool, enum_field: str) -> None:
    _text(value, field, _MAX_REF)
    if is_other and not value:
        raise RecordError(f"{field}: required when {enum_field} is OTHER")
    if not is_other and value:
        raise RecordError(f"{field}: must be empty unless {enum_field} is OTHER")


# --- subjects ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreRef:
    """A seller's store on a member platform."""

    platform: str
    store_id: str

    def __post_init__(self) -> None:
        if _member(self.platform, "store.platform").role is not Role.PLATFORM:
            raise RecordError("store.platform: must be a platform member id")
        _text(self.store_id, "store.store_id", _MAX_STORE_ID, required=True)


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is listed: an enterprise by credit code, or a person by keyed hash."""

    uscc: str | None = None
    person_hmac: bytes | None = None
    stores: tuple[StoreRef, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        if (self.uscc is None) == (self.person_hmac is None):
            raise RecordError("subject: exactly one of uscc or person_hmac must be set")
        if self.uscc is not None:
            validate_uscc(self.uscc, field="subject.uscc")
        if self.person_hmac is not None:
            if not isinstance(self.person_hmac, bytes):
                raise RecordError("subject.person_hmac: must be bytes")
            if len(self.person_hmac) != 32:
                raise RecordError(
                    f"subject.person_hmac: must be 32 bytes (HMAC-SHA-256), "
                    f"got {len(self.person_hmac)}"
                )
        # Most subjects (nearly every one of a batch lookup) carry neither a name nor
        # stores; the checks below would all pass on them.
        name, stores = self.name, self.stores
        if type(name) is str and type(stores) is tuple and not name and not stores:
            return
        _text(self.name, "subject.name", _MAX_REF)
        if self.person_hmac is not None and self.name:
            raise RecordError("subject.name: must be empty for a natural person")
        stores = tuple(self.stores)
        if len(stores) > _MAX_STORES:
            raise RecordError(f"subject.stores: at most {_MAX_STORES} stores")
        if not all(isinstance(s, StoreRef) for s in stores):
            raise RecordError("subject.stores: must be StoreRef values")
        if len(set(stores)) != len(stores):
            raise RecordError("subject.stores: must not repeat a store")
        _set(self, "stores", stores)

    @property
    def key(self) -> str:
        """The lookup key: ``uscc:<code>`` or ``person:<lowercase hex HMAC>``."""
        return _subject_key(self)


def _subject_key(subject: Subject) -> str:
    """``Subject.key`` (a function of its own: mutmut does not mutate decorated ones)."""
    if subject.uscc is not None:
        return f"uscc:{subject.uscc}"
    assert subject.person_hmac is not None
    return f"person:{subject.person_hmac.hex()}"


# --- statements ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """A subject put on a list; its record id is the listing id."""

    issuer: str
    # None only when ``redacted``.
    subject: Subject | None
    list: ListKind
    conduct: ConductType
    region_code: str
    decision_ref: str
    listed_at: datetime
    conduct_other: str = ""
    correction_deadline: datetime | None = None
    summary: str = ""
    legal_basis: str = ""
    # A listing.v2 record read without its disclosures (erased, or withheld from this
    # reader): the committed fields (subject, decision_ref, summary, legal_basis) are
    # unknown, None and "" here, and their rules are not checked.
    redacted: bool = False
    # Explicit or default; computed once here (submission checks it, projections store it).
    _deadline: datetime = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _member(self.issuer, "listing.issuer")
        if self.redacted:
            _redacted(self, "listing", subject=self.subject, texts=_LISTING_TEXTS)
        elif not isinstance(self.subject, Subject):
            raise RecordError("listing.subject: must be a Subject")
        kind = _enum(ListKind, self.list, "listing.list")
        conduct = _enum(ConductType, self.conduct, "listing.conduct")
        _set(self, "list", kind)
        _set(self, "conduct", conduct)
        if kind not in conduct.lists:
            raise RecordError(
                f"listing.conduct: {conduct.name} belongs to another list than {kind.name}"
            )
        _other(self.conduct_other, "listing.conduct_other", conduct is ConductType.OTHER, "conduct")
        validate_region_code(self.region_code, field="listing.region_code")
        _text(self.decision_ref, "listing.decision_ref", _MAX_REF, required=not self.redacted)
        listed_at = _utc(self.listed_at, "listing.listed_at")
        _set(self, "listed_at", listed_at)
        if self.correction_deadline is not None:
            deadline = _utc(self.correction_deadline, "listing.correction_deadline")
            if deadline <= listed_at:
                raise RecordError(
                    "listing.correction_deadline: must be after listed_at",
                    reason="deadline-too-early",
                )
            _set(self, "correction_deadline", deadline)
        else:
            try:
                deadline = add_months(listed_at, 3)
            except (ValueError, OverflowError):
                raise RecordError(
                    "listing.listed_at: too late for a default correction deadline"
                ) from None
        _set(self, "_deadline", deadline)
        _text(self.summary, "listing.summary", _MAX_TEXT, multiline=True)
        _text(self.legal_basis, "listing.legal_basis", _MAX_TEXT, multiline=True)

    @property
    def deadline(self) -> datetime:
        """When the listing becomes overdue: explicit, or 3 calendar months after listing."""
        return self._deadline


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A lifecycle step of a listing after LISTED."""

    issuer: str
    listing_id: str
    step: LifecycleStep
    effective_at: datetime
    decision_ref: str = ""
    reason: str = ""
    decided_by: str = ""
    # SHA-256 of the document the step rests on (protocol revision 3); b"" when absent.
    document_sha256: bytes = b""
    # A status-change.v2 record read without its disclosures: decision_ref, reason and
    # decided_by are unknown ("") and their rules are not checked.
    redacted: bool = False

    def __post_init__(self) -> None:
        _member(self.issuer, "status_change.issuer")
        _record_id(self.listing_id, "status_change.listing_id")
        step = _enum(LifecycleStep, self.step, "status_change.step")
        if step is LifecycleStep.LISTED:
            raise RecordError("status_change.step: LISTED is stated by the listing itself")
        _set(self, "step", step)
        _set(self, "effective_at", _utc(self.effective_at, "status_change.effective_at"))
        # Steps that close or decide something state on what (decision_ref) and why.
        closing = not self.redacted and step in (
            LifecycleStep.REMOVED,
            LifecycleStep.CORRECTED,
            LifecycleStep.UPHELD,
            LifecycleStep.WITHDRAWN,
        )
        if self.redacted:
            _redacted(self, "status_change", texts=_STATUS_CHANGE_TEXTS)
        _text(self.decision_ref, "status_change.decision_ref", _MAX_REF, required=closing)
        _text(self.reason, "status_change.reason", _MAX_TEXT, required=closing, multiline=True)
        _text(
            self.decided_by,
            "status_change.decided_by",
            _MAX_REF,
            required=step is LifecycleStep.REMOVED and not self.redacted,
        )
        if step is LifecycleStep.DISPUTED and not self.reason and not self.redacted:
            raise RecordError("status_change.reason: a DISPUTED step states the objection")
        doc = self.document_sha256
        if not isinstance(doc, bytes):
            raise RecordError("status_change.document_sha256: must be bytes")
        if doc and len(doc) != 32:
            raise RecordError(
                f"status_change.document_sha256: must be 32 bytes (SHA-256), got {len(doc)}"
            )
        if not doc and step in _DOCUMENT_REQUIRED:
            raise RecordError(
                f"status_change.document_sha256: required for {step.name} (the SHA-256 of "
                "the evidence document)"
            )
        if doc and step not in _DOCUMENT_ALLOWED:
            raise RecordError(
                f"status_change.document_sha256: a {step.name} step takes no document"
            )


@dataclass(frozen=True, slots=True)
class SanctionConfirmation:
    """A platform's confirmation that it applied or lifted a measure on a listing, or its
    answer that the seller has no account with it (NOT_APPLICABLE: no measure)."""

    issuer: str
    listing_id: str
    measure: SanctionMeasure | None
    action: SanctionAction
    effective_at: datetime
    measure_other: str = ""
    store_id: str = ""
    note: str = ""
    # A sanction-confirmation.v2 record read without its disclosures: store_id and
    # note are unknown ("").
    redacted: bool = False

    def __post_init__(self) -> None:
        _member(self.issuer, "sanction_confirmation.issuer")
        if self.redacted:
            _redacted(self, "sanction_confirmation", texts=("store_id", "note"))
        _record_id(self.listing_id, "sanction_confirmation.listing_id")
        action = _enum(SanctionAction, self.action, "sanction_confirmation.action")
        _set(self, "action", action)
        if action is SanctionAction.NOT_APPLICABLE:
            if self.measure is not None:
                raise RecordError(
                    "sanction_confirmation.measure: must be unset when the action is "
                    "NOT_APPLICABLE (the answer is about the seller's account, not a measure)"
                )
            if self.measure_other or self.store_id:
                raise RecordError(
                    "sanction_confirmation: measure_other and store_id must be empty when "
                    "the action is NOT_APPLICABLE"
                )
        else:
            if self.measure is None:
                raise RecordError(
                    f"sanction_confirmation.measure: required when the action is {action.name}"
                )
            measure = _enum(SanctionMeasure, self.measure, "sanction_confirmation.measure")
            _set(self, "measure", measure)
            _other(
                self.measure_other,
                "sanction_confirmation.measure_other",
                measure is SanctionMeasure.OTHER,
                "measure",
            )
        _set(
            self,
            "effective_at",
            _utc(self.effective_at, "sanction_confirmation.effective_at"),
        )
        _text(self.store_id, "sanction_confirmation.store_id", _MAX_STORE_ID)
        _text(self.note, "sanction_confirmation.note", _MAX_TEXT, multiline=True)

    @property
    def applied_measure(self) -> SanctionMeasure:
        """The measure of an APPLIED or LIFTED confirmation (never NOT_APPLICABLE)."""
        if self.measure is None:
            raise RecordError("sanction_confirmation: a NOT_APPLICABLE answer has no measure")
        return self.measure


@dataclass(frozen=True, slots=True)
class GovernmentMeasure:
    """A measure an authority took against a listed entity (protocol revision 3)."""

    issuer: str
    listing_id: str
    kind: GovernmentMeasureKind
    decision_ref: str
    effective_at: datetime
    kind_other: str = ""
    document_sha256: bytes = b""
    note: str = ""
    # A government-measure.v2 record read without its disclosures: decision_ref and
    # note are unknown ("") and their rules are not checked.
    redacted: bool = False

    def __post_init__(self) -> None:
        _member(self.issuer, "government_measure.issuer")
        if self.redacted:
            _redacted(self, "government_measure", texts=("decision_ref", "note"))
        _record_id(self.listing_id, "government_measure.listing_id")
        kind = _enum(GovernmentMeasureKind, self.kind, "government_measure.kind")
        _set(self, "kind", kind)
        _other(
            self.kind_other,
            "government_measure.kind_other",
            kind is GovernmentMeasureKind.OTHER,
            "kind",
        )
        _text(
            self.decision_ref,
            "government_measure.decision_ref",
            _MAX_REF,
            required=not self.redacted,
        )
        _set(self, "effective_at", _utc(self.effective_at, "government_measure.effective_at"))
        if not isinstance(self.document_sha256, bytes) or len(self.document_sha256) not in (
            0,
            32,
        ):
            raise RecordError(
                "government_measure.document_sha256: must be empty or 32 bytes (SHA-256 of "
                "the decision document)"
            )
        _text(self.note, "government_measure.note", _MAX_TEXT, multiline=True)


@dataclass(frozen=True, slots=True)
class MemberKey:
    """An Ed25519 record-signing key of a member with its validity window."""

    public_key: bytes
    not_before: datetime
    not_after: datetime | None = None
    # member-record.v2: the key's signature over the member id (gateway.core.possession),
    # checked by the MemberRecord that lists the key (the proof names the member).
    possession: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise RecordError("member_key.public_key: must be 32 bytes (raw Ed25519)")
        if self.possession is not None and not isinstance(self.possession, bytes):
            raise RecordError("member_key.possession: must be bytes")
        not_before = _utc(self.not_before, "member_key.not_before")
        _set(self, "not_before", not_before)
        if self.not_after is not None:
            not_after = _utc(self.not_after, "member_key.not_after")
            if not_after <= not_before:
                raise RecordError("member_key.not_after: must be after not_before")
            _set(self, "not_after", not_after)

    def valid_at(self, t: datetime) -> bool:
        """Half-open window: valid from not_before up to, not including, not_after."""
        at = _utc(t, "t")
        return self.not_before <= at and (self.not_after is None or at < self.not_after)


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A regional gateway vouching for one of its members (or itself)."""

    issuer: str
    member_id: str
    role: Role
    region_code: str
    keys: tuple[MemberKey, ...]
    status: MemberStatus
    issued_at: datetime
    display_name: str = ""
    # member-record.v2: required for an authority, absent for every other role.
    scope: AuthorityScope | None = None

    def __post_init__(self) -> None:
        issuer = _member(self.issuer, "member_record.issuer")
        member = _member(self.member_id, "member_record.member_id")
        role = _enum(Role, self.role, "member_record.role")
        _set(self, "role", role)
        if member.role is not role:
            raise RecordError(
                f"member_record.role: {role.name} does not match the member id's role "
                f"{member.role.name}"
            )
        if issuer.role is not Role.GATEWAY or issuer.trust_domain != member.trust_domain:
            raise RecordError(
                f"member_record.issuer: must be a gateway of trust domain {member.trust_domain}"
            )
        validate_region_code(self.region_code, field="member_record.region_code")
        keys = tuple(self.keys)
        if not all(isinstance(k, MemberKey) for k in keys):
            raise RecordError("member_record.keys: must be MemberKey values")
        if len(keys) > _MAX_KEYS:
            raise RecordError(f"member_record.keys: at most {_MAX_KEYS} keys")
        _set(self, "keys", keys)
        status = _enum(MemberStatus, self.status, "member_record.status")
        _set(self, "status", status)
        if status is MemberStatus.ACTIVE and not keys:
            raise RecordError("member_record.keys: an ACTIVE member needs at least one key")
        _set(self, "issued_at", _utc(self.issued_at, "member_record.issued_at"))
        _text(self.display_name, "member_record.display_name", _MAX_REF)
        if self.scope is not None:
            _set(self, "scope", _enum(AuthorityScope, self.scope, "member_record.scope"))
            if role is not Role.AUTHORITY:
                raise RecordError("member_record.scope: only an authority has a scope")
        for i, key in enumerate(keys):
            if key.possession is not None:
                verify_possession(
                    key.public_key,
                    self.member_id,
                    key.possession,
                    field=f"member_record.keys[{i}].possession",
                )

    @property
    def authority_scope(self) -> AuthorityScope | None:
        """An authority's scope (UNIT when its record does not say: member-record.v1)."""
        return _authority_scope(self)

    @property
    def carries_v2_fields(self) -> bool:
        return self.scope is not None or any(k.possession is not None for k in self.keys)


def _authority_scope(record: MemberRecord) -> AuthorityScope | None:
    """``MemberRecord.authority_scope`` (a function of its own: mutmut does not mutate
    decorated ones)."""
    if record.role is not Role.AUTHORITY:
        return None
    return record.scope if record.scope is not None else AuthorityScope.UNIT


def check_member_record_v1(record: MemberRecord) -> None:
    """The rules of member-record.v1 on top of the model's: no v2 field."""
    if record.carries_v2_fields:
        raise RecordError(
            "member_record: a v1 member record carries neither scope nor key possession proofs",
            advice=f"sign it as {MEMBER_RECORD_V2}",
        )


def check_member_record_v2(record: MemberRecord) -> None:
    """The rules of member-record.v2 on top of the model's (which verified every proof):
    every key carries its proof of possession, and an authority states its scope."""
    for i, key in enumerate(record.keys):
        if key.possession is None:
            raise RecordError(
                f"member_record.keys[{i}].possession: required in a v2 member record",
                advice="the member makes the proof with its private key: "
                "`alliance-gateway certs possession --key … --member-id …`",
            )
    if record.role is Role.AUTHORITY and record.scope is None:
        raise RecordError("member_record.scope: required for an authority (UNIT or NATIONAL)")


def _report_month(value: object, field: str) -> None:
    if not isinstance(value, str) or len(value) != 7 or value[4] != "-":
        raise RecordError(f"{field}: must be YYYY-MM")
    year, month = value[:4], value[5:]
    if not (year.isascii() and year.isdigit() and month.isascii() and month.isdigit()):
        raise RecordError(f"{field}: must be YYYY-MM")
    if not 1 <= int(month) <= 12 or int(year) < 1:
        raise RecordError(f"{field}: {value} is not a calendar month")


@dataclass(frozen=True, slots=True)
class ReportFile:
    """One file a monthly report was published as, by the SHA-256 of its bytes."""

    name: str
    media_type: str
    sha256: bytes

    def __post_init__(self) -> None:
        field = "monthly_report.files"
        _text(self.name, f"{field}.name", _MAX_FILE_NAME, required=True)
        if "/" in self.name or "\\" in self.name or self.name in (".", ".."):
            raise RecordError(f"{field}.name: {self.name!r} must be a file name, not a path")
        if not isinstance(self.media_type, str) or not _MEDIA_TYPE.fullmatch(self.media_type):
            raise RecordError(
                f"{field}.media_type: {self.media_type!r} is not a media type "
                "(lower case type/subtype, e.g. application/pdf)"
            )
        if not isinstance(self.sha256, bytes) or len(self.sha256) != 32:
            raise RecordError(f"{field}.sha256: must be 32 bytes (SHA-256)")


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    """A gateway's signed monthly report, computed at a checkpoint of its own log.

    ``content`` is the report as canonical JSON (``gateway.core.report``); it must be
    computed only from the log entries below ``checkpoint_size``, so that a monitor
    can recompute it by replaying the log up to that checkpoint. ``files`` names the
    files the report was published as (payload type v2; a v1 report has none), so a
    recipient can check a file it got against the log.
    """

    issuer: str
    month: str
    unit: str
    checkpoint_size: int
    checkpoint_root: bytes
    content: bytes
    content_type: str = REPORT_CONTENT_TYPE
    files: tuple[ReportFile, ...] = ()

    def __post_init__(self) -> None:
        issuer = _member(self.issuer, "monthly_report.issuer")
        if issuer.role is not Role.GATEWAY:
            raise RecordError("monthly_report.issuer: must be a gateway member id")
        _report_month(self.month, "monthly_report.month")
        if not isinstance(self.unit, str) or (self.unit and self.unit not in REPORTING_UNITS):
            raise RecordError(
                "monthly_report.unit: must be empty (all units) or a 2-digit reporting unit"
            )
        size = self.checkpoint_size
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_LOG_SIZE:
            raise RecordError("monthly_report.checkpoint_size: must be a tree size (0 or more)")
        if not isinstance(self.checkpoint_root, bytes) or len(self.checkpoint_root) != 32:
            raise RecordError("monthly_report.checkpoint_root: must be 32 bytes (SHA-256)")
        if self.content_type != REPORT_CONTENT_TYPE:
            raise RecordError(f"monthly_report.content_type: must be {REPORT_CONTENT_TYPE!r}")
        if not isinstance(self.content, bytes) or not self.content:
            raise RecordError("monthly_report.content: must not be empty")
        if len(self.content) > _MAX_REPORT_BYTES:
            raise RecordError(f"monthly_report.content: at most {_MAX_REPORT_BYTES} bytes")
        try:
            document = json.loads(self.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise RecordError(f"monthly_report.content: not UTF-8 JSON: {e}") from None
        if not isinstance(document, dict):
            raise RecordError("monthly_report.content: must be a JSON object")
        if not isinstance(self.files, tuple) or not all(
            isinstance(f, ReportFile) for f in self.files
        ):
            raise RecordError("monthly_report.files: must be a tuple of ReportFile")
        if len(self.files) > _MAX_REPORT_FILES:
            raise RecordError(f"monthly_report.files: at most {_MAX_REPORT_FILES} files")
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise RecordError("monthly_report.files: a file name appears twice")


_MAX_WORKING_DAYS = 250
_MAX_GRACE_DAYS = 3650
_MAX_REQUIREMENTS = 64
# A publication period of at most 10 years: the longest any credit rule names is 5.
_MAX_PUBLICATION_MONTHS = 120


def _count(value: object, field: str, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise RecordError(f"{field}: must be an integer 0 to {maximum} (0: the default)")


def _list_and_conduct(entry: MeasureRequirement | PublicationPeriod, field: str) -> None:
    """Check and normalize the list and conduct an alliance policy entry applies to
    (``None``: any); a conduct must belong to the list."""
    kind = None if entry.list is None else _enum(ListKind, entry.list, f"{field}.list")
    conduct = (
        None if entry.conduct is None else _enum(ConductType, entry.conduct, f"{field}.conduct")
    )
    _set(entry, "list", kind)
    _set(entry, "conduct", conduct)
    if kind is not None and conduct is not None and kind not in conduct.lists:
        raise RecordError(
            f"{field}.conduct: {conduct.name} belongs to another list than {kind.name}"
        )


@dataclass(frozen=True, slots=True)
class MeasureRequirement:
    """Which APPLIED measures satisfy an obligation on listings of a list and conduct
    (``None``: any list / any conduct)."""

    list: ListKind | None
    conduct: ConductType | None
    satisfying: tuple[SanctionMeasure, ...]

    def __post_init__(self) -> None:
        field = "alliance_policy.measure_requirements"
        _list_and_conduct(self, field)
        measures = tuple(
            _enum(SanctionMeasure, m, f"{field}.satisfying") for m in tuple(self.satisfying)
        )
        if not measures:
            raise RecordError(f"{field}.satisfying: name at least one measure")
        if len(set(measures)) != len(measures):
            raise RecordError(f"{field}.satisfying: must not repeat a measure")
        _set(self, "satisfying", measures)


@dataclass(frozen=True, slots=True)
class PublicationPeriod:
    """How long listings of a list and conduct stay published (``None``: any list / any
    conduct), in calendar months counted from the identification (issue 18)."""

    list: ListKind | None
    conduct: ConductType | None
    minimum_months: int
    maximum_months: int

    def __post_init__(self) -> None:
        field = "alliance_policy.publication_periods"
        _list_and_conduct(self, field)
        for name in ("minimum_months", "maximum_months"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= _MAX_PUBLICATION_MONTHS
            ):
                raise RecordError(
                    f"{field}.{name}: must be an integer 0 to {_MAX_PUBLICATION_MONTHS}"
                )
        if self.maximum_months == 0:
            raise RecordError(f"{field}.maximum_months: must be at least 1")
        if self.minimum_months > self.maximum_months:
            raise RecordError(
                f"{field}.minimum_months: {self.minimum_months} is more than maximum_months "
                f"{self.maximum_months}"
            )


_Entry = TypeVar("_Entry", MeasureRequirement, PublicationPeriod)


def _policy_entries(
    values: tuple[_Entry, ...], cls: type[_Entry], field: str
) -> tuple[_Entry, ...]:
    """An alliance policy's entries of one kind: all ``cls``, at most
    ``_MAX_REQUIREMENTS``, one per (list, conduct) pair."""
    entries = tuple(values)
    if not all(isinstance(e, cls) for e in entries):
        raise RecordError(f"{field}: must be {cls.__name__}")
    if len(entries) > _MAX_REQUIREMENTS:
        raise RecordError(f"{field}: at most {_MAX_REQUIREMENTS} entries")
    keys = [(e.list, e.conduct) for e in entries]
    if len(set(keys)) != len(keys):
        raise RecordError(f"{field}: must not repeat a (list, conduct) pair")
    return entries


@dataclass(frozen=True, slots=True)
class AlliancePolicy:
    """Policy data of one alliance, signed by its gateway (protocol revision 3).

    Zero counts mean the documented default (``gateway.core.alliance_policy``).
    """

    issuer: str
    issued_at: datetime
    units_accepting_platform_reports: tuple[str, ...] = ()
    dispute_decision_working_days: int = 0
    notice_working_days: int = 0
    sanction_grace_days: int = 0
    measure_requirements: tuple[MeasureRequirement, ...] = ()
    publication_periods: tuple[PublicationPeriod, ...] = ()

    def __post_init__(self) -> None:
        issuer = _member(self.issuer, "alliance_policy.issuer")
        if issuer.role is not Role.GATEWAY:
            raise RecordError("alliance_policy.issuer: must be a gateway member id")
        _set(self, "issued_at", _utc(self.issued_at, "alliance_policy.issued_at"))
        units = tuple(self.units_accepting_platform_reports)
        for unit in units:
            if not isinstance(unit, str) or unit not in REPORTING_UNITS:
                raise RecordError(
                    f"alliance_policy.units_accepting_platform_reports: {str(unit)[:20]!r} "
                    "is not a 2-digit reporting unit"
                )
        if len(set(units)) != len(units):
            raise RecordError(
                "alliance_policy.units_accepting_platform_reports: must not repeat a unit"
            )
        _set(self, "units_accepting_platform_reports", tuple(sorted(units)))
        _count(
            self.dispute_decision_working_days,
            "alliance_policy.dispute_decision_working_days",
            _MAX_WORKING_DAYS,
        )
        _count(self.notice_working_days, "alliance_policy.notice_working_days", _MAX_WORKING_DAYS)
        _count(self.sanction_grace_days, "alliance_policy.sanction_grace_days", _MAX_GRACE_DAYS)
        _set(
            self,
            "measure_requirements",
            _policy_entries(
                self.measure_requirements,
                MeasureRequirement,
                "alliance_policy.measure_requirements",
            ),
        )
        _set(
            self,
            "publication_periods",
            _policy_entries(
                self.publication_periods, PublicationPeriod, "alliance_policy.publication_periods"
            ),
        )

    @property
    def trust_domain(self) -> str:
        """The alliance this policy speaks for: its issuer's trust domain."""
        return MemberId.parse(self.issuer).trust_domain


# --- gateway-signed operational records: holiday calendars, report submissions --------


class DayKind(enum.IntEnum):
    """The kind of one day of a year's working-day calendar."""

    WORKDAY = 1  # Monday to Friday, worked
    WEEKEND = 2  # Saturday or Sunday, not worked
    HOLIDAY = 3  # a day off of a public holiday break, any day of the week
    MAKEUP_WORKDAY = 4  # a Saturday or Sunday worked instead (调休上班)

    @property
    def worked(self) -> bool:
        return self in (DayKind.WORKDAY, DayKind.MAKEUP_WORKDAY)


_SATURDAY = 5
_MAX_YEAR = 9999


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """One year's working days, every date accounted for, signed by a gateway.

    ``days[i]`` is the kind of 1 January + ``i`` days. A weekday is a WORKDAY or a
    HOLIDAY; a Saturday or Sunday is a WEEKEND, a HOLIDAY or a MAKEUP_WORKDAY. A
    refusal names the first date that breaks the rule.
    """

    issuer: str
    year: int
    days: tuple[DayKind, ...]
    source: str
    issued_at: datetime

    def __post_init__(self) -> None:
        issuer = _member(self.issuer, "holiday_calendar.issuer")
        if issuer.role is not Role.GATEWAY:
            raise RecordError("holiday_calendar.issuer: must be a gateway member id")
        year = self.year
        if isinstance(year, bool) or not isinstance(year, int) or not 1 <= year <= _MAX_YEAR:
            raise RecordError(f"holiday_calendar.year: {year!r} is not a year (1 .. 9999)")
        length = 366 if calendar.isleap(year) else 365
        days = tuple(self.days)
        if len(days) != length:
            raise RecordError(
                f"holiday_calendar.days: {year} has {length} days, the calendar lists {len(days)}"
            )
        kinds = []
        first = date(year, 1, 1)
        for i, value in enumerate(days):
            day = first + timedelta(days=i)
            kind = _enum(DayKind, value, f"holiday_calendar.days[{i}] ({day.isoformat()})")
            weekend = day.weekday() >= _SATURDAY
            if weekend and kind is DayKind.WORKDAY:
                raise RecordError(
                    f"holiday_calendar.days[{i}]: {day.isoformat()} is a {day:%A}: a worked "
                    "weekend day is a MAKEUP_WORKDAY, not a WORKDAY"
                )
            if not weekend and kind in (DayKind.WEEKEND, DayKind.MAKEUP_WORKDAY):
                raise RecordError(
                    f"holiday_calendar.days[{i}]: {day.isoformat()} is a {day:%A}, not a "
                    f"Saturday or Sunday: it cannot be a {kind.name}"
                )
            kinds.append(kind)
        _set(self, "days", tuple(kinds))
        _text(self.source, "holiday_calendar.source", _MAX_REF, required=True)
        _set(self, "issued_at", _utc(self.issued_at, "holiday_calendar.issued_at"))

    def kind(self, day: date) -> DayKind:
        if day.year != self.year:
            raise RecordError(f"{day.isoformat()} is not in {self.year}")
        return self.days[(day - date(self.year, 1, 1)).days]

    @property
    def holidays(self) -> frozenset[date]:
        """The days off of holiday breaks."""
        return self._dates(DayKind.HOLIDAY)

    @property
    def makeup_workdays(self) -> frozenset[date]:
        return self._dates(DayKind.MAKEUP_WORKDAY)

    def _dates(self, kind: DayKind) -> frozenset[date]:
        first = date(self.year, 1, 1)
        return frozenset(first + timedelta(days=i) for i, k in enumerate(self.days) if k is kind)


_MAX_FILES = 64
_MAX_FILE_NAME = 255


@dataclass(frozen=True, slots=True)
class SubmittedFile:
    """A file of a submitted report: its name (no folders) and SHA-256."""

    name: str
    sha256: bytes

    def __post_init__(self) -> None:
        _text(self.name, "submitted_file.name", _MAX_FILE_NAME, required=True)
        if "/" in self.name or "\\" in self.name or self.name in (".", ".."):
            raise RecordError(f"submitted_file.name: {self.name!r} must be a file name, no folders")
        if not isinstance(self.sha256, bytes) or len(self.sha256) != 32:
            raise RecordError("submitted_file.sha256: must be 32 bytes (SHA-256)")


@dataclass(frozen=True, slots=True)
class ReportSubmission:
    """A gateway's statement that it sent a month's report: to whom, when, which files."""

    issuer: str
    month: str
    unit: str
    report_id: str
    recipient: str
    submitted_at: datetime
    files: tuple[SubmittedFile, ...]

    def __post_init__(self) -> None:
        issuer = _member(self.issuer, "report_submission.issuer")
        if issuer.role is not Role.GATEWAY:
            raise RecordError("report_submission.issuer: must be a gateway member id")
        _report_month(self.month, "report_submission.month")
        if not isinstance(self.unit, str) or (self.unit and self.unit not in REPORTING_UNITS):
            raise RecordError(
                "report_submission.unit: must be empty (all units) or a 2-digit reporting unit"
            )
        _record_id(self.report_id, "report_submission.report_id")
        _text(self.recipient, "report_submission.recipient", _MAX_REF, required=True)
        _set(self, "submitted_at", _utc(self.submitted_at, "report_submission.submitted_at"))
        files = tuple(self.files)
        if not files:
            raise RecordError("report_submission.files: at least one file was sent")
        if len(files) > _MAX_FILES:
            raise RecordError(f"report_submission.files: at most {_MAX_FILES} files")
        if not all(isinstance(f, SubmittedFile) for f in files):
            raise RecordError("report_submission.files: must be SubmittedFile values")
        names = [f.name for f in files]
        if len(set(names)) != len(names):
            raise RecordError("report_submission.files: a file name is listed twice")
        _set(self, "files", files)


MAX_ERASED_RECORDS = 1000


@dataclass(frozen=True, slots=True)
class Erasure:
    """Names records whose disclosures every gateway holding them deletes (revision 4).

    The records stay in the log: their payloads hold commitments only, so signatures,
    leaves and proofs keep verifying. Who may sign it, per named record, is
    ``gateway.core.policy.may_erase``."""

    issuer: str
    record_ids: tuple[str, ...]
    basis: ErasureBasis
    legal_basis: str
    effective_at: datetime

    def __post_init__(self) -> None:
        _member(self.issuer, "erasure.issuer")
        ids = tuple(self.record_ids)
        if not 1 <= len(ids) <= MAX_ERASED_RECORDS:
            raise RecordError(
                f"erasure.record_ids: 1 to {MAX_ERASED_RECORDS} record ids, got {len(ids)}"
            )
        for i, rid in enumerate(ids):
            _record_id(rid, f"erasure.record_ids[{i}]")
        if len(set(ids)) != len(ids):
            raise RecordError("erasure.record_ids: must not repeat a record")
        _set(self, "record_ids", ids)
        _set(self, "basis", _enum(ErasureBasis, self.basis, "erasure.basis"))
        _text(self.legal_basis, "erasure.legal_basis", _MAX_TEXT, required=True, multiline=True)
        _set(self, "effective_at", _utc(self.effective_at, "erasure.effective_at"))


Statement = (
    Listing
    | StatusChange
    | SanctionConfirmation
    | MemberRecord
    | MonthlyReport
    | GovernmentMeasure
    | AlliancePolicy
    | HolidayCalendar
    | ReportSubmission
    | Erasure
)
ALLIANCE_POLICY_V1 = "application/vnd.alliance.alliance-policy.v1+protobuf"

MEMBER_RECORD_V1 = "application/vnd.alliance.member-record.v1+protobuf"
MEMBER_RECORD_V2 = "application/vnd.alliance.member-record.v2+protobuf"
MEMBER_RECORD_TYPES = frozenset({MEMBER_RECORD_V1, MEMBER_RECORD_V2})
MONTHLY_REPORT_V1 = "application/vnd.alliance.monthly-report.v1+protobuf"
MONTHLY_REPORT_V2 = "application/vnd.alliance.monthly-report.v2+protobuf"
MONTHLY_REPORT_TYPES = frozenset({MONTHLY_REPORT_V1, MONTHLY_REPORT_V2})

# The redactable statements (protocol revision 4): v2 signs commitments to the subject
# and free text, v1 signed them in the clear. Members submit v2 only; v1 records
# already in logs still verify, apply and replicate.
LISTING_V1 = "application/vnd.alliance.listing.v1+protobuf"
LISTING_V2 = "application/vnd.alliance.listing.v2+protobuf"
STATUS_CHANGE_V1 = "application/vnd.alliance.status-change.v1+protobuf"
STATUS_CHANGE_V2 = "application/vnd.alliance.status-change.v2+protobuf"
SANCTION_CONFIRMATION_V1 = "application/vnd.alliance.sanction-confirmation.v1+protobuf"
SANCTION_CONFIRMATION_V2 = "application/vnd.alliance.sanction-confirmation.v2+protobuf"
GOVERNMENT_MEASURE_V1 = "application/vnd.alliance.government-measure.v1+protobuf"
GOVERNMENT_MEASURE_V2 = "application/vnd.alliance.government-measure.v2+protobuf"
ERASURE_V1 = "application/vnd.alliance.erasure.v1+protobuf"
# The clear-text forms a member may no longer submit, each with its successor.
SUPERSEDED_TYPES: Mapping[str, str] = MappingProxyType(
    {
        LISTING_V1: LISTING_V2,
        STATUS_CHANGE_V1: STATUS_CHANGE_V2,
        SANCTION_CONFIRMATION_V1: SANCTION_CONFIRMATION_V2,
        GOVERNMENT_MEASURE_V1: GOVERNMENT_MEASURE_V2,
    }
)

# The payload types that travel with disclosures and can be erased (the v2 forms).
REDACTABLE_TYPES = frozenset(SUPERSEDED_TYPES.values())

# The payload type a gateway signs each statement as.
PAYLOAD_TYPES: Mapping[type[Statement], str] = MappingProxyType(
    {
        Listing: LISTING_V2,
        StatusChange: STATUS_CHANGE_V2,
        SanctionConfirmation: SANCTION_CONFIRMATION_V2,
        MemberRecord: MEMBER_RECORD_V2,
        MonthlyReport: MONTHLY_REPORT_V2,
        GovernmentMeasure: GOVERNMENT_MEASURE_V2,
        Erasure: ERASURE_V1,
        AlliancePolicy: ALLIANCE_POLICY_V1,
        HolidayCalendar: "application/vnd.alliance.holiday-calendar.v1+protobuf",
        ReportSubmission: "application/vnd.alliance.report-submission.v1+protobuf",
    }
)

# Every payload type a gateway accepts, and the statement it carries: member records
# signed before v2 still verify and apply.
STATEMENT_TYPES: Mapping[str, type[Statement]] = MappingProxyType(
    {
        **{payload_type: cls for cls, payload_type in PAYLOAD_TYPES.items()},
        MEMBER_RECORD_V1: MemberRecord,
        MONTHLY_REPORT_V1: MonthlyReport,
        LISTING_V1: Listing,
        STATUS_CHANGE_V1: StatusChange,
        SANCTION_CONFIRMATION_V1: SanctionConfirmation,
        GOVERNMENT_MEASURE_V1: GovernmentMeasure,
    }
)


_Readable = TypeVar("_Readable", Listing, StatusChange)


def without_disclosures(stmt: _Readable) -> _Readable:
    """``stmt`` as read without its disclosures (revision 4): what an erasure leaves of
    a listing or a status change, its committed fields empty (``__post_init__`` refuses a
    redacted statement that keeps one)."""
    if stmt.redacted:
        return stmt
    if isinstance(stmt, Listing):
        return dataclasses.replace(
            stmt, subject=None, decision_ref="", summary="", legal_basis="", redacted=True
        )
    return dataclasses.replace(stmt, decision_ref="", reason="", decided_by="", redacted=True)
