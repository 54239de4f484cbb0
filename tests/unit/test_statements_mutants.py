"""Monthly-report refusals found by mutation testing (docs/TESTING.md): a gateway's signed
report is checked field by field before it is logged or accepted from a peer, and each
refusal names the field at fault, whole."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import pytest
from test_statements import (
    AUTHORITY,
    GATEWAY,
    LID,
    PLATFORM,
    T0,
    USCC,
    change,
    key,
    listing,
    member,
    sanction,
)

from gateway.core.calendar_record import days_of
from gateway.core.statements import (
    MEMBER_RECORD_V2,
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
    ListKind,
    MeasureRequirement,
    MemberStatus,
    MonthlyReport,
    PublicationPeriod,
    ReportFile,
    ReportSubmission,
    Role,
    SanctionAction,
    SanctionMeasure,
    StoreRef,
    Subject,
    SubmittedFile,
    add_months,
    check_member_record_v1,
    check_member_record_v2,
    without_disclosures,
)
from gateway.core.workdays import YearCalendar
from gateway.errors import RecordError


def _report(**kw: Any) -> MonthlyReport:
    fields: dict[str, Any] = {
        "issuer": GATEWAY,
        "month": "2026-10",
        "unit": "33",
        "checkpoint_size": 42,
        "checkpoint_root": bytes(32),
        "content": b"{}",
    }
    fields.update(kw)
    return MonthlyReport(**fields)


def _file(name: str) -> ReportFile:
    return ReportFile(name=name, media_type="application/pdf", sha256=bytes(32))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"issuer": "https://gw"},
            "monthly_report.issuer: must start with spiffe://, got 'https://gw'",
        ),
        (
            {"issuer": "spiffe://zj.alliance.example/platform/p"},
            "monthly_report.issuer: must be a gateway member id",
        ),
        ({"month": "2026/10"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "2026-1"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": 202610}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "2026-1a"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "20x6-10"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "2026-\uff11\uff10"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "2026-00"}, "monthly_report.month: 2026-00 is not a calendar month"),
        ({"month": "2026-13"}, "monthly_report.month: 2026-13 is not a calendar month"),
        ({"month": "0000-10"}, "monthly_report.month: 0000-10 is not a calendar month"),
        (
            {"unit": "99"},
            "monthly_report.unit: must be empty (all units) or a 2-digit reporting unit",
        ),
        (
            {"unit": 33},
            "monthly_report.unit: must be empty (all units) or a 2-digit reporting unit",
        ),
        (
            {"checkpoint_size": -1},
            "monthly_report.checkpoint_size: must be a tree size (0 or more)",
        ),
        (
            {"checkpoint_size": 2**63},
            "monthly_report.checkpoint_size: must be a tree size (0 or more)",
        ),
        (
            {"checkpoint_size": True},
            "monthly_report.checkpoint_size: must be a tree size (0 or more)",
        ),
        (
            {"checkpoint_size": 42.0},
            "monthly_report.checkpoint_size: must be a tree size (0 or more)",
        ),
        (
            {"checkpoint_root": bytes(31)},
            "monthly_report.checkpoint_root: must be 32 bytes (SHA-256)",
        ),
        (
            {"checkpoint_root": "0" * 32},
            "monthly_report.checkpoint_root: must be 32 bytes (SHA-256)",
        ),
        (
            {"content_type": "text/html"},
            "monthly_report.content_type: must be 'application/json'",
        ),
        ({"content": b""}, "monthly_report.content: must not be empty"),
        ({"content": "{}"}, "monthly_report.content: must not be empty"),
        (
            {"content": b"{" + b" " * (1024 * 1024 - 2) + b"}!"},
            "monthly_report.content: at most 1048576 bytes",
        ),
        ({"content": b"[]"}, "monthly_report.content: must be a JSON object"),
        (
            {"files": [_file("a.pdf")]},
            "monthly_report.files: must be a tuple of ReportFile",
        ),
        (
            {"files": ("a.pdf",)},
            "monthly_report.files: must be a tuple of ReportFile",
        ),
        (
            {"files": tuple(_file(f"{i}.pdf") for i in range(17))},
            "monthly_report.files: at most 16 files",
        ),
        (
            {"files": (_file("a.pdf"), _file("b.pdf"), _file("a.pdf"))},
            "monthly_report.files: a file name appears twice",
        ),
    ],
)
def test_a_malformed_monthly_report_is_refused_by_field(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError) as caught:
        _report(**kw)
    assert str(caught.value) == message


def test_a_report_at_every_limit_is_accepted() -> None:
    """What one gateway signs at a limit, its peers must accept: a report at the largest
    tree size, exactly 1 MiB of content, 16 files, the first and last month of a year,
    year 0001, and no unit (all units)."""
    content = b"{" + b" " * (1024 * 1024 - 2) + b"}"
    files = tuple(_file(f"{i}.pdf") for i in range(16))
    report = _report(checkpoint_size=2**63 - 1, content=content, files=files, unit="")
    assert (report.checkpoint_size, len(report.content), len(report.files)) == (
        2**63 - 1,
        1024 * 1024,
        16,
    )
    for month in ("2026-01", "2026-12", "0001-06"):
        assert _report(month=month, checkpoint_size=0).month == month


def test_report_content_that_is_not_utf8_json_is_refused_naming_the_error() -> None:
    with pytest.raises(RecordError) as caught:
        _report(content=b"\xff{}")
    assert str(caught.value).startswith("monthly_report.content: not UTF-8 JSON: ")
    with pytest.raises(RecordError) as caught:
        _report(content=b"{")
    assert str(caught.value).startswith(
        "monthly_report.content: not UTF-8 JSON: Expecting property name"
    )


# --- the other statements (issue 23, run 8's survivors) ------------------------------

NAIVE = datetime(2026, 10, 5, 8, 0)


class _NoOffset(tzinfo):
    """A time zone that does not know its offset: the time is not a UTC instant."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def _measure(**kw: Any) -> GovernmentMeasure:
    fields: dict[str, Any] = {
        "issuer": AUTHORITY,
        "listing_id": LID,
        "kind": GovernmentMeasureKind.SUMMONS,
        "decision_ref": "ZJ-2026-7",
        "effective_at": T0,
    }
    fields.update(kw)
    return GovernmentMeasure(**fields)


