"""The worked examples in docs/PROTOCOL.md are checked against the code."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, date, datetime
from pathlib import Path

from gateway.codec import decode_statement, encode_statement
from gateway.core.calendar_record import days_of, merge_calendars
from gateway.core.dsse import record_id
from gateway.core.identifiers import person_hmac
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    GovernmentMeasure,
    GovernmentMeasureKind,
    HolidayCalendar,
    LifecycleStep,
    Listing,
    ListKind,
    MeasureRequirement,
    PublicationPeriod,
    ReportSubmission,
    SanctionMeasure,
    StatusChange,
    StoreRef,
    Subject,
    SubmittedFile,
)
from gateway.core.workdays import ReportMonth, WorkCalendar, YearCalendar
from gateway.pb.alliance.v1 import statements_pb2 as pb

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
LISTING_TYPE = "application/vnd.alliance.listing.v1+protobuf"
MALL = "spiffe://zj.alliance.example/platform/example-mall"

EXPECTED = Listing(
    issuer=MALL,
    subject=Subject(
        uscc="91330100716105852F",
        stores=(StoreRef(MALL, "store-20481"),),
        name="Example Trading Co., Ltd.",
    ),
    list=ListKind.BLACKLIST,
    conduct=ConductType.FAKE_TRANSACTIONS,
    region_code="330106",
    decision_ref="ZJ-ACGA-2024-0042",
    listed_at=datetime(2024, 11, 30, 8, 0, tzinfo=UTC),
    summary="Fake transactions to inflate store ratings, June to September 2024.",
    legal_basis="Fagaicaiji [2018] No. 716 section III; PIPL art. 13(3)",
)


def _hex_after(marker: str) -> bytes:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(marker)
    match = re.compile(r"```hex\n(.*?)```", re.DOTALL).search(text, start)
    assert match is not None, f"no ```hex block after {marker!r}"
    return bytes.fromhex("".join(match.group(1).split()))


def test_example_listing_decodes_to_documented_values() -> None:
    payload = _hex_after("Example listing payload:")
    stmt = decode_statement(LISTING_TYPE, payload)
    assert stmt == EXPECTED
    assert isinstance(stmt, Listing)
    assert stmt.deadline == datetime(2025, 2, 28, 8, 0, tzinfo=UTC)
    assert f"serialization ({len(payload)} bytes" in DOC.read_text(encoding="utf-8")


def test_example_listing_values_appear_in_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert EXPECTED.subject is not None
    for value in (
        EXPECTED.issuer,
        "91330100716105852F",
        EXPECTED.subject.name,
        EXPECTED.region_code,
        EXPECTED.decision_ref,
        EXPECTED.summary,
        EXPECTED.legal_basis,
        "store-20481",
        "2024-11-30T08:00:00Z",
        str(int(EXPECTED.listed_at.timestamp())),
    ):
        assert value in text, value


def test_example_listing_is_what_the_reference_encoder_writes() -> None:
    payload = _hex_after("Example listing payload:")
    assert encode_statement(EXPECTED, LISTING_TYPE) == (LISTING_TYPE, payload)
    # Parsed with protobuf alone, independently of the codec.
    msg = pb.Listing()
    msg.ParseFromString(payload)
    assert msg.listed_at.seconds == 1_732_953_600
    assert not msg.HasField("correction_deadline")


def test_example_person_hmac() -> None:
    digest = _hex_after("Example person HMAC:")
    key = bytes(range(32))
    assert person_hmac("11010519491231002X", key) == digest
    assert hmac.new(key, b"11010519491231002X", hashlib.sha256).digest() == digest
    assert b"11010519491231002X".hex() in DOC.read_text(encoding="utf-8")


GOVERNMENT_MEASURE_TYPE = "application/vnd.alliance.government-measure.v1+protobuf"


def test_example_government_measure_matches_the_doc() -> None:
    document = b"summons decision ZJ-AMR-2024-S-017"
    expected = GovernmentMeasure(
        issuer="spiffe://zj.alliance.example/authority/zj-amr",
        listing_id="5f0c3e4a9b7d2c1e8f6a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e",
        kind=GovernmentMeasureKind.SUMMONS,
        decision_ref="ZJ-AMR-2024-S-017",
        effective_at=datetime(2025, 3, 10, 2, 0, tzinfo=UTC),
        document_sha256=hashlib.sha256(document).digest(),
    )
    payload = _hex_after("Example government-measure payload")
    # The documented bytes decode to the documented values, and encoding those values
    # gives the documented bytes again.
    assert decode_statement(GOVERNMENT_MEASURE_TYPE, payload) == expected
    assert encode_statement(expected, GOVERNMENT_MEASURE_TYPE) == (GOVERNMENT_MEASURE_TYPE, payload)
    text = DOC.read_text(encoding="utf-8")
    assert f"({len(payload)} bytes;" in text
    assert f"the {len(document)} ASCII bytes `{document.decode()}`" in text
    assert hashlib.sha256(document).hexdigest() in text
    assert str(int(expected.effective_at.timestamp())) in text


POLICY_TYPE = "application/vnd.alliance.alliance-policy.v1+protobuf"
STATUS_CHANGE_TYPE = "application/vnd.alliance.status-change.v1+protobuf"


def test_example_alliance_policy_is_recomputed_from_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    payload = _hex_after("Example alliance policy payload:")
    expected = AlliancePolicy(
        issuer="spiffe://zj.alliance.example/gateway/gw",
        issued_at=datetime(2026, 12, 1, tzinfo=UTC),
        units_accepting_platform_reports=("33",),
        dispute_decision_working_days=10,
        measure_requirements=(
            MeasureRequirement(
                ListKind.BLACKLIST, ConductType.COUNTERFEIT, (SanctionMeasure.CLOSE_STORE,)
            ),
        ),
        publication_periods=(
            PublicationPeriod(ListKind.BLACKLIST, ConductType.COUNTERFEIT, 12, 24),
        ),
    )
    assert decode_statement(POLICY_TYPE, payload) == expected
    assert encode_statement(expected) == (POLICY_TYPE, payload)
    assert f"Its serialization ({len(payload)} bytes" in text
    assert f"Its record id\nis `{record_id(POLICY_TYPE, payload)}`" in text


def test_example_disputed_status_change_is_recomputed_from_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    listing_id = record_id(LISTING_TYPE, _hex_after("Example listing payload:"))
    assert f"(record id\n`{listing_id}`)" in text
    evidence = hashlib.sha256(b"%PDF-1.7 example evidence").digest()
    assert "the 25 bytes `%PDF-1.7 example evidence`" in text
    assert len(b"%PDF-1.7 example evidence") == 25
    assert f"`{evidence.hex()}`" in text
    expected = StatusChange(
        issuer=MALL,
        listing_id=listing_id,
        step=LifecycleStep.DISPUTED,
        effective_at=datetime(2026, 12, 2, 1, 30, tzinfo=UTC),
        reason="The orders were real: shipping records attached.",
        document_sha256=evidence,
    )
    payload = _hex_after("Example disputed status change payload:")
    assert decode_statement(STATUS_CHANGE_TYPE, payload) == expected
    assert encode_statement(expected, STATUS_CHANGE_TYPE) == (STATUS_CHANGE_TYPE, payload)
    assert f"The DISPUTED\nstatus change ({len(payload)} bytes" in text
    assert f"Its record id is\n`{record_id(STATUS_CHANGE_TYPE, payload)}`" in text


def test_example_holiday_calendar_decodes_to_documented_values() -> None:
    payload = _hex_after("Example holiday calendar payload:")
    payload_type = "application/vnd.alliance.holiday-calendar.v1+protobuf"
    stmt = decode_statement(payload_type, payload)
    assert isinstance(stmt, HolidayCalendar)
    new_year = frozenset({date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)})
    assert stmt == HolidayCalendar(
        issuer="spiffe://zj.alliance.example/gateway/gw",
        year=2027,
        days=days_of(YearCalendar(2027, new_year)),
        source="Illustration: weekends, and 1-3 January off",
        issued_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert encode_statement(stmt) == (payload_type, payload)
    text = DOC.read_text(encoding="utf-8")
    assert f"serialization ({len(payload)} bytes" in text
    assert f"`{record_id(payload_type, payload)}`" in text
    assert f"seconds {int(stmt.issued_at.timestamp())})" in text
    calendar = merge_calendars(WorkCalendar([]), [stmt])
    assert calendar.due_date(ReportMonth(2026, 12)) == date(2027, 1, 14)


def test_example_report_submission_decodes_to_documented_values() -> None:
    payload = _hex_after("Example report submission payload:")
    payload_type = "application/vnd.alliance.report-submission.v1+protobuf"
    stmt = decode_statement(payload_type, payload)
    assert isinstance(stmt, ReportSubmission)
    pdf = hashlib.sha256(b"%PDF-1.7 example").digest()
    assert stmt == ReportSubmission(
        issuer="spiffe://zj.alliance.example/gateway/gw",
        month="2026-12",
        unit="",
        report_id=hashlib.sha256(b"monthly report 2026-12").hexdigest(),
        recipient="NDRC Department of Finance and Credit Construction",
        submitted_at=datetime(2027, 1, 12, 1, 30, tzinfo=UTC),
        files=(SubmittedFile("report-2026-12-all.pdf", pdf),),
    )
    assert encode_statement(stmt) == (payload_type, payload)
    text = DOC.read_text(encoding="utf-8")
    assert f"`{stmt.report_id}`" in text and pdf.hex() in text
    assert f"`{record_id(payload_type, payload)}`" in text
    assert f"seconds {int(stmt.submitted_at.timestamp())})" in text
