"""When a correction notice is due: from the identification of the listing's lifecycle
(gateway.core.lifecycle), never for a report not identified or a withdrawn listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.lifecycle import StepRecord, derive
from gateway.core.notices import notice_due, notice_late
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    Subject,
)
from gateway.ops.workcalendar import load_work_calendar

CALENDAR = load_work_calendar()
# Friday 9 October 2026, 10:00 Beijing time; Saturday 10 October is a make-up working day.
FRIDAY = datetime(2026, 10, 9, 2, 0, tzinfo=UTC)
DUE = datetime(2026, 10, 15, 16, 0, tzinfo=UTC)  # 00:00 Beijing after Thursday 15 October
LID = "ef" * 32


def _listing(issuer: str) -> Listing:
    return Listing(
        issuer=issuer,
        subject=Subject(uscc="91330100716105852F"),
        list=ListKind.BLACKLIST,
        conduct=ConductType.FAKE_TRANSACTIONS,
        region_code="330100",
        decision_ref="d",
        listed_at=FRIDAY - timedelta(days=30),
    )


AUTHORITY = _listing("spiffe://zj.alliance/authority/amr")
REPORT = _listing("spiffe://zj.alliance/platform/mall")


def _due(listing: Listing, *steps: tuple[LifecycleStep, datetime]) -> datetime | None:
    records = [StepRecord(f"s{i}", s, at) for i, (s, at) in enumerate(steps)]
    return notice_due(CALENDAR, derive(LID, listing, records))


def test_a_platform_report_owes_a_notice_only_once_identified() -> None:
    assert _due(REPORT) is None
    assert _due(REPORT, (LifecycleStep.IDENTIFIED, FRIDAY)) == DUE
    # An authority's listing is identified when signed.
    assert _due(AUTHORITY) == CALENDAR.add_workdays(AUTHORITY.listed_at, 5)


def test_a_withdrawn_or_early_closed_listing_owes_no_notice() -> None:
    identified = (LifecycleStep.IDENTIFIED, FRIDAY)
    assert _due(REPORT, identified, (LifecycleStep.WITHDRAWN, DUE + timedelta(days=9))) is None
    assert _due(REPORT, identified, (LifecycleStep.CORRECTED, DUE - timedelta(hours=1))) is None
    # Corrected after the notice fell due: it was due, and (not served) late.
    late = _due(REPORT, identified, (LifecycleStep.CORRECTED, DUE + timedelta(days=1)))
    assert late == DUE
    assert notice_late(late, None, DUE + timedelta(days=2))
    assert not notice_late(late, DUE - timedelta(hours=1), DUE + timedelta(days=2))


def test_the_issuing_alliances_policy_sets_the_working_days() -> None:
    policy = AlliancePolicy(
        issuer="spiffe://zj.alliance/gateway/gw",
        issued_at=FRIDAY - timedelta(days=60),
        notice_working_days=1,
    )
    lifecycle = derive(LID, REPORT, [StepRecord("i", LifecycleStep.IDENTIFIED, FRIDAY)])
    # One working day after Friday is the make-up Saturday: due 00:00 Sunday Beijing.
    assert notice_due(CALENDAR, lifecycle, policy) == datetime(2026, 10, 10, 16, 0, tzinfo=UTC)