def _sent(name: str = "report.pdf", sha256: Any = bytes(32)) -> SubmittedFile:
    return SubmittedFile(name=name, sha256=sha256)


def _submission(**kw: Any) -> ReportSubmission:
    fields: dict[str, Any] = {
        "issuer": GATEWAY,
        "month": "2026-10",
        "unit": "33",
        "report_id": LID,
        "recipient": "Zhejiang AMR",
        "submitted_at": T0,
        "files": (_sent(),),
    }
    fields.update(kw)
    return ReportSubmission(**fields)


def _policy(**kw: Any) -> AlliancePolicy:
    fields: dict[str, Any] = {"issuer": GATEWAY, "issued_at": T0}
    fields.update(kw)
    return AlliancePolicy(**fields)


def _requirement(**kw: Any) -> MeasureRequirement:
    fields: dict[str, Any] = {
        "list": ListKind.BLACKLIST,
        "conduct": None,
        "satisfying": (SanctionMeasure.CLOSE_STORE,),
    }
    fields.update(kw)
    return MeasureRequirement(**fields)


def _period(**kw: Any) -> PublicationPeriod:
    fields: dict[str, Any] = {
        "list": ListKind.BLACKLIST,
        "conduct": None,
        "minimum_months": 6,
        "maximum_months": 36,
    }
    fields.update(kw)
    return PublicationPeriod(**fields)


def _year_days(year: int) -> list[DayKind]:
    """Weekdays worked, Saturdays and Sundays off: a year with no holiday."""
    return list(days_of(YearCalendar(year)))


def _calendar(year: int = 2027, days: Any = None, **kw: Any) -> HolidayCalendar:
    fields: dict[str, Any] = {
        "issuer": GATEWAY,
        "year": year,
        "days": tuple(_year_days(year) if days is None else days),
        "source": "State Council notice 2026",
        "issued_at": T0,
    }
    fields.update(kw)
    return HolidayCalendar(**fields)


def _erasure(**kw: Any) -> Erasure:
    fields: dict[str, Any] = {
        "issuer": GATEWAY,
        "record_ids": (LID,),
        "basis": ErasureBasis.RETENTION_ENDED,
        "legal_basis": "PIPL art. 47",
        "effective_at": T0,
    }
    fields.update(kw)
    return Erasure(**fields)


