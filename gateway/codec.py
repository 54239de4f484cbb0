"""Protobuf <-> domain conversion: the one module that knows both sides.

Decoding is strict: an unknown payload type, bytes that do not parse, fields this
version does not know, enum values that are unset or unknown, and required timestamps
that are missing are all ``RecordError``s naming the field; then the domain constructor
applies the field rules. Encoding uses deterministic serialization, but receivers never
re-serialize: they verify and store the bytes they were given.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar, cast

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.unknown_fields import UnknownFieldSet

from gateway.core import dsse
from gateway.core.disclosure import (
    Disclosure,
    Group,
    Salter,
    check_disclosures,
    disclose,
    keyed_salt,
    random_salt,
)
from gateway.core.statements import (
    ALLIANCE_POLICY_V1,
    ERASURE_V1,
    GOVERNMENT_MEASURE_V1,
    GOVERNMENT_MEASURE_V2,
    LISTING_V1,
    LISTING_V2,
    MEMBER_RECORD_V1,
    MEMBER_RECORD_V2,
    MONTHLY_REPORT_V1,
    MONTHLY_REPORT_V2,
    PAYLOAD_TYPES,
    SANCTION_CONFIRMATION_V1,
    SANCTION_CONFIRMATION_V2,
    STATUS_CHANGE_V1,
    STATUS_CHANGE_V2,
    AlliancePolicy,
    AuthorityScope,
    ConductType,
    DayKind,
    Erasure,
    ErasureBasis,
    GovernmentMeasure,
    GovernmentMeasureKind,
    HolidayCalendar,
    LifecycleStep,
    Listing,
    ListKind,
    MeasureRequirement,
    MemberKey,
    MemberRecord,
    MemberStatus,
    MonthlyReport,
    PublicationPeriod,
    ReportFile,
    ReportSubmission,
    Role,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    StatusChange,
    StoreRef,
    Subject,
    SubmittedFile,
    check_member_record_v1,
    check_member_record_v2,
)
from gateway.errors import RecordError
from gateway.pb.alliance.v1 import disclosure_pb2 as disclosure_pb
from gateway.pb.alliance.v1 import envelope_pb2 as env_pb
from gateway.pb.alliance.v1 import statements_pb2 as pb

__all__ = [
    "PAYLOAD_SCHEMAS",
    "Encoded",
    "OpenedPayload",
    "PayloadSchema",
    "decode_envelope",
    "decode_public",
    "decode_statement",
    "disclosures_from_pb",
    "disclosures_to_pb",
    "encode_record",
    "encode_statement",
    "enum_from_pb",
    "envelope_from_pb",
    "envelope_to_pb",
    "open_payload",
    "record_id_from_pb",
    "seal",
    "split_message",
    "statement_from_pb",
    "statement_to_pb",
    "stored_envelope",
    "subject_from_pb",
    "subject_to_pb",
    "timestamp_from_pb",
    "timestamp_to_pb",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799

_E = TypeVar("_E", bound=enum.IntEnum)
_M = TypeVar("_M", bound=Message)


# --- timestamps and enums ------------------------------------------------------------


def timestamp_to_pb(dt: datetime, *, field: str = "timestamp") -> Timestamp:
    """Convert an aware datetime; microseconds become nanos exactly."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise RecordError(f"{field}: must be timezone-aware (UTC)")
    delta = dt - _EPOCH
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1_000)


def timestamp_from_pb(ts: Timestamp, *, field: str = "timestamp") -> datetime:
    """Convert to an aware UTC datetime; nanos are truncated to microseconds."""
    if not 0 <= ts.nanos <= 999_999_999:
        raise RecordError(f"{field}: nanos must be in 0..999999999, got {ts.nanos}")
    if not _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS:
        raise RecordError(f"{field}: seconds {ts.seconds} is outside years 0001..9999")
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1_000)


def _required_ts(msg: Message, name: str, field: str) -> datetime:
    if not msg.HasField(name):
        raise RecordError(f"{field}: must be set")
    ts = getattr(msg, name)
    assert isinstance(ts, Timestamp)
    return timestamp_from_pb(ts, field=field)


def _optional_ts(msg: Message, name: str, field: str) -> datetime | None:
    return _required_ts(msg, name, field) if msg.HasField(name) else None


def enum_from_pb(cls: type[_E], value: int, field: str) -> _E:
    if value == 0:
        raise RecordError(f"{field}: must be set (UNSPECIFIED is not a value)")
    try:
        return cls(value)
    except ValueError:
        raise RecordError(f"{field}: unknown {cls.__name__} value {value}") from None


# --- subjects ------------------------------------------------------------------------


def subject_to_pb(subject: Subject) -> pb.Subject:
    msg = pb.Subject(
        stores=[pb.StoreRef(platform=s.platform, store_id=s.store_id) for s in subject.stores],
        name=subject.name,
    )
    if subject.uscc is not None:
        msg.uscc = subject.uscc
    elif subject.person_hmac is not None:
        msg.person_hmac = subject.person_hmac
    return msg


def subject_from_pb(msg: pb.Subject) -> Subject:
    which = msg.WhichOneof("id")
    stores = msg.stores
    return Subject(
        uscc=msg.uscc if which == "uscc" else None,
        person_hmac=msg.person_hmac if which == "person_hmac" else None,
        # Most subjects have no stores: no generator to run for them.
        stores=(
            tuple([StoreRef(platform=s.platform, store_id=s.store_id) for s in stores])
            if stores
            else ()
        ),
        name=msg.name,
    )


# --- statements: domain -> protobuf --------------------------------------------------


def _listing_to_pb(s: Listing) -> pb.Listing:
    if s.subject is None:
        raise RecordError("listing.subject: a redacted listing cannot be encoded")
    msg = pb.Listing(
        issuer=s.issuer,
        subject=subject_to_pb(s.subject),
        list=pb.ListKind.ValueType(s.list.value),
        conduct=pb.ConductType.ValueType(s.conduct.value),
        conduct_other=s.conduct_other,
        region_code=s.region_code,
        decision_ref=s.decision_ref,
        listed_at=timestamp_to_pb(s.listed_at),
        summary=s.summary,
        legal_basis=s.legal_basis,
    )
    if s.correction_deadline is not None:
        msg.correction_deadline.CopyFrom(timestamp_to_pb(s.correction_deadline))
    return msg


