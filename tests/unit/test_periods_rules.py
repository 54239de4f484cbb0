"""Publication periods (issue 18 item 3): the policy field, the RETIRED step, who sees a
listing once its publication ended, and the public feed's rule."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.codec import decode_statement, encode_statement
from gateway.core.federation import authorize_without_listing
from gateway.core.fold import ListingView
from gateway.core.identifiers import MemberId
from gateway.core.lifecycle import Lifecycle, StepRecord, derive
from gateway.core.obligations import ObligationKind, ObligationState, evaluate
from gateway.core.periods import (
    DEFAULT_PERIODS,
    Period,
    policy_period,
    publication_end,
    publication_period,
    shortest_maximum,
)
from gateway.core.policy import authorize_statement
from gateway.core.public_index import IndexedRecord, PublicIndex
from gateway.core.publication import PublicStatus, entry_fields, publication
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    PublicationPeriod,
    SanctionAction,
    SanctionMeasure,
    StatusChange,
    Subject,
    add_months,
)
from gateway.core.visibility import Visibility, visibility
from gateway.errors import ConfigError, PermissionError, RecordError
from gateway.ops.policy_file import describe_policy, load_policy_file, parse_policy

TD = "zj.alliance.test"
GW = f"spiffe://{TD}/gateway/gw"
GD_GW = "spiffe://gd.alliance.test/gateway/gw"
AMR = f"spiffe://{TD}/authority/zj-amr"
SHOP = f"spiffe://{TD}/platform/shop-a"
SHOP_B = f"spiffe://{TD}/platform/shop-b"
MONITOR = f"spiffe://{TD}/monitor/ndrc-monitor"
USCC = "91330100716105852F"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LID = "a" * 64
DAY = timedelta(days=1)
S = LifecycleStep
POLICY_TYPE = "application/vnd.alliance.alliance-policy.v1+protobuf"


def _listing(
    issuer: str = AMR,
    kind: ListKind = ListKind.BLACKLIST,
    conduct: ConductType = ConductType.FAKE_TRANSACTIONS,
) -> Listing:
    return Listing(
        issuer=issuer,
        subject=Subject(uscc=USCC, name="示例公司"),
        list=kind,
        conduct=conduct,
        region_code="330100",
        decision_ref="D-1",
        listed_at=T0,
    )


def _step(label: str, step: LifecycleStep, at: datetime) -> StepRecord:
    return StepRecord(hashlib.sha256(label.encode()).hexdigest(), step, at)


def _life(lst: Listing, *steps: StepRecord) -> Lifecycle:
    results = {derive(LID, lst, order) for order in itertools.permutations(steps)}
    assert len(results) == 1, "the state must not depend on the order of the steps"
    return results.pop()


def _change(step: LifecycleStep, at: datetime, issuer: str = AMR) -> StatusChange:
    closing = step in (S.CORRECTED, S.REMOVED, S.WITHDRAWN)
    return StatusChange(
        issuer=issuer,
        listing_id=LID,
        step=step,
        effective_at=at,
        decision_ref="R-1" if closing else "",
        reason="整改完成" if closing else "",
        decided_by="市场监管局" if step is S.REMOVED else "",
    )


# --- the policy field -----------------------------------------------------------------


def test_defaults_are_the_2019_repair_rules() -> None:
    assert DEFAULT_PERIODS[ListKind.BLACKLIST] == Period(6, 36)
    assert DEFAULT_PERIODS[ListKind.KEY_SCRUTINY] == Period(3, 12)
    scrutiny = _listing(kind=ListKind.KEY_SCRUTINY, conduct=ConductType.FALSE_ADVERTISING_PENALTY)
    assert policy_period(_listing(), None) == Period(6, 36)
    assert policy_period(scrutiny, None) == Period(3, 12)
    assert shortest_maximum(None) == 12


def test_the_most_specific_rule_wins() -> None:
    rules = (
        PublicationPeriod(None, None, 1, 2),
        PublicationPeriod(ListKind.BLACKLIST, None, 3, 4),
        PublicationPeriod(None, ConductType.FAKE_TRANSACTIONS, 5, 6),
        PublicationPeriod(ListKind.BLACKLIST, ConductType.FAKE_TRANSACTIONS, 7, 8),
    )
    for order in itertools.permutations(rules):
        assert publication_period(_listing(), order) == Period(7, 8)
    assert publication_period(_listing(), rules[:3]) == Period(5, 6)
    assert publication_period(_listing(), rules[:2]) == Period(3, 4)
    assert publication_period(_listing(), rules[:1]) == Period(1, 2)
    other = _listing(conduct=ConductType.COUNTERFEIT)
    assert publication_period(other, rules[2:]) == DEFAULT_PERIODS[ListKind.BLACKLIST]
    policy = AlliancePolicy(issuer=GW, issued_at=T0, publication_periods=rules[:1])
    assert shortest_maximum(policy) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, None, 7, 6), r"minimum_months: 7 is more than maximum_months 6"),
        ((None, None, 0, 0), r"maximum_months: must be at least 1"),
        ((None, None, 0, 121), r"maximum_months: must be an integer 0 to 120"),
        ((None, None, -1, 3), r"minimum_months: must be an integer 0 to 120"),
        ((None, None, True, 3), r"minimum_months: must be an integer"),
        (
            (ListKind.KEY_SCRUTINY, ConductType.COUNTERFEIT, 1, 2),
            r"COUNTERFEIT belongs to another list than KEY_SCRUTINY",
        ),
    ],
)
def test_period_rules(args: tuple[object, object, object, object], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        PublicationPeriod(*args)  # type: ignore[arg-type]


def test_a_policy_refuses_repeated_pairs_and_too_many_rules() -> None:
    rule = PublicationPeriod(ListKind.BLACKLIST, None, 1, 2)
    with pytest.raises(RecordError, match=r"must not repeat a \(list, conduct\) pair"):
        AlliancePolicy(issuer=GW, issued_at=T0, publication_periods=(rule, rule))
    many = tuple(PublicationPeriod(None, c, 1, 2) for c in ConductType)
    AlliancePolicy(issuer=GW, issued_at=T0, publication_periods=many)
    with pytest.raises(RecordError, match=r"must be PublicationPeriod"):
        AlliancePolicy(issuer=GW, issued_at=T0, publication_periods=("x",))  # type: ignore[arg-type]


def test_field_8_round_trips_and_bad_bytes_are_refused() -> None:
    policy = AlliancePolicy(
        issuer=GW,
        issued_at=T0,
        publication_periods=(
            PublicationPeriod(None, None, 0, 1),
            PublicationPeriod(ListKind.KEY_SCRUTINY, ConductType.CONTRACT_BREACH_PENALTY, 2, 9),
        ),
    )
    payload_type, payload = encode_statement(policy)
    assert decode_statement(payload_type, payload) == policy
    # minimum > maximum on the wire: field 8 = {3: 5, 4: 2}
    bad = payload + bytes([0x42, 0x04, 0x18, 0x05, 0x20, 0x02])
    with pytest.raises(RecordError, match=r"publication_periods.minimum_months: 5 is more"):
        decode_statement(POLICY_TYPE, bad)
    # An unknown field inside a PublicationPeriod: {5: 1}
    unknown = payload + bytes([0x42, 0x04, 0x20, 0x02, 0x28, 0x01])
    with pytest.raises(RecordError, match=r"unknown field"):
        decode_statement(POLICY_TYPE, unknown)


def test_the_policy_file_sets_periods(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        "[[publication_periods]]\n"
        'list = "blacklist"\n'
        'conduct = "COUNTERFEIT"\n'
        "minimum_months = 12\n"
        "maximum_months = 60\n"
        "[[publication_periods]]\n"
        "minimum_months = 1\n"
        "maximum_months = 6\n",
        encoding="utf-8",
    )
    p = load_policy_file(path)
    assert p.publication_periods == (
        PublicationPeriod(ListKind.BLACKLIST, ConductType.COUNTERFEIT, 12, 60),
        PublicationPeriod(None, None, 1, 6),
    )
    signed = AlliancePolicy(issuer=GW, issued_at=T0, publication_periods=p.publication_periods)
    described = describe_policy(signed)
    assert "publication_period BLACKLIST/COUNTERFEIT: 12 to 60 months" in described
    assert "publication_period any list/any conduct: 1 to 6 months" in described
    assert "publication_period BLACKLIST/any conduct (default): 6 to 36 months" in (
        describe_policy(None)
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"publication_periods": {"minimum_months": 1}}, "must be an array of tables"),
        ({"publication_periods": [3]}, r"publication_periods\[0\]: must be a table"),
        ({"publication_periods": [{"maximum_months": 3}]}, "minimum_months required"),
        (
            {"publication_periods": [{"minimum_months": 1, "maximum_months": 2, "x": 1}]},
            "unknown key",
        ),
        (
            {"publication_periods": [{"minimum_months": 4, "maximum_months": 2}]},
            "4 is more than maximum_months 2",
        ),
        (
            {"publication_periods": [{"minimum_months": "1", "maximum_months": 2}]},
            "minimum_months must be an integer",
        ),
        (
            {"publication_periods": [{"list": "X", "minimum_months": 1, "maximum_months": 2}]},
            "'X' is not one of",
        ),
    ],
)
def test_policy_file_period_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(data)


# --- the RETIRED step -----------------------------------------------------------------


def test_retired_closes_an_identified_listing_in_any_order() -> None:
    end = add_months(T0, 36)
    state = _life(
        _listing(), _step("e", S.ESCALATED, add_months(T0, 4)), _step("r", S.RETIRED, end)
    )
    assert state.closing is S.RETIRED and not state.in_force and state.closed_at == end
    assert state.step is S.RETIRED
    # A repair, a removal or a withdrawal outranks it (whatever the order).
    for other in (S.CORRECTED, S.REMOVED, S.WITHDRAWN):
        both = _life(_listing(), _step("r", S.RETIRED, end), _step("o", other, end + DAY))
        assert both.closing is other and both.closed_at == end


def test_retired_counts_only_on_an_identified_listing() -> None:
    report = _listing(issuer=SHOP)
    never = _life(report, _step("r", S.RETIRED, T0 + DAY))
    assert never.in_force and never.closing is None and never.step is S.LISTED
    # Before the identification it does not count either; after it, it does.
    early = _life(report, _step("r", S.RETIRED, T0), _step("i", S.IDENTIFIED, T0 + DAY))
    assert early.in_force
    late = _life(report, _step("i", S.IDENTIFIED, T0), _step("r", S.RETIRED, T0 + DAY))
    assert late.closing is S.RETIRED


def test_retired_ends_sanctions_and_leaves_lifts_owed() -> None:
    end = add_months(T0, 36)
    state = _life(
        _listing(), _step("e", S.ESCALATED, add_months(T0, 4)), _step("r", S.RETIRED, end)
    )
    result = evaluate(
        LID,
        _listing(),
        lifecycle=state,
        sanctions={(SHOP, SanctionMeasure.CLOSE_STORE, ""): SanctionAction.APPLIED},
        active_platforms=[SHOP, SHOP_B],
        trust_domain=TD,
        grace=timedelta(days=7),
        at=end + 8 * DAY,
    )
    assert [(o.platform, o.kind, o.state) for o in result.obligations] == [
        (SHOP, ObligationKind.LIFT, ObligationState.OUTSTANDING)
    ]


def test_only_the_issuing_gateway_may_retire() -> None:
    listing = _listing()
    retire = _change(S.RETIRED, add_months(T0, 36), issuer=GW)
    authorize_statement(MemberId.parse(GW), retire, listing=listing, signer_region=None)
    gd = _change(S.RETIRED, add_months(T0, 36), issuer=GD_GW)
    with pytest.raises(PermissionError, match=r"may retire only listings issued in trust domain"):
        authorize_statement(MemberId.parse(GD_GW), gd, listing=listing, signer_region=None)
    # Not the issuer, not an authority of the unit, not a platform.
    for signer, region in ((AMR, "330100"), (SHOP, None)):
        own = _listing(issuer=signer)
        change = _change(S.RETIRED, add_months(T0, 36), issuer=signer)
        with pytest.raises(PermissionError, match=r"may not record RETIRED"):
            authorize_statement(MemberId.parse(signer), change, listing=own, signer_region=region)
        with pytest.raises(PermissionError, match=r"may not record RETIRED"):
            authorize_without_listing(MemberId.parse(signer), change)
    authorize_without_listing(MemberId.parse(GW), retire)


# --- publication end and who sees what -------------------------------------------------


def test_publication_end() -> None:
    blacklist = Period(6, 36)
    listing = _listing()
    in_force = _life(listing)
    assert publication_end(in_force, blacklist) == add_months(T0, 36)
    early_fix = _life(listing, _step("c", S.CORRECTED, T0 + 10 * DAY))
    assert publication_end(early_fix, blacklist) == add_months(T0, 6)  # the minimum runs
    late_fix = _life(listing, _step("c", S.REMOVED, add_months(T0, 8)))
    assert publication_end(late_fix, blacklist) == add_months(T0, 8)
    void = _life(listing, _step("w", S.WITHDRAWN, T0 + DAY))
    assert publication_end(void, blacklist) == T0 + DAY  # never published again
    retired = _life(listing, _step("r", S.RETIRED, add_months(T0, 36)))
    assert publication_end(retired, blacklist) == add_months(T0, 36)
    report = _life(_listing(issuer=SHOP))
    assert publication_end(report, blacklist) is None  # no period runs unidentified


def _seen(viewer: str, end: datetime | None, at: datetime, applying: set[str]) -> Visibility:
    return visibility(MemberId.parse(viewer), publication_end=end, applying=applying, at=at)


def test_the_visibility_table() -> None:
    end = add_months(T0, 6)
    before, after = end - DAY, end
    involved = {SHOP}
    # Before the end: everyone as today.
    for viewer in (SHOP, SHOP_B, AMR, MONITOR, GW):
        assert _seen(viewer, end, before, involved) is Visibility.FULL
        assert _seen(viewer, None, after + 1000 * DAY, involved) is Visibility.FULL
    # After it: authorities, monitors and gateways see the history.
    for viewer in (AMR, MONITOR, GW):
        assert _seen(viewer, end, after, involved) is Visibility.FULL
    # A platform still applying a measure sees what it must lift; any other, nothing.
    assert _seen(SHOP, end, after, involved) is Visibility.LIFT_ONLY
    assert _seen(SHOP_B, end, after, involved) is Visibility.HIDDEN
    assert _seen(SHOP, end, after, set()) is Visibility.HIDDEN


# --- the public feed ------------------------------------------------------------------


def _view(listing: Listing, *steps: StepRecord) -> ListingView:
    return ListingView(LID, listing, derive(LID, listing, steps), {})


def test_the_feed_follows_the_periods() -> None:
    listing = _listing()
    in_force = _view(listing)
    pub = publication(in_force, removal=None, publisher_trust_domain=TD, at=T0 + DAY)
    assert pub is not None and pub.status is PublicStatus.IN_FORCE
    at_max = add_months(T0, 36)
    pub = publication(in_force, removal=None, publisher_trust_domain=TD, at=at_max)
    assert pub is not None and pub.status is PublicStatus.EXPIRED
    # A policy's period decides; without periods (a proof verifier) nothing expires.
    short = Period(1, 2)
    pub = publication(
        in_force, removal=None, publisher_trust_domain=TD, at=add_months(T0, 2), period=short
    )
    assert pub is not None and pub.status is PublicStatus.EXPIRED
    pub = publication(
        in_force, removal=None, publisher_trust_domain=TD, at=at_max, apply_periods=False
    )
    assert pub is not None and pub.status is PublicStatus.IN_FORCE
    # Corrected early: a removal until the minimum ends, then a tombstone.
    fix = _change(S.CORRECTED, T0 + 10 * DAY)
    corrected = _view(listing, StepRecord("c" * 64, S.CORRECTED, fix.effective_at))
    kw = {"removal": fix, "publisher_trust_domain": TD}
    pub = publication(corrected, at=add_months(T0, 6) - DAY, **kw)  # type: ignore[arg-type]
    assert pub is not None and pub.status is PublicStatus.REMOVED
    pub = publication(corrected, at=add_months(T0, 6), **kw)  # type: ignore[arg-type]
    assert pub is not None and pub.status is PublicStatus.EXPIRED
    fields = entry_fields(pub, authority_name="浙江省市场监督管理局")
    assert fields["status"] == "expired" and fields["removal_step"] == "corrected"
    assert fields["name"] == fields["uscc"] == fields["removal_reason"] == ""
    # RETIRED: a tombstone at once.
    retire = _change(S.RETIRED, at_max, issuer=GW)
    retired = _view(listing, StepRecord("r" * 64, S.RETIRED, at_max))
    pub = publication(retired, removal=retire, publisher_trust_domain=TD, at=at_max)
    assert pub is not None and pub.status is PublicStatus.EXPIRED
    assert entry_fields(pub, authority_name="")["removal_step"] == "retired"


def _rid(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def test_the_index_drops_ended_entries_from_every_view_but_the_change_feed() -> None:
    index = PublicIndex(TD)
    listing_id = _rid("listing")
    listing = _listing()
    fix = StatusChange(
        issuer=AMR,
        listing_id=listing_id,
        step=S.CORRECTED,
        effective_at=T0 + 10 * DAY,
        decision_ref="R-1",
        reason="整改完成",
    )
    policy = AlliancePolicy(
        issuer=GW,
        issued_at=T0,
        publication_periods=(PublicationPeriod(ListKind.BLACKLIST, None, 2, 12),),
    )
    index.apply(
        [
            IndexedRecord(0, _rid("policy"), policy),
            IndexedRecord(1, listing_id, listing),
            IndexedRecord(2, _rid("fix"), fix),
        ],
        3,
    )
    during = add_months(T0, 2) - DAY
    assert index.entry(listing_id, during) is not None
    assert [e.publication.listing_id for e in index.by_uscc(USCC, during)] == [listing_id]
    assert index.search_name("示例", 10, during) == [USCC]
    ended = add_months(T0, 2)  # the policy's minimum, not the default 6
    assert index.entry(listing_id, ended) is None
    assert index.by_uscc(USCC, ended) == []
    assert index.search_name("示例", 10, ended) == []
    page, _, _ = index.page(0, 10, at=ended)
    assert [(e.change_index, e.publication.status) for e in page] == [(2, PublicStatus.EXPIRED)]
    assert index.page(0, 10, at=ended, in_force_only=True)[0] == []