_REFUSALS: list[tuple[str, Callable[[], object], str]] = [
    # GovernmentMeasure: every field named in its refusal.
    (
        "measure issuer",
        lambda: _measure(issuer="https://gw"),
        "government_measure.issuer: must start with spiffe://, got 'https://gw'",
    ),
    (
        "measure listing id",
        lambda: _measure(listing_id="AB" * 32),
        "government_measure.listing_id: must be a record id (64 lowercase hex characters)",
    ),
    (
        "measure kind",
        lambda: _measure(kind=7),
        "government_measure.kind: 7 is not a GovernmentMeasureKind",
    ),
    (
        "measure OTHER without its name",
        lambda: _measure(kind=GovernmentMeasureKind.OTHER),
        "government_measure.kind_other: required when kind is OTHER",
    ),
    (
        "measure named but not OTHER",
        lambda: _measure(kind_other="inspection"),
        "government_measure.kind_other: must be empty unless kind is OTHER",
    ),
    (
        "measure without decision",
        lambda: _measure(decision_ref=""),
        "government_measure.decision_ref: must not be empty",
    ),
    (
        "measure naive time",
        lambda: _measure(effective_at=NAIVE),
        "government_measure.effective_at: must be timezone-aware (UTC)",
    ),
    (
        "measure document of 31 bytes",
        lambda: _measure(document_sha256=bytes(31)),
        "government_measure.document_sha256: must be empty or 32 bytes (SHA-256 of "
        "the decision document)",
    ),
    (
        "measure document as 32 characters",
        lambda: _measure(document_sha256="0" * 32),
        "government_measure.document_sha256: must be empty or 32 bytes (SHA-256 of "
        "the decision document)",
    ),
    (
        "measure note with an escape",
        lambda: _measure(note="see \x1b[2J"),
        "government_measure.note: must not contain control characters",
    ),
    # ReportSubmission and SubmittedFile.
    (
        "submission issuer",
        lambda: _submission(issuer="https://gw"),
        "report_submission.issuer: must start with spiffe://, got 'https://gw'",
    ),
    (
        "submission issuer not a gateway",
        lambda: _submission(issuer=PLATFORM),
        "report_submission.issuer: must be a gateway member id",
    ),
    (
        "submission month",
        lambda: _submission(month="2026/10"),
        "report_submission.month: must be YYYY-MM",
    ),
    (
        "submission unknown unit",
        lambda: _submission(unit="99"),
        "report_submission.unit: must be empty (all units) or a 2-digit reporting unit",
    ),
    (
        "submission unit None",
        lambda: _submission(unit=None),
        "report_submission.unit: must be empty (all units) or a 2-digit reporting unit",
    ),
    (
        "submission report id",
        lambda: _submission(report_id="ab"),
        "report_submission.report_id: must be a record id (64 lowercase hex characters)",
    ),
    (
        "submission without recipient",
        lambda: _submission(recipient=""),
        "report_submission.recipient: must not be empty",
    ),
    (
        "submission recipient one past the limit",
        lambda: _submission(recipient="r" * 257),
        "report_submission.recipient: must be at most 256 characters, got 257",
    ),
    (
        "submission naive time",
        lambda: _submission(submitted_at=NAIVE),
        "report_submission.submitted_at: must be timezone-aware (UTC)",
    ),
    (
        "submission without files",
        lambda: _submission(files=()),
        "report_submission.files: at least one file was sent",
    ),
    (
        "submission of 65 files",
        lambda: _submission(files=tuple(_sent(f"{i}.pdf") for i in range(65))),
        "report_submission.files: at most 64 files",
    ),
    (
        "submission files as names",
        lambda: _submission(files=("report.pdf",)),
        "report_submission.files: must be SubmittedFile values",
    ),
    (
        "submission names a file twice",
        lambda: _submission(files=(_sent("a.pdf"), _sent("b.pdf"), _sent("a.pdf"))),
        "report_submission.files: a file name is listed twice",
    ),
    ("file without name", lambda: _sent(""), "submitted_file.name: must not be empty"),
    (
        "file name one past the limit",
        lambda: _sent("n" * 256),
        "submitted_file.name: must be at most 255 characters, got 256",
    ),
    (
        "file in a folder",
        lambda: _sent("a/b.pdf"),
        "submitted_file.name: 'a/b.pdf' must be a file name, no folders",
    ),
    (
        "file in a Windows folder",
        lambda: _sent("a\\b.pdf"),
        "submitted_file.name: 'a\\\\b.pdf' must be a file name, no folders",
    ),
    (
        "file named .",
        lambda: _sent("."),
        "submitted_file.name: '.' must be a file name, no folders",
    ),
    (
        "file named ..",
        lambda: _sent(".."),
        "submitted_file.name: '..' must be a file name, no folders",
    ),
    (
        "file hash of 31 bytes",
        lambda: _sent(sha256=bytes(31)),
        "submitted_file.sha256: must be 32 bytes (SHA-256)",
    ),
    (
        "file hash as 32 characters",
        lambda: _sent(sha256="0" * 32),
        "submitted_file.sha256: must be 32 bytes (SHA-256)",
    ),
    # StatusChange.
    (
        "dispute without objection",
        lambda: change(step=LifecycleStep.DISPUTED, document_sha256=bytes(32)),
        "status_change.reason: a DISPUTED step states the objection",
    ),
    (
        "document as a string",
        lambda: change(document_sha256="0" * 32),
        "status_change.document_sha256: must be bytes",
    ),
    (
        "document of 31 bytes",
        lambda: change(document_sha256=bytes(31)),
        "status_change.document_sha256: must be 32 bytes (SHA-256), got 31",
    ),
    (
        "dispute without document",
        lambda: change(step=LifecycleStep.DISPUTED, reason="not ours"),
        "status_change.document_sha256: required for DISPUTED (the SHA-256 of "
        "the evidence document)",
    ),
    (
        "escalation with a document",
        lambda: change(step=LifecycleStep.ESCALATED, document_sha256=bytes(32)),
        "status_change.document_sha256: a ESCALATED step takes no document",
    ),
    # AlliancePolicy and its entries.
    (
        "policy issuer",
        lambda: _policy(issuer="https://gw"),
        "alliance_policy.issuer: must start with spiffe://, got 'https://gw'",
    ),
    (
        "policy unit, shown cut at 20 characters",
        lambda: _policy(units_accepting_platform_reports=("0123456789" * 3,)),
        "alliance_policy.units_accepting_platform_reports: '01234567890123456789' "
        "is not a 2-digit reporting unit",
    ),
    (
        "policy unit twice",
        lambda: _policy(units_accepting_platform_reports=("33", "11", "33")),
        "alliance_policy.units_accepting_platform_reports: must not repeat a unit",
    ),
    (
        "policy working days one past the limit",
        lambda: _policy(dispute_decision_working_days=251),
        "alliance_policy.dispute_decision_working_days: must be an integer 0 to 250 "
        "(0: the default)",
    ),
    (
        "policy requirements of another type",
        lambda: _policy(measure_requirements=(_period(),)),
        "alliance_policy.measure_requirements: must be MeasureRequirement",
    ),
    (
        "policy periods of another type",
        lambda: _policy(publication_periods=(_requirement(),)),
        "alliance_policy.publication_periods: must be PublicationPeriod",
    ),
    (
        "policy of 65 periods",
        lambda: _policy(publication_periods=(_period(),) * 65),
        "alliance_policy.publication_periods: at most 64 entries",
    ),
    (
        "policy of 64 periods, one pair repeated",
        lambda: _policy(publication_periods=(_period(),) * 64),
        "alliance_policy.publication_periods: must not repeat a (list, conduct) pair",
    ),
    (
        "requirement list",
        lambda: _requirement(list=9),
        "alliance_policy.measure_requirements.list: 9 is not a ListKind",
    ),
    (
        "requirement conduct",
        lambda: _requirement(conduct=98),
        "alliance_policy.measure_requirements.conduct: 98 is not a ConductType",
    ),
    (
        "requirement measure",
        lambda: _requirement(satisfying=(98,)),
        "alliance_policy.measure_requirements.satisfying: 98 is not a SanctionMeasure",
    ),
    (
        "period list",
        lambda: _period(list=9),
        "alliance_policy.publication_periods.list: 9 is not a ListKind",
    ),
    (
        "period one past the limit",
        lambda: _period(maximum_months=121),
        "alliance_policy.publication_periods.maximum_months: must be an integer 0 to 120",
    ),
    (
        "period minimum over maximum",
        lambda: _period(minimum_months=37),
        "alliance_policy.publication_periods.minimum_months: 37 is more than maximum_months 36",
    ),
    # HolidayCalendar.
    (
        "calendar issuer",
        lambda: _calendar(issuer="https://gw"),
        "holiday_calendar.issuer: must start with spiffe://, got 'https://gw'",
    ),
    (
        "calendar year True",
        lambda: _calendar(year=True, days=_year_days(1)),
        "holiday_calendar.year: True is not a year (1 .. 9999)",
    ),
    (
        "calendar year 0",
        lambda: _calendar(year=0, days=_year_days(1)),
        "holiday_calendar.year: 0 is not a year (1 .. 9999)",
    ),
    (
        "calendar year 10000",
        lambda: _calendar(year=10000, days=_year_days(9999)),
        "holiday_calendar.year: 10000 is not a year (1 .. 9999)",
    ),
    (
        "calendar day kind",
        lambda: _calendar(days=[9, *_year_days(2027)[1:]]),
        "holiday_calendar.days[0] (2027-01-01): 9 is not a DayKind",
    ),
    (
        "calendar Saturday as a workday",
        lambda: _calendar(
            days=[DayKind.WORKDAY if i == 1 else k for i, k in enumerate(_year_days(2027))]
        ),
        "holiday_calendar.days[1]: 2027-01-02 is a Saturday: a worked weekend day is a "
        "MAKEUP_WORKDAY, not a WORKDAY",
    ),
    # Erasure, member records and keys, listings, confirmations, report files.
    (
        "erasure issuer",
        lambda: _erasure(issuer="https://gw"),
        "erasure.issuer: must start with spiffe://, got 'https://gw'",
    ),
    (
        "erasure naive time",
        lambda: _erasure(effective_at=NAIVE),
        "erasure.effective_at: must be timezone-aware (UTC)",
    ),
    (
        "member record issuer",
        lambda: member(issuer="https://gw"),
        "member_record.issuer: must start with spiffe://, got 'https://gw'",
    ),
    (
        "member record of 33 keys",
        lambda: member(keys=tuple(key(public_key=bytes([i]) * 32) for i in range(33))),
        "member_record.keys: at most 32 keys",
    ),
    (
        "member record scope",
        lambda: member(member_id=AUTHORITY, role=Role.AUTHORITY, scope=7),
        "member_record.scope: 7 is not a AuthorityScope",
    ),
    (
        "member record possession proof",
        lambda: member(keys=(key(possession=bytes(63)),)),
        "member_record.keys[0].possession: must be a 64-byte Ed25519 signature, got 63",
    ),
    (
        "member key",
        lambda: key(public_key=bytes(31)),
        "member_key.public_key: must be 32 bytes (raw Ed25519)",
    ),
    (
        "member key possession as text",
        lambda: key(possession="proof"),
        "member_key.possession: must be bytes",
    ),
    (
        "confirmation of no account naming a measure",
        lambda: sanction(action=SanctionAction.NOT_APPLICABLE),
        "sanction_confirmation.measure: must be unset when the action is "
        "NOT_APPLICABLE (the answer is about the seller's account, not a measure)",
    ),
    (
        "confirmation of no account naming a store",
        lambda: sanction(measure=None, action=SanctionAction.NOT_APPLICABLE, store_id="shop-1"),
        "sanction_confirmation: measure_other and store_id must be empty when "
        "the action is NOT_APPLICABLE",
    ),
    (
        "redacted listing with a subject",
        lambda: listing(redacted=True, decision_ref=""),
        "listing: a redacted statement carries no committed value",
    ),
    (
        "report file named .",
        lambda: ReportFile(name=".", media_type="application/pdf", sha256=bytes(32)),
        "monthly_report.files.name: '.' must be a file name, not a path",
    ),
    (
        "report file media type",
        lambda: ReportFile(name="a.pdf", media_type="Application/PDF", sha256=bytes(32)),
        "monthly_report.files.media_type: 'Application/PDF' is not a media type "
        "(lower case type/subtype, e.g. application/pdf)",
    ),
    (
        "a time zone without an offset",
        lambda: _erasure(effective_at=datetime(2026, 10, 5, tzinfo=_NoOffset())),
        "erasure.effective_at: must be timezone-aware (UTC)",
    ),
]