def _status_change_to_pb(s: StatusChange) -> pb.StatusChange:
    return pb.StatusChange(
        issuer=s.issuer,
        listing_id=s.listing_id,
        step=pb.LifecycleStep.ValueType(s.step.value),
        effective_at=timestamp_to_pb(s.effective_at),
        decision_ref=s.decision_ref,
        reason=s.reason,
        decided_by=s.decided_by,
        document_sha256=s.document_sha256,
    )


def _sanction_to_pb(s: SanctionConfirmation) -> pb.SanctionConfirmation:
    return pb.SanctionConfirmation(
        issuer=s.issuer,
        listing_id=s.listing_id,
        measure=pb.SanctionMeasure.ValueType(0 if s.measure is None else s.measure.value),
        measure_other=s.measure_other,
        action=pb.SanctionAction.ValueType(s.action.value),
        effective_at=timestamp_to_pb(s.effective_at),
        store_id=s.store_id,
        note=s.note,
    )


def _member_key_to_pb(k: MemberKey) -> pb.MemberKey:
    msg = pb.MemberKey(public_key=k.public_key, not_before=timestamp_to_pb(k.not_before))
    if k.not_after is not None:
        msg.not_after.CopyFrom(timestamp_to_pb(k.not_after))
    if k.possession is not None:
        msg.possession = k.possession
    return msg


def _member_record_to_pb(s: MemberRecord) -> pb.MemberRecord:
    msg = pb.MemberRecord(
        issuer=s.issuer,
        member_id=s.member_id,
        role=pb.Role.ValueType(s.role.value),
        region_code=s.region_code,
        keys=[_member_key_to_pb(k) for k in s.keys],
        status=pb.MemberStatus.ValueType(s.status.value),
        display_name=s.display_name,
        issued_at=timestamp_to_pb(s.issued_at),
    )
    if s.scope is not None:
        msg.scope = pb.AuthorityScope.ValueType(s.scope.value)
    return msg


def _monthly_report_to_pb(s: MonthlyReport) -> pb.MonthlyReport:
    return pb.MonthlyReport(
        issuer=s.issuer,
        month=s.month,
        unit=s.unit,
        checkpoint_size=s.checkpoint_size,
        checkpoint_root=s.checkpoint_root,
        content_type=s.content_type,
        content=s.content,
        files=[
            pb.ReportFile(name=f.name, media_type=f.media_type, sha256=f.sha256) for f in s.files
        ],
    )


def _government_measure_to_pb(s: GovernmentMeasure) -> pb.GovernmentMeasure:
    return pb.GovernmentMeasure(
        issuer=s.issuer,
        listing_id=s.listing_id,
        kind=pb.GovernmentMeasureKind.ValueType(s.kind.value),
        kind_other=s.kind_other,
        decision_ref=s.decision_ref,
        effective_at=timestamp_to_pb(s.effective_at),
        document_sha256=s.document_sha256,
        note=s.note,
    )


def _alliance_policy_to_pb(s: AlliancePolicy) -> pb.AlliancePolicy:
    return pb.AlliancePolicy(
        issuer=s.issuer,
        issued_at=timestamp_to_pb(s.issued_at),
        units_accepting_platform_reports=list(s.units_accepting_platform_reports),
        dispute_decision_working_days=s.dispute_decision_working_days,
        notice_working_days=s.notice_working_days,
        sanction_grace_days=s.sanction_grace_days,
        measure_requirements=[
            pb.MeasureRequirement(
                list=pb.ListKind.ValueType(0 if r.list is None else r.list.value),
                conduct=pb.ConductType.ValueType(0 if r.conduct is None else r.conduct.value),
                satisfying=[pb.SanctionMeasure.ValueType(m.value) for m in r.satisfying],
            )
            for r in s.measure_requirements
        ],
        publication_periods=[
            pb.PublicationPeriod(
                list=pb.ListKind.ValueType(0 if p.list is None else p.list.value),
                conduct=pb.ConductType.ValueType(0 if p.conduct is None else p.conduct.value),
                minimum_months=p.minimum_months,
                maximum_months=p.maximum_months,
            )
            for p in s.publication_periods
        ],
    )


def _holiday_calendar_to_pb(s: HolidayCalendar) -> pb.HolidayCalendar:
    return pb.HolidayCalendar(
        issuer=s.issuer,
        year=s.year,
        days=[pb.DayKind.ValueType(k.value) for k in s.days],
        source=s.source,
        issued_at=timestamp_to_pb(s.issued_at),
    )


def _report_submission_to_pb(s: ReportSubmission) -> pb.ReportSubmission:
    return pb.ReportSubmission(
        issuer=s.issuer,
        month=s.month,
        unit=s.unit,
        report_id=s.report_id,
        recipient=s.recipient,
        submitted_at=timestamp_to_pb(s.submitted_at),
        files=[pb.SubmittedFile(name=f.name, sha256=f.sha256) for f in s.files],
    )


StatementPb = (
    pb.Listing
    | pb.StatusChange
    | pb.SanctionConfirmation
    | pb.MemberRecord
    | pb.MonthlyReport
    | pb.GovernmentMeasure
    | pb.AlliancePolicy
    | pb.HolidayCalendar
    | pb.ReportSubmission
    | pb.Erasure
)


def _erasure_to_pb(s: Erasure) -> pb.Erasure:
    return pb.Erasure(
        issuer=s.issuer,
        record_ids=list(s.record_ids),
        basis=pb.ErasureBasis.ValueType(s.basis.value),
        legal_basis=s.legal_basis,
        effective_at=timestamp_to_pb(s.effective_at),
    )


