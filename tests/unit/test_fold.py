"""The fold: rules, pending records, member directory, and order independence."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.fold import (
    ListState,
    MemberDirectory,
    VerifiedRecord,
    in_force_step,
    sanction_wins,
    stronger_step,
)
from gateway.core.lifecycle import StepRecord, derive
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
    Subject,
)

PLATFORM = "spiffe://zj.alliance/platform/shop"
PLATFORM_B = "spiffe://zj.alliance/platform/mall"
AUTHORITY = "spiffe://zj.alliance/authority/zj-credit"
GATEWAY = "spiffe://zj.alliance/gateway/hz"
USCCS = ["91330100716105852F", "91440300708461136T", "91110000802100433B"]
T0 = datetime(2024, 11, 30, 8, 0, tzinfo=UTC)


def rid(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def listing_rec(
    label: str, uscc: str = USCCS[0], at: datetime = T0, issuer: str = AUTHORITY
) -> VerifiedRecord:
    """An authority's listing by default: identified when signed (a platform's is
    reported until an IDENTIFIED step)."""
    stmt = Listing(
        issuer=issuer,
        subject=Subject(uscc=uscc),
        list=ListKind.BLACKLIST,
        conduct=ConductType.COUNTERFEIT,
        region_code="330100",
        decision_ref=label,
        listed_at=at,
    )
    return VerifiedRecord(rid(label), issuer, stmt)


def change_rec(label: str, listing_id: str, step: LifecycleStep, at: datetime) -> VerifiedRecord:
    closing = step in (
        LifecycleStep.CORRECTED,
        LifecycleStep.REMOVED,
        LifecycleStep.UPHELD,
        LifecycleStep.WITHDRAWN,
    )
    stmt = StatusChange(
        issuer=AUTHORITY,
        listing_id=listing_id,
        step=step,
        effective_at=at,
        decision_ref="d" if closing else "",
        reason="r" if closing or step is LifecycleStep.DISPUTED else "",
        decided_by="court" if step is LifecycleStep.REMOVED else "",
        document_sha256=bytes(32) if step is LifecycleStep.DISPUTED else b"",
    )
    return VerifiedRecord(rid(label), AUTHORITY, stmt)


def sanction_rec(
    label: str,
    listing_id: str,
    action: SanctionAction,
    at: datetime,
    *,
    platform: str = PLATFORM,
    measure: SanctionMeasure = SanctionMeasure.CLOSE_STORE,
    other: str = "",
) -> VerifiedRecord:
    answer = action is SanctionAction.NOT_APPLICABLE  # no measure: the seller has no account
    stmt = SanctionConfirmation(
        issuer=platform,
        listing_id=listing_id,
        measure=None if answer else measure,
        measure_other="" if answer else other,
        action=action,
        effective_at=at,
    )
    return VerifiedRecord(rid(label), platform, stmt)


# --- rules ---------------------------------------------------------------------------


def test_new_listing_is_listed_and_in_force() -> None:
    state = ListState()
    rec = listing_rec("L1")
    state.apply(rec)
    view = state.listing(rec.record_id)
    assert view is not None
    assert view.step is LifecycleStep.LISTED
    assert view.step_record_id == rec.record_id
    assert view.step_at == T0
    assert view.in_force
    assert view.deadline == datetime(2025, 2, 28, 8, 0, tzinfo=UTC)
    assert not view.overdue(view.deadline)
    assert view.overdue(view.deadline + timedelta(microseconds=1))
    assert state.is_listed(f"uscc:{USCCS[0]}")
    assert not state.is_listed(f"uscc:{USCCS[1]}")
    assert state.listing(rid("nope")) is None


def test_step_precedence_not_arrival_order() -> None:
    lst = listing_rec("L1")
    lid = lst.record_id
    removed = change_rec("rm", lid, LifecycleStep.REMOVED, T0 + timedelta(days=1))
    escalated = change_rec("esc", lid, LifecycleStep.ESCALATED, T0 + timedelta(days=200))
    notice = change_rec("n", lid, LifecycleStep.NOTICE_SERVED, T0 + timedelta(days=300))
    state = ListState()
    for r in (lst, removed, escalated, notice):
        state.apply(r)
    view = state.listing(lid)
    assert view is not None
    assert view.step is LifecycleStep.REMOVED
    assert view.step_record_id == removed.record_id
    assert not view.in_force
    assert not view.overdue(T0 + timedelta(days=400))
    assert not state.is_listed(f"uscc:{USCCS[0]}")


def test_corrected_beats_escalated() -> None:
    lst = listing_rec("L1")
    state = ListState()
    state.apply(lst)
    state.apply(change_rec("c", lst.record_id, LifecycleStep.CORRECTED, T0))
    state.apply(change_rec("e", lst.record_id, LifecycleStep.ESCALATED, T0 + timedelta(days=99)))
    view = state.listing(lst.record_id)
    assert view is not None and view.step is LifecycleStep.CORRECTED


def test_escalated_listing_stays_in_force_and_overdue() -> None:
    lst = listing_rec("L1")
    state = ListState()
    state.apply(lst)
    state.apply(change_rec("e", lst.record_id, LifecycleStep.ESCALATED, T0 + timedelta(days=95)))
    view = state.listing(lst.record_id)
    assert view is not None and view.in_force
    assert view.overdue(T0 + timedelta(days=100))


def test_sanction_latest_wins_and_lifted_wins_ties() -> None:
    lst = listing_rec("L1")
    lid = lst.record_id
    state = ListState()
    state.apply(lst)
    t = T0 + timedelta(days=100)
    state.apply(sanction_rec("a1", lid, SanctionAction.APPLIED, t))
    key = (PLATFORM, SanctionMeasure.CLOSE_STORE, "")
    view = state.listing(lid)
    assert view is not None and view.sanctions[key].action is SanctionAction.APPLIED
    state.apply(sanction_rec("l1", lid, SanctionAction.LIFTED, t))
    view = state.listing(lid)
    assert view is not None and view.sanctions[key].action is SanctionAction.LIFTED
    # An older applied confirmation arriving later does not win.
    state.apply(sanction_rec("a0", lid, SanctionAction.APPLIED, t - timedelta(days=1)))
    view = state.listing(lid)
    assert view is not None
    assert view.sanctions[key].record_id == rid("l1")
    assert view.sanctions[key].effective_at == t


def test_sanctions_keyed_by_platform_measure_and_other() -> None:
    lst = listing_rec("L1")
    lid = lst.record_id
    state = ListState()
    state.apply(lst)
    state.apply(sanction_rec("a", lid, SanctionAction.APPLIED, T0))
    state.apply(sanction_rec("b", lid, SanctionAction.APPLIED, T0, platform=PLATFORM_B))
    o = SanctionMeasure.OTHER
    state.apply(sanction_rec("c", lid, SanctionAction.APPLIED, T0, measure=o, other="x"))
    state.apply(sanction_rec("d", lid, SanctionAction.LIFTED, T0, measure=o, other="y"))
    view = state.listing(lid)
    assert view is not None
    assert set(view.sanctions) == {
        (PLATFORM, SanctionMeasure.CLOSE_STORE, ""),
        (PLATFORM_B, SanctionMeasure.CLOSE_STORE, ""),
        (PLATFORM, o, "x"),
        (PLATFORM, o, "y"),
    }


def test_records_for_unknown_listing_wait() -> None:
    lst = listing_rec("L1")
    lid = lst.record_id
    state = ListState()
    state.apply(change_rec("c", lid, LifecycleStep.CORRECTED, T0))
    state.apply(sanction_rec("s", lid, SanctionAction.APPLIED, T0))
    assert state.pending_count() == 2
    assert state.listing(lid) is None
    state.apply(lst)
    assert state.pending_count() == 0
    view = state.listing(lid)
    assert view is not None
    assert view.step is LifecycleStep.CORRECTED
    assert len(view.sanctions) == 1


def test_apply_is_idempotent_by_record_id() -> None:
    lst = listing_rec("L1")
    state = ListState()
    c = change_rec("c", rid("other"), LifecycleStep.NOTICE_SERVED, T0)
    for _ in range(3):
        state.apply(lst)
        state.apply(c)
    assert state.pending_count() == 1
    assert len(list(state.listings())) == 1


def test_views_are_copies() -> None:
    lst = listing_rec("L1")
    state = ListState()
    state.apply(lst)
    before = state.listing(lst.record_id)
    state.apply(sanction_rec("s", lst.record_id, SanctionAction.APPLIED, T0))
    assert before is not None and before.sanctions == {}


def test_by_subject_and_listings_are_ordered() -> None:
    a = listing_rec("A", at=T0 + timedelta(days=2))
    b = listing_rec("B", at=T0)
    c = listing_rec("C", uscc=USCCS[1], at=T0 + timedelta(days=1))
    state = ListState()
    for r in (a, b, c):
        state.apply(r)
    key = f"uscc:{USCCS[0]}"
    assert [v.listing_id for v in state.by_subject(key)] == [b.record_id, a.record_id]
    assert [v.listing_id for v in state.listings()] == [b.record_id, c.record_id, a.record_id]
    assert state.by_subject("uscc:nobody") == []
    # One corrected, one still in force: the subject is listed.
    state.apply(change_rec("x", b.record_id, LifecycleStep.CORRECTED, T0))
    assert state.is_listed(key)
    state.apply(change_rec("y", a.record_id, LifecycleStep.REMOVED, T0))
    assert not state.is_listed(key)


def test_member_records_are_not_list_state() -> None:
    state = ListState()
    mr = MemberRecord(
        issuer=GATEWAY,
        member_id=PLATFORM,
        role=Role.PLATFORM,
        region_code="330100",
        keys=(MemberKey(b"\x01" * 32, T0),),
        status=MemberStatus.ACTIVE,
        issued_at=T0,
    )
    state.apply(VerifiedRecord(rid("m"), GATEWAY, mr))
    assert list(state.listings()) == []
    assert state.pending_count() == 0


# --- order independence (property) ---------------------------------------------------

# Repeats make ties; 95 and 200 lie past a 3-month deadline, 120 past one moved by a
# dispute or counted from a later identification.
_TIMES = [T0 + timedelta(days=d) for d in (0, 1, 1, 30, 95, 120, 200)]
_STEPS = [s for s in LifecycleStep if s is not LifecycleStep.LISTED]


@st.composite
def record_sets(draw: st.DrawFn) -> list[VerifiedRecord]:
    n_listings = draw(st.integers(1, 3))
    listings = [
        listing_rec(
            f"L{i}",
            uscc=draw(st.sampled_from(USCCS)),
            at=draw(st.sampled_from(_TIMES)),
            issuer=draw(st.sampled_from([PLATFORM, AUTHORITY])),
        )
        for i in range(n_listings)
    ]
    # Targets include a listing that never arrives.
    targets = [r.record_id for r in listings] + [rid("never")]
    records = list(listings)
    for i in range(draw(st.integers(0, 10))):
        records.append(
            change_rec(
                f"C{i}",
                draw(st.sampled_from(targets)),
                draw(st.sampled_from(_STEPS)),
                draw(st.sampled_from(_TIMES)),
            )
        )
    for i in range(draw(st.integers(0, 8))):
        records.append(
            sanction_rec(
                f"S{i}",
                draw(st.sampled_from(targets)),
                draw(st.sampled_from(list(SanctionAction))),
                draw(st.sampled_from(_TIMES)),
                platform=draw(st.sampled_from([PLATFORM, PLATFORM_B])),
                measure=draw(
                    st.sampled_from([SanctionMeasure.CLOSE_STORE, SanctionMeasure.PUBLIC_EXPOSURE])
                ),
            )
        )
    # Duplicates: some records delivered more than once.
    records += draw(st.lists(st.sampled_from(records), max_size=4))
    return records


def _fold(records: list[VerifiedRecord]) -> ListState:
    state = ListState()
    for r in records:
        state.apply(r)
    return state


@settings(max_examples=300)
@given(st.data())
def test_any_order_gives_the_same_state(data: st.DataObject) -> None:
    records = data.draw(record_sets())
    reference = _fold(records)
    shuffled = data.draw(st.permutations(records))
    other = _fold(shuffled)
    assert other.snapshot() == reference.snapshot()
    assert other.pending_count() == reference.pending_count()
    for view in reference.listings():
        assert other.listing(view.listing_id) == view


def _steps_of(records: list[VerifiedRecord], listing_id: str) -> list[StepRecord]:
    return [
        StepRecord(r.record_id, r.statement.step, r.statement.effective_at)
        for r in records
        if isinstance(r.statement, StatusChange) and r.statement.listing_id == listing_id
    ]


@given(record_sets())
def test_removed_is_final(records: list[VerifiedRecord]) -> None:
    """A removal is final; only a withdrawal (void from the start) outranks it."""
    state = _fold(records)
    for view in state.listings():
        steps = {s.step for s in _steps_of(records, view.listing_id)}
        if LifecycleStep.WITHDRAWN in steps:
            assert view.step is LifecycleStep.WITHDRAWN
            assert not view.in_force
        elif LifecycleStep.REMOVED in steps:
            assert view.step is LifecycleStep.REMOVED
            assert not view.in_force


@given(record_sets())
def test_the_projection_rule_agrees_with_the_fold(records: list[VerifiedRecord]) -> None:
    """The stored projection derives each listing's state from its stored steps."""
    state = _fold(records)
    for view in state.listings():
        steps = _steps_of(records, view.listing_id)
        assert derive(view.listing_id, view.listing, reversed(steps)) == view.lifecycle
        assert in_force_step(view.step) is view.in_force