@pytest.mark.parametrize(
    ("build", "message"),
    [pytest.param(build, message, id=case) for case, build, message in _REFUSALS],
)
def test_a_malformed_statement_is_refused_naming_its_field(
    build: Callable[[], object], message: str
) -> None:
    """A refusal is what a member reads to fix its record: the field and the rule, whole."""
    with pytest.raises(RecordError) as caught:
        build()
    assert str(caught.value) == message


def test_statements_at_every_limit_are_accepted() -> None:
    """What one gateway signs at a limit its peers must accept, or they would compute
    another state from the same log: each limit exactly, one below every refusal above."""
    files = tuple(_sent(f"{i}.pdf") for i in range(64))
    submission = _submission(files=files, recipient="r" * 256, unit="")
    assert (len(submission.files), len(submission.recipient), submission.unit) == (64, 256, "")
    assert _sent("n" * 255).name == "n" * 255
    assert _policy(dispute_decision_working_days=250).dispute_decision_working_days == 250
    assert _period(minimum_months=120, maximum_months=120).minimum_months == 120
    assert _period(minimum_months=36).minimum_months == 36
    stores = tuple(StoreRef(platform=PLATFORM, store_id=f"s{i}") for i in range(100))
    assert len(Subject(uscc=USCC, stores=stores).stores) == 100
    keys = tuple(key(public_key=bytes([i]) * 32) for i in range(32))
    assert len(member(keys=keys).keys) == 32
    assert _calendar(year=1).year == 1
    assert _calendar(year=9999).year == 9999