def statement_to_pb(stmt: Statement) -> StatementPb:
    if isinstance(stmt, Listing):
        return _listing_to_pb(stmt)
    if isinstance(stmt, StatusChange):
        return _status_change_to_pb(stmt)
    if isinstance(stmt, SanctionConfirmation):
        return _sanction_to_pb(stmt)
    if isinstance(stmt, MemberRecord):
        return _member_record_to_pb(stmt)
    if isinstance(stmt, MonthlyReport):
        return _monthly_report_to_pb(stmt)
    if isinstance(stmt, GovernmentMeasure):
        return _government_measure_to_pb(stmt)
    if isinstance(stmt, AlliancePolicy):
        return _alliance_policy_to_pb(stmt)
    if isinstance(stmt, HolidayCalendar):
        return _holiday_calendar_to_pb(stmt)
    if isinstance(stmt, ReportSubmission):
        return _report_submission_to_pb(stmt)
    if isinstance(stmt, Erasure):
        return _erasure_to_pb(stmt)
    raise RecordError(f"not a statement: {type(stmt).__name__}")


@dataclass(frozen=True, slots=True)
class Encoded:
    """A statement ready to be signed: its payload, and the disclosures that travel
    beside the envelope (none for a type that commits to nothing)."""

    payload_type: str
    payload: bytes
    disclosures: tuple[Disclosure, ...] = ()


def encode_record(
    stmt: Statement,
    payload_type: str | None = None,
    *,
    salt: Salter = random_salt,
) -> Encoded:
    """Encode ``stmt`` as ``payload_type`` (default: the type a gateway signs it as,
    ``PAYLOAD_TYPES``). A redactable type moves each group's fields into a disclosure
    with its own salt (random by default; ``salt`` chooses: a gateway derives them from
    its key, tests fix them) and signs its commitment instead."""
    chosen = PAYLOAD_TYPES[type(stmt)] if payload_type is None else payload_type
    schema = PAYLOAD_SCHEMAS.get(chosen)
    if schema is None or not isinstance(stmt, schema.statement):
        raise RecordError(f"a {type(stmt).__name__} cannot be encoded as {chosen!r}")
    if getattr(stmt, "redacted", False):
        raise RecordError(
            f"{schema.name}: a redacted {schema.name} cannot be encoded: its committed values "
            "are unknown"
        )
    schema.check(stmt)
    msg = statement_to_pb(stmt)
    if not schema.groups:
        return Encoded(chosen, msg.SerializeToString(deterministic=True))
    return split_message(chosen, msg, salt=salt)


def split_message(payload_type: str, msg: Message, *, salt: Salter = random_salt) -> Encoded:
    """A statement's message, in the clear, as a redactable payload and its disclosures:
    each group's fields move into a disclosure, the payload signs their commitments.
    No rule is checked (``encode_record`` checks them first): tests and tools build
    records no client would with it."""
    schema = PAYLOAD_SCHEMAS.get(payload_type)
    if schema is None or not schema.groups or not isinstance(msg, schema.message):
        raise RecordError(f"{payload_type!r} is not a redactable type of this message")
    msg = _copy(msg)
    clear = msg.SerializeToString(deterministic=True)
    values: dict[Group, bytes] = {}
    for group, spec in schema.groups.items():
        part = schema.message()
        for path in spec.paths:
            _move(msg, part, path)
        values[group] = part.SerializeToString(deterministic=True)
    disclosures = disclose(values, clear, salt)
    commitments = cast(Any, msg).commitments  # the four redactable messages have field 16
    for d in disclosures:
        commitments.add(group=disclosure_pb.DisclosureGroup.ValueType(d.group), digest=d.digest)
    return Encoded(payload_type, msg.SerializeToString(deterministic=True), disclosures)


def _copy(msg: Message) -> Message:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def encode_statement(stmt: Statement, payload_type: str | None = None) -> tuple[str, bytes]:
    """Return ``(payload_type, payload)`` ready to be signed as a DSSE envelope, for a
    payload type without disclosures (``encode_record`` encodes every type)."""
    encoded = encode_record(stmt, payload_type)
    if encoded.disclosures:
        raise RecordError(
            f"{encoded.payload_type} travels with disclosures: encode it with encode_record"
        )
    return encoded.payload_type, encoded.payload


def seal(
    stmt: Statement, key: Any, payload_type: str | None = None, *, salt: Salter | None = None
) -> dsse.Envelope:
    """``stmt`` encoded, signed by ``key`` (a ``SigningKey``) and carrying its
    disclosures: what a member submits.

    The salts derive from ``key`` by default (``keyed_salt``): signing one statement
    twice gives one record id, so a retry or a re-run import stays idempotent, and no
    one without the key can predict a salt."""
    encoded = encode_record(stmt, payload_type, salt=keyed_salt(key.sign) if salt is None else salt)
    env = dsse.sign(encoded.payload_type, encoded.payload, key)
    return dsse.with_disclosures(env, encoded.disclosures)


# --- statements: protobuf -> domain --------------------------------------------------


def _listing_from_pb(m: pb.Listing, redacted: bool = False) -> Listing:
    if not redacted and not m.HasField("subject"):
        raise RecordError("listing.subject: must be set")
    return Listing(
        redacted=redacted,
        issuer=m.issuer,
        subject=None if redacted else subject_from_pb(m.subject),
        list=enum_from_pb(ListKind, m.list, "listing.list"),
        conduct=enum_from_pb(ConductType, m.conduct, "listing.conduct"),
        conduct_other=m.conduct_other,
        region_code=m.region_code,
        decision_ref=m.decision_ref,
        listed_at=_required_ts(m, "listed_at", "listing.listed_at"),
        correction_deadline=_optional_ts(m, "correction_deadline", "listing.correction_deadline"),
        summary=m.summary,
        legal_basis=m.legal_basis,
    )


