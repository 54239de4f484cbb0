"""The statements validate themselves: every field rule has a rejecting test."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.statements import (
    CHINA_STANDARD_TIME,
    GOVERNMENT_MEASURE_V1,
    LISTING_V1,
    PAYLOAD_TYPES,
    SANCTION_CONFIRMATION_V1,
    STATEMENT_TYPES,
    STATUS_CHANGE_V1,
    SUPERSEDED_TYPES,
    AlliancePolicy,
    ConductType,
    Erasure,
    GovernmentMeasure,
    HolidayCalendar,
    LifecycleStep,
    Listing,
    ListKind,
    MemberKey,
    MemberRecord,
    MemberStatus,
    MonthlyReport,
    ReportSubmission,
    Role,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
    StoreRef,
    Subject,
    add_months,
)
from gateway.errors import RecordError

PLATFORM = "spiffe://zj.alliance/platform/shop"
AUTHORITY = "spiffe://zj.alliance/authority/zj-credit"
GATEWAY = "spiffe://zj.alliance/gateway/hz"
USCC = "91330100716105852F"
T0 = datetime(2024, 11, 30, 8, 0, tzinfo=UTC)
LID = "ab" * 32


def listing(**kw: Any) -> Listing:
    fields: dict[str, Any] = {
        "issuer": PLATFORM,
        "subject": Subject(uscc=USCC, name="Seller Ltd"),
        "list": ListKind.BLACKLIST,
        "conduct": ConductType.FAKE_TRANSACTIONS,
        "region_code": "330100",
        "decision_ref": "ZJ-2024-001",
        "listed_at": T0,
    }
    fields.update(kw)
    return Listing(**fields)


def change(**kw: Any) -> StatusChange:
    fields: dict[str, Any] = {
        "issuer": PLATFORM,
        "listing_id": LID,
        "step": LifecycleStep.NOTICE_SERVED,
        "effective_at": T0,
    }
    fields.update(kw)
    return StatusChange(**fields)


def sanction(**kw: Any) -> SanctionConfirmation:
    fields: dict[str, Any] = {
        "issuer": PLATFORM,
        "listing_id": LID,
        "measure": SanctionMeasure.CLOSE_STORE,
        "action": SanctionAction.APPLIED,
        "effective_at": T0,
    }
    fields.update(kw)
    return SanctionConfirmation(**fields)


def key(**kw: Any) -> MemberKey:
    fields: dict[str, Any] = {"public_key": b"\x01" * 32, "not_before": T0}
    fields.update(kw)
    return MemberKey(**fields)


def member(**kw: Any) -> MemberRecord:
    fields: dict[str, Any] = {
        "issuer": GATEWAY,
        "member_id": PLATFORM,
        "role": Role.PLATFORM,
        "region_code": "330100",
        "keys": (key(),),
        "status": MemberStatus.ACTIVE,
        "issued_at": T0,
    }
    fields.update(kw)
    return MemberRecord(**fields)


# --- enums ---------------------------------------------------------------------------


def test_enums_have_no_unspecified_member() -> None:
    for cls in (ListKind, ConductType, LifecycleStep, SanctionMeasure, SanctionAction, Role):
        assert 0 not in {m.value for m in cls}
    assert 0 not in {m.value for m in MemberStatus}


def test_conduct_belongs_to_one_list_except_other() -> None:
    for c in ConductType:
        if c is ConductType.OTHER:
            assert c.lists == frozenset(ListKind)
        elif c.value <= 19:
            assert c.lists == {ListKind.BLACKLIST}
        else:
            assert 20 <= c.value <= 39
            assert c.lists == {ListKind.KEY_SCRUTINY}


# --- add_months ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "end"),
    [
        ((2024, 11, 30), 3, (2025, 2, 28)),
        ((2023, 11, 30), 3, (2024, 2, 29)),
        ((2024, 1, 31), 1, (2024, 2, 29)),
        ((2024, 10, 15), 3, (2025, 1, 15)),
        ((2024, 3, 31), -1, (2024, 2, 29)),
        ((2024, 12, 31), 12, (2025, 12, 31)),
    ],
)
def test_add_months_clamps_day(
    start: tuple[int, int, int], n: int, end: tuple[int, int, int]
) -> None:
    t = datetime(*start, 13, 5, tzinfo=UTC)
    assert add_months(t, n) == datetime(*end, 13, 5, tzinfo=UTC)


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2900, 1, 1), timezones=st.just(UTC)
    )
)
def test_add_months_stays_in_target_month(t: datetime) -> None:
    """Months are counted on the China Standard Time calendar (PROTOCOL.md)."""
    out = add_months(t, 3)
    local_in, local_out = t.astimezone(CHINA_STANDARD_TIME), out.astimezone(CHINA_STANDARD_TIME)
    assert (local_out.year * 12 + local_out.month) - (local_in.year * 12 + local_in.month) == 3
    assert local_out.day <= local_in.day
    assert local_out.time() == local_in.time()


def test_add_months_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError) as caught:
        add_months(datetime(2026, 1, 1), 3)
    assert str(caught.value) == "add_months needs a timezone-aware datetime"


# --- subject -------------------------------------------------------------------------


def test_subject_keys() -> None:
    assert Subject(uscc=USCC).key == f"uscc:{USCC}"
    assert Subject(person_hmac=bytes(range(32))).key == "person:" + bytes(range(32)).hex()


def test_subject_stores_list_becomes_tuple() -> None:
    s = Subject(uscc=USCC, stores=[StoreRef(PLATFORM, "s1")])  # type: ignore[arg-type]
    assert s.stores == (StoreRef(PLATFORM, "s1"),)
    assert hash(s) == hash(Subject(uscc=USCC, stores=(StoreRef(PLATFORM, "s1"),)))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({}, r"^subject: exactly one of uscc or person_hmac must be set$"),
        ({"uscc": USCC, "person_hmac": b"\0" * 32}, r"^subject: exactly one of"),
        ({"uscc": "91110108551385082R"}, r"^subject\.uscc: check character is R, expected Q$"),
        ({"person_hmac": b"\0" * 31}, r"^subject\.person_hmac: must be 32 bytes .*got 31$"),
        ({"person_hmac": "00" * 32}, r"^subject\.person_hmac: must be bytes$"),
        ({"person_hmac": b"\0" * 32, "name": "Zhang"}, r"^subject\.name: must be empty for a"),
        ({"uscc": USCC, "name": "n" * 257}, r"^subject\.name: must be at most 256 characters"),
        ({"uscc": USCC, "name": "a\nb"}, r"^subject\.name: must not contain control characters"),
        ({"uscc": USCC, "stores": ("x",)}, r"^subject\.stores: must be StoreRef values$"),
        (
            {"uscc": USCC, "stores": (StoreRef(PLATFORM, "a"), StoreRef(PLATFORM, "a"))},
            r"^subject\.stores: must not repeat a store$",
        ),
        (
            {"uscc": USCC, "stores": tuple(StoreRef(PLATFORM, str(i)) for i in range(101))},
            r"^subject\.stores: at most 100 stores$",
        ),
    ],
)
def test_subject_errors(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        Subject(**kw)


@pytest.mark.parametrize(
    ("platform", "store_id", "message"),
    [
        (AUTHORITY, "s", r"^store\.platform: must be a platform member id$"),
        ("shop", "s", r"^store\.platform: must start with spiffe://"),
        (PLATFORM, "", r"^store\.store_id: must not be empty$"),
        (PLATFORM, "s" * 129, r"^store\.store_id: must be at most 128 characters"),
    ],
)
def test_store_ref_errors(platform: str, store_id: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        StoreRef(platform, store_id)


# --- listing -------------------------------------------------------------------------


def test_listing_default_deadline_is_three_calendar_months() -> None:
    assert listing().deadline == datetime(2025, 2, 28, 8, 0, tzinfo=UTC)
    t = datetime(2023, 11, 30, tzinfo=UTC)
    assert listing(listed_at=t).deadline == datetime(2024, 2, 29, tzinfo=UTC)


def test_listing_explicit_deadline() -> None:
    d = T0 + timedelta(days=10)
    assert listing(correction_deadline=d).deadline == d


def test_listing_normalises_to_utc() -> None:
    cst = timezone(timedelta(hours=8))
    lst = listing(listed_at=datetime(2024, 12, 1, 0, 30, tzinfo=cst))
    assert lst.listed_at == datetime(2024, 11, 30, 16, 30, tzinfo=UTC)
    assert lst.listed_at.tzinfo is UTC


def test_listing_accepts_int_enums_and_stores_members() -> None:
    lst = listing(list=1, conduct=4)
    assert lst.list is ListKind.BLACKLIST
    assert lst.conduct is ConductType.FAKE_TRANSACTIONS


@pytest.mark.parametrize(
    ("kind", "conduct"),
    [
        (ListKind.BLACKLIST, ConductType.JUDGMENT_DEFAULTER),
        (ListKind.KEY_SCRUTINY, ConductType.FALSE_ADVERTISING_PENALTY),
        (ListKind.BLACKLIST, ConductType.OTHER),
        (ListKind.KEY_SCRUTINY, ConductType.OTHER),
    ],
)
def test_listing_conduct_fits_list(kind: ListKind, conduct: ConductType) -> None:
    other = "new conduct" if conduct is ConductType.OTHER else ""
    assert listing(list=kind, conduct=conduct, conduct_other=other).conduct is conduct


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"issuer": "platform/shop"}, r"^listing\.issuer: must start with spiffe://"),
        ({"issuer": None}, r"^listing\.issuer: must be a member id string$"),
        ({"subject": USCC}, r"^listing\.subject: must be a Subject$"),
        ({"list": 3}, r"^listing\.list: 3 is not a ListKind$"),
        ({"list": "BLACKLIST"}, r"^listing\.list: must be a ListKind$"),
        ({"conduct": 0}, r"^listing\.conduct: 0 is not a ConductType$"),
        (
            {"list": ListKind.KEY_SCRUTINY},
            r"^listing\.conduct: FAKE_TRANSACTIONS belongs to another list than KEY_SCRUTINY$",
        ),
        (
            {"conduct": ConductType.CONTRACT_BREACH_PENALTY},
            r"^listing\.conduct: CONTRACT_BREACH_PENALTY belongs to another list than BLACKLIST",
        ),
        ({"conduct": ConductType.OTHER}, r"^listing\.conduct_other: required when conduct is"),
        ({"conduct_other": "x"}, r"^listing\.conduct_other: must be empty unless conduct is"),
        (
            {"conduct": ConductType.OTHER, "conduct_other": "x" * 257},
            r"^listing\.conduct_other: must be at most 256",
        ),
        ({"region_code": "710000"}, r"^listing\.region_code: prefix 71 is not"),
        ({"region_code": "33"}, r"^listing\.region_code: must be 6 ASCII digits"),
        ({"decision_ref": ""}, r"^listing\.decision_ref: must not be empty$"),
        ({"decision_ref": "r" * 257}, r"^listing\.decision_ref: must be at most 256 characters"),
        ({"decision_ref": "a\x1b[31m"}, r"^listing\.decision_ref: must not contain control"),
        ({"listed_at": datetime(2024, 1, 1)}, r"^listing\.listed_at: must be timezone-aware"),
        ({"listed_at": "2024-01-01"}, r"^listing\.listed_at: must be a datetime$"),
        (
            {"listed_at": datetime(9999, 11, 1, tzinfo=UTC)},
            r"^listing\.listed_at: too late for a default correction deadline$",
        ),
        (
            {"correction_deadline": datetime(2025, 1, 1)},
            r"^listing\.correction_deadline: must be timezone-aware \(UTC\)$",
        ),
        ({"correction_deadline": T0}, r"^listing\.correction_deadline: must be after listed_at$"),
        (
            {"correction_deadline": T0 - timedelta(days=1)},
            r"^listing\.correction_deadline: must be after listed_at$",
        ),
        ({"summary": "s" * 2049}, r"^listing\.summary: must be at most 2048 characters"),
        ({"summary": "a\x00b"}, r"^listing\.summary: must not contain control characters$"),
        ({"legal_basis": "s" * 2049}, r"^listing\.legal_basis: must be at most 2048"),
        ({"legal_basis": 5}, r"^listing\.legal_basis: must be a string$"),
    ],
)
def test_listing_errors(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        listing(**kw)


def test_listing_free_text_may_break_lines() -> None:
    assert listing(summary="line 1\nline 2\tx").summary == "line 1\nline 2\tx"


def test_listing_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        listing().decision_ref = "x"  # type: ignore[misc]


# --- status change -------------------------------------------------------------------


def test_status_change_ok() -> None:
    removed = change(
        step=LifecycleStep.REMOVED, decision_ref="court-1", reason="deleted", decided_by="court"
    )
    assert removed.step is LifecycleStep.REMOVED
    corrected = change(step=LifecycleStep.CORRECTED, decision_ref="d", reason="fixed")
    assert corrected.decided_by == ""
    assert change(step=LifecycleStep.ESCALATED).decision_ref == ""


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"issuer": ""}, r"^status_change\.issuer: must start with spiffe://"),
        ({"listing_id": "AB" * 32}, r"^status_change\.listing_id: must be a record id \(64 low"),
        ({"listing_id": "ab" * 31}, r"^status_change\.listing_id: must be a record id"),
        ({"step": LifecycleStep.LISTED}, r"^status_change\.step: LISTED is stated by the listing"),
        ({"step": 0}, r"^status_change\.step: 0 is not a LifecycleStep$"),
        ({"effective_at": datetime(2024, 1, 1)}, r"^status_change\.effective_at: must be tim"),
        (
            {"step": LifecycleStep.REMOVED, "reason": "r", "decided_by": "c"},
            r"^status_change\.decision_ref: must not be empty$",
        ),
        (
            {"step": LifecycleStep.REMOVED, "decision_ref": "d", "decided_by": "c"},
            r"^status_change\.reason: must not be empty$",
        ),
        (
            {"step": LifecycleStep.REMOVED, "decision_ref": "d", "reason": "r"},
            r"^status_change\.decided_by: must not be empty$",
        ),
        (
            {"step": LifecycleStep.CORRECTED, "reason": "r"},
            r"^status_change\.decision_ref: must not be empty$",
        ),
        (
            {"step": LifecycleStep.CORRECTED, "decision_ref": "d"},
            r"^status_change\.reason: must not be empty$",
        ),
        ({"decision_ref": "d" * 257}, r"^status_change\.decision_ref: must be at most 256"),
        ({"reason": "r" * 2049}, r"^status_change\.reason: must be at most 2048"),
        ({"decided_by": "c" * 257}, r"^status_change\.decided_by: must be at most 256"),
    ],
)
def test_status_change_errors(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        change(**kw)


# --- sanction confirmation -----------------------------------------------------------


def test_sanction_other_measure() -> None:
    s = sanction(measure=SanctionMeasure.OTHER, measure_other="suspend live streaming")
    assert s.measure_other == "suspend live streaming"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"issuer": "spiffe://zj/bad/x"}, r"^sanction_confirmation\.issuer: role 'bad'"),
        ({"listing_id": "x"}, r"^sanction_confirmation\.listing_id: must be a record id"),
        ({"measure": 14}, r"^sanction_confirmation\.measure: 14 is not a SanctionMeasure$"),
        ({"action": 4}, r"^sanction_confirmation\.action: 4 is not a SanctionAction$"),
        ({"measure": None}, r"^sanction_confirmation\.measure: required when the action is"),
        (
            {"action": SanctionAction.NOT_APPLICABLE},
            r"^sanction_confirmation\.measure: must be unset when the action is NOT_APPLICABLE",
        ),
        (
            {"action": SanctionAction.NOT_APPLICABLE, "measure": None, "store_id": "s-1"},
            r"^sanction_confirmation: measure_other and store_id must be empty",
        ),
        ({"action": True}, r"^sanction_confirmation\.action: must be a SanctionAction$"),
        (
            {"measure": SanctionMeasure.OTHER},
            r"^sanction_confirmation\.measure_other: required when measure is OTHER$",
        ),
        (
            {"measure_other": "x"},
            r"^sanction_confirmation\.measure_other: must be empty unless measure is OTHER$",
        ),
        ({"effective_at": datetime(2024, 1, 1)}, r"^sanction_confirmation\.effective_at: must"),
        ({"store_id": "s" * 129}, r"^sanction_confirmation\.store_id: must be at most 128"),
        ({"note": "n" * 2049}, r"^sanction_confirmation\.note: must be at most 2048"),
    ],
)
def test_sanction_errors(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        sanction(**kw)


# --- member keys and records ---------------------------------------------------------


def test_member_key_validity_window_is_half_open() -> None:
    k = key(not_after=T0 + timedelta(days=1))
    assert not k.valid_at(T0 - timedelta(microseconds=1))
    assert k.valid_at(T0)
    assert not k.valid_at(T0 + timedelta(days=1))
    assert key().valid_at(datetime(2999, 1, 1, tzinfo=UTC))


def test_member_key_valid_at_needs_aware_time() -> None:
    with pytest.raises(RecordError, match=r"^t: must be timezone-aware"):
        key().valid_at(datetime(2025, 1, 1))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"public_key": b"\x01" * 31}, r"^member_key\.public_key: must be 32 bytes"),
        ({"public_key": "k" * 32}, r"^member_key\.public_key: must be 32 bytes"),
        ({"not_before": datetime(2024, 1, 1)}, r"^member_key\.not_before: must be timezone-aware"),
        ({"not_after": datetime(2025, 1, 1)}, r"^member_key\.not_after: must be timezone-aware"),
        ({"not_after": T0}, r"^member_key\.not_after: must be after not_before$"),
    ],
)
def test_member_key_errors(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        key(**kw)


def test_member_record_ok() -> None:
    suspended = member(keys=(), status=MemberStatus.SUSPENDED)
    assert suspended.keys == ()
    own = member(member_id=GATEWAY, role=Role.GATEWAY)
    assert own.member_id == own.issuer
    assert member(keys=[key()]).keys == (key(),)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"issuer": PLATFORM}, r"^member_record\.issuer: must be a gateway of trust domain zj"),
        (
            {"issuer": "spiffe://gd.alliance/gateway/gz"},
            r"^member_record\.issuer: must be a gateway of trust domain zj\.alliance$",
        ),
        ({"member_id": "spiffe://zj.alliance"}, r"^member_record\.member_id: must be spiffe://"),
        (
            {"role": Role.AUTHORITY},
            r"^member_record\.role: AUTHORITY does not match the member id's role PLATFORM$",
        ),
        ({"role": 0}, r"^member_record\.role: 0 is not a Role$"),
        ({"region_code": "720000"}, r"^member_record\.region_code: prefix 72 is not"),
        ({"keys": ()}, r"^member_record\.keys: an ACTIVE member needs at least one key$"),
        ({"keys": ("k",)}, r"^member_record\.keys: must be MemberKey values$"),
        ({"keys": (key(),) * 33}, r"^member_record\.keys: at most 32 keys$"),
        ({"status": 0}, r"^member_record\.status: 0 is not a MemberStatus$"),
        ({"issued_at": datetime(2024, 1, 1)}, r"^member_record\.issued_at: must be timezone"),
        ({"display_name": "d" * 257}, r"^member_record\.display_name: must be at most 256"),
    ],
)
def test_member_record_errors(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        member(**kw)


def test_payload_types() -> None:
    expected = {
        Listing: "application/vnd.alliance.listing.v2+protobuf",
        StatusChange: "application/vnd.alliance.status-change.v2+protobuf",
        SanctionConfirmation: "application/vnd.alliance.sanction-confirmation.v2+protobuf",
        MemberRecord: "application/vnd.alliance.member-record.v2+protobuf",
        MonthlyReport: "application/vnd.alliance.monthly-report.v2+protobuf",
        GovernmentMeasure: "application/vnd.alliance.government-measure.v2+protobuf",
        Erasure: "application/vnd.alliance.erasure.v1+protobuf",
        AlliancePolicy: "application/vnd.alliance.alliance-policy.v1+protobuf",
        HolidayCalendar: "application/vnd.alliance.holiday-calendar.v1+protobuf",
        ReportSubmission: "application/vnd.alliance.report-submission.v1+protobuf",
    }
    assert dict(PAYLOAD_TYPES) == expected
    # The clear v1 forms of the redactable statements: members may no longer submit
    # them, each names its successor, and records of them still decode.
    v1 = {
        "application/vnd.alliance.listing.v1+protobuf": Listing,
        "application/vnd.alliance.status-change.v1+protobuf": StatusChange,
        "application/vnd.alliance.sanction-confirmation.v1+protobuf": SanctionConfirmation,
        "application/vnd.alliance.government-measure.v1+protobuf": GovernmentMeasure,
    }
    assert dict(SUPERSEDED_TYPES) == {t: expected[cls] for t, cls in v1.items()}
    assert tuple(v1) == (
        LISTING_V1,
        STATUS_CHANGE_V1,
        SANCTION_CONFIRMATION_V1,
        GOVERNMENT_MEASURE_V1,
    )
    assert dict(STATEMENT_TYPES) == {
        **{payload_type: cls for cls, payload_type in expected.items()},
        "application/vnd.alliance.member-record.v1+protobuf": MemberRecord,
        "application/vnd.alliance.monthly-report.v1+protobuf": MonthlyReport,
        **v1,
    }


def test_record_error_is_value_error() -> None:
    # STYLE.md: models raise ValueError from their constructors.
    with pytest.raises(ValueError, match=r"^listing\.decision_ref: "):
        listing(decision_ref="")