def test_policy_entries_are_accepted_when_their_pairs_differ() -> None:
    """Every (list, conduct) pair once: no two differing pairs count as a repeat."""
    pairs = {
        (kind, conduct)
        for kind in (None, *ListKind)
        for conduct in (None, *ConductType)
        if kind is None or conduct is None or kind in conduct.lists
    }
    periods = tuple(_period(list=kind, conduct=conduct) for kind, conduct in pairs)
    policy = _policy(publication_periods=periods)
    assert {(p.list, p.conduct) for p in policy.publication_periods} == pairs
    assert len(policy.publication_periods) == len(pairs)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        pytest.param(lambda text: _measure(note=text), "note", id="measure note"),
        pytest.param(lambda text: change(reason=text), "reason", id="status change reason"),
        pytest.param(
            lambda text: _erasure(legal_basis=text), "legal_basis", id="erasure legal basis"
        ),
        pytest.param(
            lambda text: listing(legal_basis=text), "legal_basis", id="listing legal basis"
        ),
        pytest.param(lambda text: sanction(note=text), "note", id="confirmation note"),
    ],
)
def test_free_text_may_break_lines(build: Callable[[str], object], field: str) -> None:
    """Notes, reasons and legal bases are paragraphs: line feeds and tabs are kept (a
    single-line field refuses them)."""
    text = "first line\n\tsecond line"
    assert getattr(build(text), field) == text