def _status_change_from_pb(m: pb.StatusChange, redacted: bool = False) -> StatusChange:
    return StatusChange(
        redacted=redacted,
        issuer=m.issuer,
        listing_id=m.listing_id,
        step=enum_from_pb(LifecycleStep, m.step, "status_change.step"),
        effective_at=_required_ts(m, "effective_at", "status_change.effective_at"),
        decision_ref=m.decision_ref,
        reason=m.reason,
        decided_by=m.decided_by,
        document_sha256=m.document_sha256,
    )


def _sanction_from_pb(m: pb.SanctionConfirmation, redacted: bool = False) -> SanctionConfirmation:
    action = enum_from_pb(SanctionAction, m.action, "sanction_confirmation.action")
    # NOT_APPLICABLE carries no measure: UNSPECIFIED is its only value (the model
    # refuses any other); every other action needs one.
    measure = (
        None
        if action is SanctionAction.NOT_APPLICABLE and m.measure == 0
        else enum_from_pb(SanctionMeasure, m.measure, "sanction_confirmation.measure")
    )
    return SanctionConfirmation(
        redacted=redacted,
        issuer=m.issuer,
        listing_id=m.listing_id,
        measure=measure,
        measure_other=m.measure_other,
        action=action,
        effective_at=_required_ts(m, "effective_at", "sanction_confirmation.effective_at"),
        store_id=m.store_id,
        note=m.note,
    )


def _member_key_from_pb(m: pb.MemberKey) -> MemberKey:
    return MemberKey(
        public_key=m.public_key,
        not_before=_required_ts(m, "not_before", "member_key.not_before"),
        not_after=_optional_ts(m, "not_after", "member_key.not_after"),
        possession=m.possession if m.HasField("possession") else None,
    )


def _member_record_from_pb(m: pb.MemberRecord) -> MemberRecord:
    return MemberRecord(
        issuer=m.issuer,
        member_id=m.member_id,
        role=enum_from_pb(Role, m.role, "member_record.role"),
        region_code=m.region_code,
        keys=tuple(_member_key_from_pb(k) for k in m.keys),
        status=enum_from_pb(MemberStatus, m.status, "member_record.status"),
        display_name=m.display_name,
        issued_at=_required_ts(m, "issued_at", "member_record.issued_at"),
        scope=(
            enum_from_pb(AuthorityScope, m.scope, "member_record.scope")
            if m.HasField("scope")
            else None
        ),
    )


def _monthly_report_from_pb(m: pb.MonthlyReport) -> MonthlyReport:
    return MonthlyReport(
        issuer=m.issuer,
        month=m.month,
        unit=m.unit,
        checkpoint_size=m.checkpoint_size,
        checkpoint_root=m.checkpoint_root,
        content_type=m.content_type,
        content=m.content,
        files=tuple(ReportFile(f.name, f.media_type, f.sha256) for f in m.files),
    )


def _government_measure_from_pb(
    m: pb.GovernmentMeasure, redacted: bool = False
) -> GovernmentMeasure:
    return GovernmentMeasure(
        redacted=redacted,
        issuer=m.issuer,
        listing_id=m.listing_id,
        kind=enum_from_pb(GovernmentMeasureKind, m.kind, "government_measure.kind"),
        kind_other=m.kind_other,
        decision_ref=m.decision_ref,
        effective_at=_required_ts(m, "effective_at", "government_measure.effective_at"),
        document_sha256=m.document_sha256,
        note=m.note,
    )


def _optional_enum(cls: type[_E], value: int, field: str) -> _E | None:
    return None if value == 0 else enum_from_pb(cls, value, field)


def _alliance_policy_from_pb(m: pb.AlliancePolicy) -> AlliancePolicy:
    field = "alliance_policy.measure_requirements"
    periods = "alliance_policy.publication_periods"
    return AlliancePolicy(
        issuer=m.issuer,
        issued_at=_required_ts(m, "issued_at", "alliance_policy.issued_at"),
        units_accepting_platform_reports=tuple(m.units_accepting_platform_reports),
        dispute_decision_working_days=m.dispute_decision_working_days,
        notice_working_days=m.notice_working_days,
        sanction_grace_days=m.sanction_grace_days,
        measure_requirements=tuple(
            MeasureRequirement(
                list=_optional_enum(ListKind, r.list, f"{field}.list"),
                conduct=_optional_enum(ConductType, r.conduct, f"{field}.conduct"),
                satisfying=tuple(
                    enum_from_pb(SanctionMeasure, v, f"{field}.satisfying") for v in r.satisfying
                ),
            )
            for r in m.measure_requirements
        ),
        publication_periods=tuple(
            PublicationPeriod(
                list=_optional_enum(ListKind, p.list, f"{periods}.list"),
                conduct=_optional_enum(ConductType, p.conduct, f"{periods}.conduct"),
                minimum_months=p.minimum_months,
                maximum_months=p.maximum_months,
            )
            for p in m.publication_periods
        ),
    )


def _day_field(year: int, index: int) -> str:
    """``holiday_calendar.days[i]``, with its date when the year makes one."""
    try:
        day = date(year, 1, 1) + timedelta(days=index)
    except (ValueError, OverflowError):
        return f"holiday_calendar.days[{index}]"
    return f"holiday_calendar.days[{index}] ({day.isoformat()})"


def _holiday_calendar_from_pb(m: pb.HolidayCalendar) -> HolidayCalendar:
    return HolidayCalendar(
        issuer=m.issuer,
        year=m.year,
        days=tuple(enum_from_pb(DayKind, k, _day_field(m.year, i)) for i, k in enumerate(m.days)),
        source=m.source,
        issued_at=_required_ts(m, "issued_at", "holiday_calendar.issued_at"),
    )


def _report_submission_from_pb(m: pb.ReportSubmission) -> ReportSubmission:
    return ReportSubmission(
        issuer=m.issuer,
        month=m.month,
        unit=m.unit,
        report_id=m.report_id,
        recipient=m.recipient,
        submitted_at=_required_ts(m, "submitted_at", "report_submission.submitted_at"),
        files=tuple(SubmittedFile(name=f.name, sha256=f.sha256) for f in m.files),
    )


