"""The obligation rules of issue 17 as pure functions: own platforms, NOT_APPLICABLE,
satisfying measures by the issuing alliance's policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.lifecycle import StepRecord, derive
from gateway.core.obligations import (
    DEFAULT_SATISFYING,
    ObligationKind,
    ObligationState,
    evaluate,
    satisfying_measures,
)
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    MeasureRequirement,
    SanctionAction,
    SanctionMeasure,
    StoreRef,
    Subject,
)

ZJ, GD = "zj.alliance", "gd.alliance"
AMR = f"spiffe://{ZJ}/authority/amr"
ZJ_SHOP, GD_SHOP, GD_MALL = (
    f"spiffe://{ZJ}/platform/shop",
    f"spiffe://{GD}/platform/shop",
    f"spiffe://{GD}/platform/mall",
)
T0 = datetime(2026, 9, 1, tzinfo=UTC)


def _listing(*stores: StoreRef, kind: ListKind = ListKind.BLACKLIST) -> Listing:
    conduct = (
        ConductType.FAKE_TRANSACTIONS
        if kind is ListKind.BLACKLIST
        else ConductType.FALSE_ADVERTISING_PENALTY
    )
    return Listing(
        issuer=AMR,
        subject=Subject(uscc="91330100716105852F", stores=stores),
        list=kind,
        conduct=conduct,
        region_code="330100",
        decision_ref="d",
        listed_at=T0 - timedelta(days=92),
    )


def _states(listing: Listing, domain: str, **kw: object) -> dict[str, ObligationState]:
    result = evaluate(
        "ab" * 32,
        listing,
        lifecycle=derive("ab" * 32, listing, [StepRecord("esc", LifecycleStep.ESCALATED, T0)]),
        active_platforms=[ZJ_SHOP, GD_SHOP, GD_MALL],
        trust_domain=domain,
        grace=timedelta(days=7),
        at=T0 + timedelta(days=1),
        **kw,  # type: ignore[arg-type]
    )
    return {o.platform: o.state for o in result.obligations}


def test_each_gateway_tracks_only_its_own_platforms() -> None:
    store_less = _listing()
    pending = ObligationState.PENDING
    assert _states(store_less, GD, sanctions={}) == {GD_MALL: pending, GD_SHOP: pending}
    assert _states(store_less, ZJ, sanctions={}) == {ZJ_SHOP: pending}
    # A listing naming a Guangdong store obliges nobody in Zhejiang.
    named = _listing(StoreRef(GD_SHOP, "s-1"))
    assert _states(named, ZJ, sanctions={}) == {}
    assert _states(named, GD, sanctions={}) == {GD_SHOP: pending}


def test_not_applicable_ends_a_store_less_obligation_only() -> None:
    answered = {GD_SHOP}
    states = _states(_listing(), GD, sanctions={}, not_applicable=answered)
    assert states[GD_SHOP] is ObligationState.NOT_APPLICABLE
    assert states[GD_MALL] is ObligationState.PENDING
    named = _listing(StoreRef(GD_SHOP, "s-1"))
    assert _states(named, GD, sanctions={}, not_applicable=answered) == {
        GD_SHOP: ObligationState.PENDING
    }


def test_only_satisfying_measures_satisfy() -> None:
    rating_cut = {(GD_SHOP, SanctionMeasure.LOWER_CREDIT_RATING, ""): SanctionAction.APPLIED}
    closed = {(GD_SHOP, SanctionMeasure.CLOSE_STORE, ""): SanctionAction.APPLIED}
    assert _states(_listing(), GD, sanctions=rating_cut)[GD_SHOP] is ObligationState.PENDING
    assert _states(_listing(), GD, sanctions=closed)[GD_SHOP] is ObligationState.SATISFIED
    # Key scrutiny asks for a warning by default: a closure does not answer it.
    scrutiny = _listing(kind=ListKind.KEY_SCRUTINY)
    assert _states(scrutiny, GD, sanctions=closed)[GD_SHOP] is ObligationState.PENDING
    warned = {(GD_SHOP, SanctionMeasure.WARNING, ""): SanctionAction.APPLIED}
    assert _states(scrutiny, GD, sanctions=warned)[GD_SHOP] is ObligationState.SATISFIED


def test_the_most_specific_requirement_wins() -> None:
    listing = _listing()
    assert satisfying_measures(listing) == DEFAULT_SATISFYING[ListKind.BLACKLIST]
    everything = MeasureRequirement(None, None, (SanctionMeasure.PUBLIC_EXPOSURE,))
    by_list = MeasureRequirement(ListKind.BLACKLIST, None, (SanctionMeasure.RESTRICT_LOGISTICS,))
    by_conduct = MeasureRequirement(
        None, ConductType.FAKE_TRANSACTIONS, (SanctionMeasure.DEDUCT_CREDIT_POINTS,)
    )
    exact = MeasureRequirement(
        ListKind.BLACKLIST, ConductType.FAKE_TRANSACTIONS, (SanctionMeasure.CLOSE_STORE,)
    )
    other = MeasureRequirement(
        ListKind.BLACKLIST, ConductType.COUNTERFEIT, (SanctionMeasure.WARNING,)
    )
    rules = [everything, by_list, by_conduct, exact, other]
    assert satisfying_measures(listing, rules) == {SanctionMeasure.CLOSE_STORE}
    assert satisfying_measures(listing, rules[:3]) == {SanctionMeasure.DEDUCT_CREDIT_POINTS}
    assert satisfying_measures(listing, rules[:2]) == {SanctionMeasure.RESTRICT_LOGISTICS}
    assert satisfying_measures(listing, rules[:1]) == {SanctionMeasure.PUBLIC_EXPOSURE}
    assert satisfying_measures(listing, [other]) == DEFAULT_SATISFYING[ListKind.BLACKLIST]


# --- obligations follow the listing's lifecycle (issue 16 with issue 17) --------------

ZJ_MALL = f"spiffe://{ZJ}/platform/mall"
REPORTED_AT = T0 - timedelta(days=200)


def _reported(*stores: StoreRef) -> Listing:
    """A Zhejiang platform's report (not identified by being signed)."""
    return Listing(
        issuer=ZJ_MALL,
        subject=Subject(uscc="91330100716105852F", stores=stores),
        list=ListKind.BLACKLIST,
        conduct=ConductType.FAKE_TRANSACTIONS,
        region_code="330100",
        decision_ref="d",
        listed_at=REPORTED_AT,
    )