def test_other_measure_kinds_are_named() -> None:
    measure = _measure(kind=GovernmentMeasureKind.OTHER, kind_other="public interview")
    assert (measure.kind, measure.kind_other) == (GovernmentMeasureKind.OTHER, "public interview")


def test_a_dispute_with_its_objection_and_document_is_accepted() -> None:
    dispute = change(step=LifecycleStep.DISPUTED, reason="not ours", document_sha256=bytes(32))
    assert dispute.step is LifecycleStep.DISPUTED


def test_a_redacted_dispute_has_no_objection_to_check() -> None:
    dispute = change(step=LifecycleStep.DISPUTED, redacted=True, document_sha256=bytes(32))
    assert dispute.redacted


def test_a_calendar_gives_each_date_its_kind() -> None:
    """``days[i]`` is 1 January + i: the kind of a date is read at its offset from
    1 January of the calendar's year, and a date of another year is refused."""
    days = _year_days(2028)
    days[0] = DayKind.HOLIDAY  # Saturday 1 January 2028 ... a holiday break
    days[1] = DayKind.MAKEUP_WORKDAY  # Sunday 2 January worked
    days[31] = DayKind.HOLIDAY  # Tuesday 1 February
    days[59] = DayKind.HOLIDAY  # Tuesday 29 February (leap year)
    cal = _calendar(year=2028, days=days)
    assert cal.kind(date(2028, 1, 1)) is DayKind.HOLIDAY
    assert cal.kind(date(2028, 1, 2)) is DayKind.MAKEUP_WORKDAY
    assert cal.kind(date(2028, 1, 3)) is DayKind.WORKDAY
    assert cal.kind(date(2028, 2, 1)) is DayKind.HOLIDAY
    assert cal.kind(date(2028, 2, 29)) is DayKind.HOLIDAY
    assert cal.kind(date(2028, 12, 31)) is DayKind.WEEKEND
    for other in (date(2027, 12, 31), date(2029, 1, 1)):
        with pytest.raises(RecordError) as caught:
            cal.kind(other)
        assert str(caught.value) == f"{other.isoformat()} is not in 2028"