def _erasure_from_pb(m: pb.Erasure) -> Erasure:
    return Erasure(
        issuer=m.issuer,
        record_ids=tuple(
            record_id_from_pb(r, f"erasure.record_ids[{i}]") for i, r in enumerate(m.record_ids)
        ),
        basis=enum_from_pb(ErasureBasis, m.basis, "erasure.basis"),
        legal_basis=m.legal_basis,
        effective_at=_required_ts(m, "effective_at", "erasure.effective_at"),
    )


def statement_from_pb(msg: StatementPb) -> Statement:
    if isinstance(msg, pb.Erasure):
        return _erasure_from_pb(msg)
    if isinstance(msg, pb.Listing):
        return _listing_from_pb(msg)
    if isinstance(msg, pb.StatusChange):
        return _status_change_from_pb(msg)
    if isinstance(msg, pb.SanctionConfirmation):
        return _sanction_from_pb(msg)
    if isinstance(msg, pb.MonthlyReport):
        return _monthly_report_from_pb(msg)
    if isinstance(msg, pb.GovernmentMeasure):
        return _government_measure_from_pb(msg)
    if isinstance(msg, pb.AlliancePolicy):
        return _alliance_policy_from_pb(msg)
    if isinstance(msg, pb.HolidayCalendar):
        return _holiday_calendar_from_pb(msg)
    if isinstance(msg, pb.ReportSubmission):
        return _report_submission_from_pb(msg)
    return _member_record_from_pb(msg)


# --- payload bytes -------------------------------------------------------------------
#
# Strict parsing is per payload type. Several payload types may share one message
# (member-record v1 and v2 are both alliance.v1.MemberRecord), and a field added for v2
# must never be carried inside v1, where verifiers of that version would drop it
# silently. So each payload type lists, for every message reachable from its root,
# the field numbers it carries; any other field, set or merely present on the wire,
# is refused like a field the message does not define. A new v2 payload type is a row
# of PAYLOAD_SCHEMAS with its own field table.

_TIMESTAMP = "google.protobuf.Timestamp"

# The fields of alliance.v1 as first published (all v1 payload types).
_V1_FIELDS: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        "alliance.v1.Listing": frozenset(range(1, 12)),
        "alliance.v1.Subject": frozenset(range(1, 5)),
        "alliance.v1.StoreRef": frozenset({1, 2}),
        "alliance.v1.StatusChange": frozenset(range(1, 8)),
        "alliance.v1.SanctionConfirmation": frozenset(range(1, 9)),
        "alliance.v1.MemberRecord": frozenset(range(1, 9)),
        "alliance.v1.MemberKey": frozenset({1, 2, 3}),
        "alliance.v1.MonthlyReport": frozenset(range(1, 8)),
        # government-measure.v1 (protocol revision 3)
        "alliance.v1.GovernmentMeasure": frozenset(range(1, 9)),
        _TIMESTAMP: frozenset({1, 2}),
    }
)

# member-record.v2: MemberRecord.scope (9) and MemberKey.possession (4).
_MEMBER_RECORD_V2_FIELDS: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        **_V1_FIELDS,
        "alliance.v1.MemberRecord": _V1_FIELDS["alliance.v1.MemberRecord"] | {9},
        "alliance.v1.MemberKey": _V1_FIELDS["alliance.v1.MemberKey"] | {4},
    }
)

# monthly-report.v2: MonthlyReport.files (8), each a ReportFile.
_MONTHLY_REPORT_V2_FIELDS: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        **_V1_FIELDS,
        "alliance.v1.MonthlyReport": _V1_FIELDS["alliance.v1.MonthlyReport"] | {8},
        "alliance.v1.ReportFile": frozenset({1, 2, 3}),
    }
)


# status-change.v1 as of protocol revision 3: StatusChange.document_sha256 (8).
_STATUS_CHANGE_FIELDS: Mapping[str, frozenset[int]] = MappingProxyType(
    {**_V1_FIELDS, "alliance.v1.StatusChange": _V1_FIELDS["alliance.v1.StatusChange"] | {8}}
)

# alliance-policy.v1 (protocol revision 3).
_ALLIANCE_POLICY_FIELDS: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        "alliance.v1.AlliancePolicy": frozenset(range(1, 9)),
        "alliance.v1.MeasureRequirement": frozenset({1, 2, 3}),
        "alliance.v1.PublicationPeriod": frozenset({1, 2, 3, 4}),
        _TIMESTAMP: frozenset({1, 2}),
    }
)

# holiday-calendar.v1 and report-submission.v1 (alliance.v1 revision 3).
_HOLIDAY_CALENDAR_FIELDS: Mapping[str, frozenset[int]] = MappingProxyType(
    {"alliance.v1.HolidayCalendar": frozenset(range(1, 6)), _TIMESTAMP: frozenset({1, 2})}
)
_REPORT_SUBMISSION_FIELDS: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        "alliance.v1.ReportSubmission": frozenset(range(1, 8)),
        "alliance.v1.SubmittedFile": frozenset({1, 2}),
        _TIMESTAMP: frozenset({1, 2}),
    }
)


# erasure.v1 (protocol revision 4).
_ERASURE_FIELDS: Mapping[str, frozenset[int]] = MappingProxyType(
    {"alliance.v1.Erasure": frozenset(range(1, 6)), _TIMESTAMP: frozenset({1, 2})}
)

# --- redactable payload types (protocol revision 4) ---------------------------------
#
# A v2 payload carries its message without the fields of its groups and with one
# Commitment per group (field 16); each group's fields travel as a disclosure whose
# value is the same message holding only those fields (docs/PROTOCOL.md, section 3.1).
# A group is named by the paths of its fields (a nested path moves a field of a
# submessage: Listing.subject.uscc).

_COMMITMENTS = 16
_COMMITMENT = "alliance.v1.Commitment"
_Paths = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class _Group:
    paths: _Paths
    fields: Mapping[str, frozenset[int]]  # what the disclosure's value may carry