def _under(
    listing: Listing,
    steps: list[StepRecord],
    sanctions: dict[tuple[str, SanctionMeasure, str], SanctionAction] | None = None,
    not_applicable: frozenset[str] = frozenset(),
) -> dict[tuple[str, ObligationKind], ObligationState]:
    result = evaluate(
        "cd" * 32,
        listing,
        lifecycle=derive("cd" * 32, listing, steps),
        sanctions=sanctions or {},
        not_applicable=not_applicable,
        active_platforms=[ZJ_SHOP, GD_SHOP, GD_MALL],
        trust_domain=GD,
        grace=timedelta(days=7),
        at=T0 + timedelta(days=30),
    )
    return {(o.platform, o.kind): o.state for o in result.obligations}


def test_a_report_never_identified_obliges_nobody_even_when_escalated() -> None:
    escalated = StepRecord("esc", LifecycleStep.ESCALATED, T0)
    assert _under(_reported(), [escalated]) == {}
    # Identified, its deadline counts from the identification: an escalation at or after
    # it obliges Guangdong's own platforms (NOT_APPLICABLE still ends one).
    identified = StepRecord("idf", LifecycleStep.IDENTIFIED, REPORTED_AT + timedelta(days=10))
    states = _under(_reported(), [identified, escalated], not_applicable=frozenset({GD_SHOP}))
    assert states == {
        (GD_MALL, ObligationKind.APPLY): ObligationState.OUTSTANDING,
        (GD_SHOP, ObligationKind.APPLY): ObligationState.NOT_APPLICABLE,
    }


def test_an_open_dispute_before_the_deadline_starts_no_obligation() -> None:
    identified = StepRecord("idf", LifecycleStep.IDENTIFIED, REPORTED_AT + timedelta(days=10))
    disputed = StepRecord("dsp", LifecycleStep.DISPUTED, REPORTED_AT + timedelta(days=20))
    escalated = StepRecord("esc", LifecycleStep.ESCALATED, T0)
    assert _under(_reported(), [identified, disputed, escalated]) == {}


def test_withdrawn_voids_the_listing_and_own_platforms_owe_lifts() -> None:
    listing = _listing(StoreRef(GD_SHOP, "s-1"), StoreRef(ZJ_SHOP, "z-1"))
    escalated = StepRecord("esc", LifecycleStep.ESCALATED, T0)
    withdrawn = StepRecord("wdr", LifecycleStep.WITHDRAWN, T0 + timedelta(days=2))
    applied = {
        (GD_SHOP, SanctionMeasure.CLOSE_STORE, ""): SanctionAction.APPLIED,
        (ZJ_SHOP, SanctionMeasure.CLOSE_STORE, ""): SanctionAction.APPLIED,
    }
    assert _under(listing, [escalated], applied) == {
        (GD_SHOP, ObligationKind.APPLY): ObligationState.SATISFIED
    }
    # Void: no APPLY any more; the own platform that applied a measure owes its lift,
    # the other alliance's platform owes its own gateway, not this one.
    assert _under(listing, [escalated, withdrawn], applied) == {
        (GD_SHOP, ObligationKind.LIFT): ObligationState.OUTSTANDING
    }
    lifted = {**applied, (GD_SHOP, SanctionMeasure.CLOSE_STORE, ""): SanctionAction.LIFTED}
    assert _under(listing, [escalated, withdrawn], lifted) == {
        (GD_SHOP, ObligationKind.LIFT): ObligationState.SATISFIED
    }