@given(record_sets())
def test_due_process_invariants(records: list[VerifiedRecord]) -> None:
    state = _fold(records)
    for view in state.listings():
        life = view.lifecycle
        steps = _steps_of(records, view.listing_id)
        identified = view.listing.issuer == AUTHORITY or any(
            s.step is LifecycleStep.IDENTIFIED for s in steps
        )
        assert life.identified is identified
        if not identified:
            # A platform's report runs no deadline, never escalates, never is overdue.
            assert life.deadline is None and life.escalated_at is None
            assert not view.overdue(T0 + timedelta(days=10_000))
        if life.open_dispute is not None and life.open_dispute.opened_at < (
            life.escalated_at or T0 + timedelta(days=10_000)
        ):
            assert life.deadline is None or life.open_dispute.opened_at >= life.deadline
        retirements = [s.effective_at for s in steps if s.step is LifecycleStep.RETIRED]
        if not identified:
            # RETIRED closes only an identified listing (issue 18).
            assert life.closing is not LifecycleStep.RETIRED
        if life.closing is LifecycleStep.RETIRED:
            assert life.identified_at is not None
            assert life.closed_at is not None and life.closed_at >= life.identified_at
            assert life.closed_at in retirements
            # Any other closing step outranks a retirement.
            others = {s.step for s in steps} & {
                LifecycleStep.CORRECTED,
                LifecycleStep.REMOVED,
                LifecycleStep.WITHDRAWN,
            }
            assert not others
        if life.escalated_at is not None:
            assert life.deadline is not None and life.escalated_at >= life.deadline
            # No closing step is effective at or before an escalation in effect.
            assert life.closed_at is None or life.closed_at > life.escalated_at


