"""The due-process rules of one listing (gateway.core.lifecycle), case by case."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta

from gateway.core.alliance_policy import DEFAULT_DISPUTE_DECISION_WORKING_DAYS
from gateway.core.disputes import decision_due_by, dispute_overdue
from gateway.core.lifecycle import Lifecycle, StepRecord, derive
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    Subject,
    add_months,
)

PLATFORM = "spiffe://zj.alliance/platform/shop"
AUTHORITY = "spiffe://zj.alliance/authority/zj-credit"
T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
S = LifecycleStep


def listing(issuer: str = PLATFORM, **kw: object) -> Listing:
    values: dict[str, object] = {
        "issuer": issuer,
        "subject": Subject(uscc="91330100716105852F"),
        "list": ListKind.BLACKLIST,
        "conduct": ConductType.FAKE_TRANSACTIONS,
        "region_code": "330100",
        "decision_ref": "ref",
        "listed_at": T0,
    }
    values.update(kw)
    return Listing(**values)  # type: ignore[arg-type]


def step(label: str, s: LifecycleStep, at: datetime) -> StepRecord:
    return StepRecord(hashlib.sha256(label.encode()).hexdigest(), s, at)


def life(lst: Listing, *steps: StepRecord) -> Lifecycle:
    results = {derive("L", lst, order) for order in itertools.permutations(steps)}
    assert len(results) == 1, "the state must not depend on the order of the steps"
    return results.pop()


def test_a_platform_listing_is_reported_until_identified() -> None:
    reported = life(listing())
    assert not reported.identified and reported.deadline is None
    assert reported.step is S.LISTED and reported.in_force
    assert not reported.overdue(T0 + 1000 * DAY)
    # The deadline counts from the identification.
    identified = life(listing(), step("i", S.IDENTIFIED, T0 + 10 * DAY))
    assert identified.identified_at == T0 + 10 * DAY
    assert identified.deadline == add_months(T0 + 10 * DAY, 3)
    assert identified.step is S.IDENTIFIED
    # A signed period (here 2 months) is kept, counted from the identification.
    short = listing(correction_deadline=add_months(T0, 2))
    assert life(short, step("i", S.IDENTIFIED, T0 + 5 * DAY)).deadline == (
        T0 + 5 * DAY + (add_months(T0, 2) - T0)
    )
    # The earliest identification counts.
    twice = life(listing(), step("i", S.IDENTIFIED, T0 + 9 * DAY), step("j", S.IDENTIFIED, T0))
    assert twice.identified_at == T0


def test_an_authority_listing_is_identified_when_signed() -> None:
    own = life(listing(AUTHORITY))
    assert own.identified_at == T0 and own.deadline == add_months(T0, 3)


def test_an_escalation_of_a_report_is_not_in_effect() -> None:
    state = life(listing(), step("e", S.ESCALATED, T0 + 100 * DAY))
    assert state.escalated_at is None and state.step is S.LISTED


def test_a_correction_before_the_deadline_rescinds_an_escalation() -> None:
    deadline = add_months(T0, 3)
    lst = listing(AUTHORITY)
    escalated = step("e", S.ESCALATED, deadline)
    in_time = life(lst, escalated, step("c", S.CORRECTED, deadline - DAY))
    assert in_time.escalated_at is None and in_time.step is S.CORRECTED
    at_the_deadline = life(lst, escalated, step("c", S.CORRECTED, deadline))
    assert at_the_deadline.escalated_at is None
    late = life(lst, escalated, step("c", S.CORRECTED, deadline + DAY))
    assert late.escalated_at == deadline and late.step is S.CORRECTED


def test_an_open_dispute_stops_the_deadline_and_a_decided_one_moves_it() -> None:
    lst = listing(AUTHORITY)
    deadline = add_months(T0, 3)
    opened = step("d", S.DISPUTED, T0 + 20 * DAY)
    open_state = life(lst, opened, step("e", S.ESCALATED, deadline))
    assert open_state.deadline is None and open_state.escalated_at is None
    assert open_state.step is S.DISPUTED and open_state.open_dispute is not None
    upheld = life(lst, opened, step("u", S.UPHELD, T0 + 32 * DAY), step("e", S.ESCALATED, deadline))
    assert upheld.deadline == deadline + 12 * DAY
    assert upheld.escalated_at is None  # signed at the old deadline: not in effect
    assert upheld.step is S.UPHELD and upheld.open_dispute is None
    later = life(
        lst,
        opened,
        step("u", S.UPHELD, T0 + 32 * DAY),
        step("e2", S.ESCALATED, deadline + 12 * DAY),
    )
    assert later.escalated_at == deadline + 12 * DAY and later.step is S.ESCALATED


def test_a_dispute_after_the_deadline_does_not_undo_the_escalation() -> None:
    lst = listing(AUTHORITY)
    deadline = add_months(T0, 3)
    state = life(
        lst,
        step("e", S.ESCALATED, deadline),
        step("d", S.DISPUTED, deadline + 5 * DAY),
        step("u", S.UPHELD, deadline + 9 * DAY),
    )
    assert state.deadline == deadline and state.escalated_at == deadline


def test_dispute_time_before_the_identification_does_not_count() -> None:
    state = life(
        listing(),
        step("d", S.DISPUTED, T0 + DAY),
        step("i", S.IDENTIFIED, T0 + 4 * DAY),
        step("u", S.UPHELD, T0 + 6 * DAY),
    )
    assert state.deadline == add_months(T0 + 4 * DAY, 3) + 2 * DAY


def test_withdrawn_voids_and_decisions_need_an_open_dispute() -> None:
    lst = listing(AUTHORITY)
    withdrawn = life(
        lst,
        step("d", S.DISPUTED, T0 + DAY),
        step("w", S.WITHDRAWN, T0 + 3 * DAY),
        step("r", S.REMOVED, T0 + 4 * DAY),
    )
    assert withdrawn.closing is S.WITHDRAWN and not withdrawn.in_force
    assert withdrawn.step is S.WITHDRAWN and withdrawn.closed_at == T0 + 3 * DAY
    (dispute,) = withdrawn.disputes
    assert dispute.decision is S.WITHDRAWN and dispute.decided_at == T0 + 3 * DAY
    # An UPHELD with no dispute open decides nothing; a second DISPUTED while one is
    # open opens nothing.
    stray = life(
        lst,
        step("u", S.UPHELD, T0),
        step("d1", S.DISPUTED, T0 + DAY),
        step("d2", S.DISPUTED, T0 + 2 * DAY),
    )
    assert len(stray.disputes) == 1 and stray.disputes[0].opened_at == T0 + DAY


def test_a_dispute_is_overdue_after_its_working_days() -> None:
    # Opened Friday 2026-10-02 10:00 Beijing; 15 working days (Mon-Fri, no calendar)
    # end on Friday 2026-10-23: overdue from Saturday 00:00 Beijing.
    opened = datetime(2026, 10, 2, 2, 0, tzinfo=UTC)
    due = decision_due_by(opened, DEFAULT_DISPUTE_DECISION_WORKING_DAYS, None)
    assert due == datetime(2026, 10, 23, 16, 0, tzinfo=UTC)
    state = life(listing(AUTHORITY), step("d", S.DISPUTED, opened))
    assert not dispute_overdue(state, None, due - timedelta(seconds=1))
    assert dispute_overdue(state, None, due)
    # The issuing alliance's policy sets the limit.
    policy = AlliancePolicy(
        issuer="spiffe://zj.alliance/gateway/gw", issued_at=T0, dispute_decision_working_days=1
    )
    assert dispute_overdue(state, policy, datetime(2026, 10, 5, 16, 0, tzinfo=UTC))
    decided = life(listing(AUTHORITY), step("d", S.DISPUTED, opened), step("u", S.UPHELD, due))
    assert not dispute_overdue(decided, None, due + 100 * DAY)