def _group(paths: _Paths, fields: dict[str, frozenset[int]]) -> _Group:
    return _Group(paths, MappingProxyType({**fields, _TIMESTAMP: frozenset()}))


_LISTING_GROUPS: Mapping[Group, _Group] = MappingProxyType(
    {
        Group.SUBJECT: _group(
            (("subject", "uscc"), ("subject", "person_hmac"), ("subject", "name")),
            {"alliance.v1.Listing": frozenset({2}), "alliance.v1.Subject": frozenset({1, 2, 4})},
        ),
        Group.TEXT: _group(
            (("decision_ref",), ("summary",), ("legal_basis",)),
            {"alliance.v1.Listing": frozenset({7, 10, 11})},
        ),
        Group.STORES: _group(
            (("subject", "stores"),),
            {
                "alliance.v1.Listing": frozenset({2}),
                "alliance.v1.Subject": frozenset({3}),
                "alliance.v1.StoreRef": frozenset({1, 2}),
            },
        ),
    }
)
_STATUS_CHANGE_GROUPS: Mapping[Group, _Group] = MappingProxyType(
    {
        Group.TEXT: _group(
            (("decision_ref",), ("reason",), ("decided_by",)),
            {"alliance.v1.StatusChange": frozenset({5, 6, 7})},
        )
    }
)
_SANCTION_GROUPS: Mapping[Group, _Group] = MappingProxyType(
    {
        Group.TEXT: _group((("note",),), {"alliance.v1.SanctionConfirmation": frozenset({8})}),
        Group.STORES: _group(
            (("store_id",),), {"alliance.v1.SanctionConfirmation": frozenset({7})}
        ),
    }
)
_GOVERNMENT_MEASURE_GROUPS: Mapping[Group, _Group] = MappingProxyType(
    {
        Group.TEXT: _group(
            (("decision_ref",), ("note",)), {"alliance.v1.GovernmentMeasure": frozenset({5, 8})}
        )
    }
)


def _v2_fields(
    v1: Mapping[str, frozenset[int]], root: str, clear: frozenset[int]
) -> Mapping[str, frozenset[int]]:
    """The v2 payload's field table: ``root`` carries ``clear`` and the commitments;
    the messages only the groups used (Subject, StoreRef) are gone from it."""
    table = {
        k: v for k, v in v1.items() if k not in ("alliance.v1.Subject", "alliance.v1.StoreRef")
    }
    table[root] = clear | {_COMMITMENTS}
    table[_COMMITMENT] = frozenset({1, 2})
    return MappingProxyType(table)


_LISTING_V2_FIELDS = _v2_fields(_V1_FIELDS, "alliance.v1.Listing", frozenset({1, 3, 4, 5, 6, 8, 9}))
_STATUS_CHANGE_V2_FIELDS = _v2_fields(
    _STATUS_CHANGE_FIELDS, "alliance.v1.StatusChange", frozenset({1, 2, 3, 4, 8})
)
_SANCTION_V2_FIELDS = _v2_fields(
    _V1_FIELDS, "alliance.v1.SanctionConfirmation", frozenset({1, 2, 3, 4, 5, 6})
)
_GOVERNMENT_MEASURE_V2_FIELDS = _v2_fields(
    _V1_FIELDS, "alliance.v1.GovernmentMeasure", frozenset({1, 2, 3, 4, 6, 7})
)


def _move(src: Message, dst: Message, path: tuple[str, ...]) -> None:
    """Move the field at ``path`` from ``src`` to ``dst`` (absent stays absent)."""
    name = path[0]
    fd = src.DESCRIPTOR.fields_by_name[name]
    if len(path) > 1:
        if not src.HasField(name):
            return
        child = getattr(src, name)
        _move(child, getattr(dst, name), path[1:])
        if not child.ListFields() and not len(UnknownFieldSet(child)):
            src.ClearField(name)  # emptied (what it held unknown stays, to be refused)
        return
    if fd.is_repeated:
        getattr(dst, name).extend(getattr(src, name))
    elif fd.message_type is not None or fd.has_presence:
        if src.HasField(name):
            if fd.message_type is not None:
                getattr(dst, name).CopyFrom(getattr(src, name))
            else:
                setattr(dst, name, getattr(src, name))
    elif getattr(src, name):
        setattr(dst, name, getattr(src, name))
    src.ClearField(name)


def _no_rules(_: Statement) -> None:
    pass


def _v1_member_record(stmt: Statement) -> None:
    assert isinstance(stmt, MemberRecord)
    check_member_record_v1(stmt)


def _v2_member_record(stmt: Statement) -> None:
    assert isinstance(stmt, MemberRecord)
    check_member_record_v2(stmt)


def _v1_monthly_report(stmt: Statement) -> None:
    assert isinstance(stmt, MonthlyReport)
    if stmt.files:
        raise RecordError("monthly_report.files: monthly-report.v1 carries no files (v2 does)")


@dataclass(frozen=True)
class PayloadSchema:
    """How one payload type is parsed: its message, the fields it carries (by message
    full name, at every depth) and the rules of the type on top of the model's."""

    payload_type: str
    name: str  # root of the field paths in error messages
    message: type[Message]
    statement: type[Statement]
    fields: Mapping[str, frozenset[int]]
    from_pb: Callable[[Any], Statement]
    check: Callable[[Statement], None] = _no_rules
    # Redactable types (v2): the committed groups, and the statement read without
    # its disclosures.
    groups: Mapping[Group, _Group] = field(default_factory=dict)
    redacted_from_pb: Callable[[Any], Statement] | None = None