def test_rule_helpers() -> None:
    assert stronger_step(LifecycleStep.REMOVED, LifecycleStep.CORRECTED) is LifecycleStep.REMOVED
    assert stronger_step(LifecycleStep.ESCALATED, LifecycleStep.CORRECTED) is (
        LifecycleStep.CORRECTED
    )
    assert stronger_step(LifecycleStep.LISTED, LifecycleStep.NOTICE_SERVED) is (
        LifecycleStep.NOTICE_SERVED
    )
    assert [s for s in LifecycleStep if not in_force_step(s)] == [
        LifecycleStep.CORRECTED,
        LifecycleStep.REMOVED,
        LifecycleStep.WITHDRAWN,
        LifecycleStep.RETIRED,
    ]
    applied = (T0, int(SanctionAction.APPLIED), "b")
    lifted = (T0, int(SanctionAction.LIFTED), "a")
    assert sanction_wins(lifted, applied)
    assert not sanction_wins(applied, lifted)
    assert sanction_wins((T0 + timedelta(seconds=1), 1, "a"), lifted)
    assert not sanction_wins(applied, applied)


# --- member directory ----------------------------------------------------------------


def _member(at: datetime, status: MemberStatus, *keys: MemberKey) -> MemberRecord:
    return MemberRecord(
        issuer=GATEWAY,
        member_id=PLATFORM,
        role=Role.PLATFORM,
        region_code="330100",
        keys=keys,
        status=status,
        issued_at=at,
    )