def test_member_record_version_rules_say_how_to_fix_them() -> None:
    with pytest.raises(RecordError) as caught:
        check_member_record_v1(
            member(member_id=AUTHORITY, role=Role.AUTHORITY, scope=AuthorityScope.UNIT)
        )
    assert str(caught.value) == (
        "member_record: a v1 member record carries neither scope nor key possession proofs"
    )
    assert caught.value.advice == f"sign it as {MEMBER_RECORD_V2}"
    with pytest.raises(RecordError) as caught:
        check_member_record_v2(member())
    assert str(caught.value) == "member_record.keys[0].possession: required in a v2 member record"
    assert caught.value.advice == (
        "the member makes the proof with its private key: "
        "`alliance-gateway certs possession --key … --member-id …`"
    )
    with pytest.raises(RecordError) as caught:
        check_member_record_v2(
            member(member_id=AUTHORITY, role=Role.AUTHORITY, keys=(), status=MemberStatus.SUSPENDED)
        )
    assert str(caught.value) == "member_record.scope: required for an authority (UNIT or NATIONAL)"


def test_a_deadline_before_the_listing_says_why() -> None:
    with pytest.raises(RecordError) as caught:
        listing(correction_deadline=T0)
    assert str(caught.value) == "listing.correction_deadline: must be after listed_at"
    assert caught.value.reason == "deadline-too-early"


def test_a_deadline_is_in_utc_whatever_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every gateway computes the same deadline instant in UTC, whatever its local zone."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        due = add_months(datetime(2026, 9, 30, 16, 0, tzinfo=UTC), 3)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert due == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert due.utcoffset() == timedelta(0)


def test_an_authority_acts_in_the_scope_its_record_gives_and_in_its_unit_when_silent() -> None:
    """A NATIONAL authority read as UNIT could not list outside its reporting unit; an
    authority record without a scope (member-record.v1) means UNIT; other roles have none."""
    authority = {"member_id": AUTHORITY, "role": Role.AUTHORITY}
    assert member(**authority, scope=AuthorityScope.NATIONAL).authority_scope is (
        AuthorityScope.NATIONAL
    )
    assert member(**authority, scope=AuthorityScope.UNIT).authority_scope is AuthorityScope.UNIT
    assert member(**authority).authority_scope is AuthorityScope.UNIT
    assert member().authority_scope is None


def test_a_statement_read_without_disclosures_keeps_only_its_clear_fields() -> None:
    """What an erasure leaves of a listing and of a status change (the fold and the
    public index read erased records this way): every committed field empty, the rest
    as signed; a statement already redacted is returned as it is."""
    full = listing(summary="seller faked 1,200 orders", legal_basis="E-Commerce Law art. 17")
    assert without_disclosures(full) == listing(
        subject=None, decision_ref="", summary="", legal_basis="", redacted=True
    )
    step = change(
        issuer=AUTHORITY,
        step=LifecycleStep.IDENTIFIED,
        decision_ref="ZJ-2024-001-ID",
        reason="confirmed by the platform's order data",
        decided_by="Zhejiang AMR",
    )
    assert without_disclosures(step) == change(
        issuer=AUTHORITY, step=LifecycleStep.IDENTIFIED, redacted=True
    )
    redacted = without_disclosures(full)
    assert without_disclosures(redacted) is redacted