def _redactable(
    v1: str,
    v2: str,
    name: str,
    message: type[Message],
    statement: type[Statement],
    v1_fields: Mapping[str, frozenset[int]],
    v2_fields: Mapping[str, frozenset[int]],
    from_pb: Callable[..., Statement],
    groups: Mapping[Group, _Group],
) -> tuple[PayloadSchema, PayloadSchema]:
    """A statement's clear v1 form and its redactable v2 form: one message, and one
    ``from_pb`` that reads the v2 payload without disclosures as a redacted statement."""
    return (
        PayloadSchema(v1, name, message, statement, v1_fields, from_pb),
        PayloadSchema(
            v2,
            name,
            message,
            statement,
            v2_fields,
            from_pb,
            groups=groups,
            redacted_from_pb=functools.partial(from_pb, redacted=True),
        ),
    )


PAYLOAD_SCHEMAS: Mapping[str, PayloadSchema] = MappingProxyType(
    {
        schema.payload_type: schema
        for schema in (
            *_redactable(
                LISTING_V1,
                LISTING_V2,
                "listing",
                pb.Listing,
                Listing,
                _V1_FIELDS,
                _LISTING_V2_FIELDS,
                _listing_from_pb,
                _LISTING_GROUPS,
            ),
            *_redactable(
                STATUS_CHANGE_V1,
                STATUS_CHANGE_V2,
                "status_change",
                pb.StatusChange,
                StatusChange,
                _STATUS_CHANGE_FIELDS,
                _STATUS_CHANGE_V2_FIELDS,
                _status_change_from_pb,
                _STATUS_CHANGE_GROUPS,
            ),
            *_redactable(
                SANCTION_CONFIRMATION_V1,
                SANCTION_CONFIRMATION_V2,
                "sanction_confirmation",
                pb.SanctionConfirmation,
                SanctionConfirmation,
                _V1_FIELDS,
                _SANCTION_V2_FIELDS,
                _sanction_from_pb,
                _SANCTION_GROUPS,
            ),
            PayloadSchema(
                MEMBER_RECORD_V1,
                "member_record",
                pb.MemberRecord,
                MemberRecord,
                _V1_FIELDS,
                _member_record_from_pb,
                _v1_member_record,
            ),
            PayloadSchema(
                MEMBER_RECORD_V2,
                "member_record",
                pb.MemberRecord,
                MemberRecord,
                _MEMBER_RECORD_V2_FIELDS,
                _member_record_from_pb,
                _v2_member_record,
            ),
            PayloadSchema(
                MONTHLY_REPORT_V1,
                "monthly_report",
                pb.MonthlyReport,
                MonthlyReport,
                _V1_FIELDS,
                _monthly_report_from_pb,
                _v1_monthly_report,
            ),
            PayloadSchema(
                MONTHLY_REPORT_V2,
                "monthly_report",
                pb.MonthlyReport,
                MonthlyReport,
                _MONTHLY_REPORT_V2_FIELDS,
                _monthly_report_from_pb,
            ),
            *_redactable(
                GOVERNMENT_MEASURE_V1,
                GOVERNMENT_MEASURE_V2,
                "government_measure",
                pb.GovernmentMeasure,
                GovernmentMeasure,
                _V1_FIELDS,
                _GOVERNMENT_MEASURE_V2_FIELDS,
                _government_measure_from_pb,
                _GOVERNMENT_MEASURE_GROUPS,
            ),
            PayloadSchema(
                ERASURE_V1, "erasure", pb.Erasure, Erasure, _ERASURE_FIELDS, _erasure_from_pb
            ),
            PayloadSchema(
                ALLIANCE_POLICY_V1,
                "alliance_policy",
                pb.AlliancePolicy,
                AlliancePolicy,
                _ALLIANCE_POLICY_FIELDS,
                _alliance_policy_from_pb,
            ),
            PayloadSchema(
                PAYLOAD_TYPES[HolidayCalendar],
                "holiday_calendar",
                pb.HolidayCalendar,
                HolidayCalendar,
                _HOLIDAY_CALENDAR_FIELDS,
                _holiday_calendar_from_pb,
            ),
            PayloadSchema(
                PAYLOAD_TYPES[ReportSubmission],
                "report_submission",
                pb.ReportSubmission,
                ReportSubmission,
                _REPORT_SUBMISSION_FIELDS,
                _report_submission_from_pb,
            ),
        )
    }
)


def _check_fields(msg: Message, fields: Mapping[str, frozenset[int]], path: str) -> None:
    """Refuse fields the payload type does not carry, at any depth.

    A signer could otherwise put meaning into a field that verifiers silently drop.
    """
    if len(UnknownFieldSet(msg)):
        raise RecordError(f"{path}: unknown fields (not in alliance.v1)")
    carried = fields.get(msg.DESCRIPTOR.full_name, frozenset())
    for desc, value in msg.ListFields():
        if desc.number not in carried:
            raise RecordError(
                f"{path}: unknown field {desc.number} ({desc.name} is not part of this "
                "payload type)"
            )
        if desc.message_type is None:
            continue
        children = value if desc.is_repeated else [value]
        for child in children:
            _check_fields(child, fields, f"{path}.{desc.name}")