def test_member_directory_newest_wins_in_any_order() -> None:
    k1 = MemberKey(b"\x01" * 32, T0, T0 + timedelta(days=30))
    k2 = MemberKey(b"\x02" * 32, T0 + timedelta(days=20))
    v1 = (rid("v1"), _member(T0, MemberStatus.ACTIVE, k1))
    v2 = (rid("v2"), _member(T0 + timedelta(days=20), MemberStatus.ACTIVE, k1, k2))
    for order in ([v1, v2], [v2, v1], [v2, v1, v2]):
        d = MemberDirectory()
        for record_id, rec in order:
            d.apply(record_id, rec)
        assert d.get(PLATFORM) == v2[1]
        assert d.keys_valid_at(PLATFORM, T0 + timedelta(days=25)) == [b"\x01" * 32, b"\x02" * 32]
        assert d.keys_valid_at(PLATFORM, T0 + timedelta(days=31)) == [b"\x02" * 32]
        assert d.keys_valid_at(PLATFORM, T0 - timedelta(days=1)) == []


def test_member_directory_suspension_and_ties() -> None:
    k = MemberKey(b"\x01" * 32, T0)
    active = _member(T0, MemberStatus.ACTIVE, k)
    suspended = _member(T0 + timedelta(days=1), MemberStatus.SUSPENDED)
    d = MemberDirectory()
    d.apply(rid("s"), suspended)
    d.apply(rid("a"), active)
    assert d.keys_valid_at(PLATFORM, T0 + timedelta(days=2)) == []
    assert d.get(PLATFORM) == suspended
    # Equal issued_at: the greater record id wins, whatever the order.
    other = _member(T0 + timedelta(days=1), MemberStatus.ACTIVE, k)
    ids = sorted([rid("s"), rid("o")])
    winner = suspended if ids[1] == rid("s") else other
    for order in (
        [(rid("s"), suspended), (rid("o"), other)],
        [(rid("o"), other), (rid("s"), suspended)],
    ):
        d = MemberDirectory()
        for record_id, rec in order:
            d.apply(record_id, rec)
        assert d.get(PLATFORM) == winner


def test_member_directory_unknown_member() -> None:
    d = MemberDirectory()
    assert d.get(PLATFORM) is None
    assert d.keys_valid_at(PLATFORM, T0) == []
    assert list(d.members()) == []