@dataclass(frozen=True, slots=True)
class OpenedPayload:
    """Payload bytes parsed into their message, not yet checked against any rule.

    A verifier reads only ``issuer`` from it, to choose the keys the signature must
    verify with (``gateway.service.directory``); ``statement()`` applies every rule and
    is called only once the signature verified.
    """

    schema: PayloadSchema
    message: Any

    @property
    def issuer(self) -> str:
        issuer = self.message.issuer
        assert isinstance(issuer, str)
        return issuer

    @property
    def redactable(self) -> bool:
        return bool(self.schema.groups)

    def commitments(self) -> dict[Group, bytes]:
        """The signed digest per group of a redactable payload: exactly one for each
        group of its type, 32 bytes each (``RecordError`` otherwise)."""
        schema, out = self.schema, {}
        for i, c in enumerate(self.message.commitments):
            where = f"{schema.name}.commitments[{i}]"
            group = enum_from_pb(Group, c.group, f"{where}.group")
            if group not in schema.groups:
                raise RecordError(f"{where}.group: a {schema.name} commits to no {group.name}")
            if group in out:
                raise RecordError(f"{where}.group: {group.name} committed twice")
            if len(c.digest) != 32:
                raise RecordError(f"{where}.digest: must be 32 bytes, got {len(c.digest)}")
            out[group] = bytes(c.digest)
        missing = [g.name for g in schema.groups if g not in out]
        if missing:
            raise RecordError(f"{schema.name}.commitments: missing {', '.join(missing)}")
        return out

    def statement(
        self, disclosures: Sequence[Disclosure] = (), *, partial: bool = False
    ) -> Statement:
        """The statement under every rule. A redactable payload is read with its
        disclosures, each checked against its commitment, or without any (erased or
        withheld: a redacted statement); other payloads take none. ``partial`` reads
        a subset of the groups, the others as empty (the public feed's proofs)."""
        schema = self.schema
        _check_fields(self.message, schema.fields, schema.name)
        if not schema.groups:
            if disclosures:
                raise RecordError(f"{schema.name}: this payload type has no disclosures")
            stmt = schema.from_pb(self.message)
        else:
            values = check_disclosures(
                self.commitments(), disclosures, schema.name, partial=partial
            )
            if values:
                full = schema.message()
                full.CopyFrom(self.message)
                for group, value in sorted(values.items()):
                    full.MergeFrom(_disclosed(schema, group, value))
                stmt = schema.from_pb(full)
            else:
                assert schema.redacted_from_pb is not None
                stmt = schema.redacted_from_pb(self.message)
        schema.check(stmt)
        return stmt


def _disclosed(schema: PayloadSchema, group: Group, value: bytes) -> Message:
    """A disclosure's value parsed strictly: the schema's message with only the
    group's fields."""
    where = f"{schema.name}.disclosures[{group.name}]"
    part = schema.message()
    try:
        part.ParseFromString(value)
    except DecodeError as e:
        raise RecordError(f"{where}: value is not a valid {schema.name} message: {e}") from e
    _check_fields(part, schema.groups[group].fields, where)
    return part


def open_payload(payload_type: str, payload: bytes) -> OpenedPayload:
    """Parse payload bytes of a known payload type (``RecordError`` otherwise)."""
    schema = PAYLOAD_SCHEMAS.get(payload_type)
    if schema is None:
        raise RecordError(f"unsupported payload_type {payload_type!r}")
    if not isinstance(payload, bytes):
        raise RecordError(f"{schema.name}: payload must be bytes")
    msg = schema.message()
    try:
        msg.ParseFromString(payload)
    except DecodeError as e:
        raise RecordError(
            f"{schema.name}: payload is not a valid {schema.name} message: {e}"
        ) from e
    return OpenedPayload(schema, msg)


def decode_statement(
    payload_type: str, payload: bytes, disclosures: Sequence[Disclosure] = ()
) -> Statement:
    """Parse verified payload bytes (and a redactable record's disclosures) into a
    validated statement."""
    return open_payload(payload_type, payload).statement(disclosures)


def decode_public(
    payload_type: str, payload: bytes, disclosures: Sequence[Disclosure]
) -> Statement:
    """A statement as the public feed proves it: with the disclosures it publishes (no
    store references), each checked against its commitment, the rest read as empty."""
    return open_payload(payload_type, payload).statement(disclosures, partial=True)


def decode_envelope(env: dsse.Envelope) -> Statement:
    """The statement of a verified envelope, read with the disclosures it carries."""
    return decode_statement(env.payload_type, env.payload, env.disclosures)


# --- envelopes -----------------------------------------------------------------------


def envelope_from_pb(msg: env_pb.Envelope) -> dsse.Envelope:
    """The envelope as received: payload bytes kept verbatim, shape checked."""
    if not msg.payload_type and not msg.payload:
        raise RecordError("envelope: missing (no payload and no payload_type)")
    return dsse.Envelope(
        payload=bytes(msg.payload),
        payload_type=msg.payload_type,
        signatures=tuple(dsse.Signature(sig=bytes(s.sig), keyid=s.keyid) for s in msg.signatures),
        disclosures=disclosures_from_pb(msg.disclosures),
    )


def disclosures_from_pb(items: Sequence[disclosure_pb.Disclosure]) -> tuple[Disclosure, ...]:
    """Disclosures as received; checked against the commitments when the statement is
    read (``OpenedPayload.statement``)."""
    out = []
    for i, d in enumerate(items):
        group = enum_from_pb(Group, d.group, f"envelope.disclosures[{i}].group")
        if len(d.salt) != 32:
            raise RecordError(
                f"envelope.disclosures[{i}].salt: must be 32 bytes, got {len(d.salt)}"
            )
        out.append(Disclosure(group, bytes(d.salt), bytes(d.value)))
    return tuple(out)


def disclosures_to_pb(items: Sequence[Disclosure]) -> list[disclosure_pb.Disclosure]:
    return [
        disclosure_pb.Disclosure(
            group=disclosure_pb.DisclosureGroup.ValueType(d.group), salt=d.salt, value=d.value
        )
        for d in items
    ]


def envelope_to_pb(env: dsse.Envelope) -> env_pb.Envelope:
    return env_pb.Envelope(
        payload=env.payload,
        payload_type=env.payload_type,
        signatures=[env_pb.Signature(sig=s.sig, keyid=s.keyid) for s in env.signatures],
        disclosures=disclosures_to_pb(env.disclosures),
    )


def stored_envelope(
    payload_type: str,
    payload: bytes,
    signatures: tuple[tuple[str, bytes], ...],
    disclosures: tuple[Disclosure, ...] = (),
) -> dsse.Envelope:
    return dsse.Envelope(
        payload=payload,
        payload_type=payload_type,
        signatures=tuple(dsse.Signature(sig=sig, keyid=keyid) for keyid, sig in signatures),
        disclosures=disclosures,
    )


def record_id_from_pb(value: str, field: str) -> str:
    """A record id: 64 lowercase hex characters (SHA-256 of the PAE bytes)."""
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise RecordError(f"{field}: must be 64 lowercase hex characters, got {value[:80]!r}")
    return value
