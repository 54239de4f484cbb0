"""Correction deadlines: calendar-month arithmetic, the rule table, the overdue test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.core.deadlines import DEFAULT_RULES, DeadlineRules, deadline_of, is_overdue
from gateway.core.fold import ListState, VerifiedRecord
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    StatusChange,
    Subject,
    add_months,
)
from gateway.errors import ConfigError, RecordError

ISSUER = "spiffe://zj.alliance.test/authority/zj-amr"
LISTING_ID = "ab" * 32


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _listing(listed_at: datetime, **kw: Any) -> Listing:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "subject": Subject(uscc="91330100716105852F"),
        "list": ListKind.BLACKLIST,
        "conduct": ConductType.FAKE_TRANSACTIONS,
        "region_code": "330100",
        "decision_ref": "ZJ-AMR-2026-0042",
        "listed_at": listed_at,
    }
    values.update(kw)
    return Listing(**values)


# --- calendar months -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("listed", "months", "expected"),
    [
        # Month ends clamp to the last day of the target month.
        (_utc(2026, 1, 31, 9), 1, _utc(2026, 2, 28, 9)),
        (_utc(2024, 1, 31, 9), 1, _utc(2024, 2, 29, 9)),
        (_utc(2026, 3, 31), 1, _utc(2026, 4, 30)),
        (_utc(2026, 8, 31), 3, _utc(2026, 11, 30)),
        # Nov 30 + 3 months: February, leap year or not.
        (_utc(2023, 11, 30), 3, _utc(2024, 2, 29)),
        (_utc(2024, 11, 30), 3, _utc(2025, 2, 28)),
        (_utc(2026, 11, 30, 23, 59, 59), 3, _utc(2027, 2, 28, 23, 59, 59)),
        (_utc(2027, 11, 29), 3, _utc(2028, 2, 29)),
        # Feb 29 listings.
        (_utc(2024, 2, 29, 12), 3, _utc(2024, 5, 29, 12)),
        (_utc(2024, 2, 29, 12), 12, _utc(2025, 2, 28, 12)),
        (_utc(2024, 2, 29, 12), 48, _utc(2028, 2, 29, 12)),
        # Year boundaries and the time of day.
        (_utc(2026, 10, 15, 8, 30), 3, _utc(2027, 1, 15, 8, 30)),
        (_utc(2026, 12, 31, 23, 0), 2, _utc(2027, 2, 28, 23, 0)),
    ],
)
def test_default_deadline_is_calendar_months(
    listed: datetime, months: int, expected: datetime
) -> None:
    assert add_months(listed, months) == expected
    rules = DeadlineRules({(ListKind.BLACKLIST, None): months, (ListKind.KEY_SCRUTINY, None): 3})
    assert rules.deadline_for(ListKind.BLACKLIST, ConductType.COUNTERFEIT, listed) == expected


def test_unset_deadline_is_listed_at_plus_three_months() -> None:
    # 02:00 on 1 December in Beijing: due 02:00 on 1 March in Beijing.
    beijing = datetime(2026, 12, 1, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert deadline_of(_listing(beijing)) == datetime(2027, 3, 1, 2, 0, tzinfo=beijing.tzinfo)
    assert deadline_of(_listing(_utc(2023, 11, 30))) == _utc(2024, 2, 29)
    assert deadline_of(_listing(_utc(2024, 11, 30))) == _utc(2025, 2, 28)


def test_signed_deadline_wins_over_the_default() -> None:
    listing = _listing(_utc(2026, 1, 31), correction_deadline=_utc(2026, 3, 1))
    assert deadline_of(listing) == _utc(2026, 3, 1)


def test_deadline_before_listing_is_refused() -> None:
    with pytest.raises(RecordError, match="correction_deadline"):
        _listing(_utc(2026, 5, 1), correction_deadline=_utc(2026, 4, 30))
    with pytest.raises(RecordError, match="correction_deadline"):
        _listing(_utc(2026, 5, 1), correction_deadline=_utc(2026, 5, 1))


# --- the overdue test with a controllable clock ---------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.mark.parametrize(
    ("listed", "deadline"),
    [
        (_utc(2026, 1, 31, 10), _utc(2026, 4, 30, 10)),
        (_utc(2023, 11, 30), _utc(2024, 2, 29)),
        (_utc(2024, 11, 30), _utc(2025, 2, 28)),
        (_utc(2024, 2, 29, 6), _utc(2024, 5, 29, 6)),
    ],
)
def test_overdue_strictly_after_the_deadline(listed: datetime, deadline: datetime) -> None:
    listing = _listing(listed)
    clock = Clock(deadline - timedelta(days=1))
    assert not is_overdue(listing, LifecycleStep.LISTED, clock())
    clock.advance(timedelta(days=1))  # exactly at the deadline: still in time
    assert clock() == deadline
    assert not is_overdue(listing, LifecycleStep.LISTED, clock())
    clock.advance(timedelta(microseconds=1))
    assert is_overdue(listing, LifecycleStep.LISTED, clock())
    assert is_overdue(listing, LifecycleStep.NOTICE_SERVED, clock())
    assert is_overdue(listing, LifecycleStep.COMMITMENT_SIGNED, clock())
    # An escalated listing is still in force and overdue; a closed one is neither.
    assert is_overdue(listing, LifecycleStep.ESCALATED, clock())
    assert not is_overdue(listing, LifecycleStep.CORRECTED, clock())
    assert not is_overdue(listing, LifecycleStep.REMOVED, clock())


def test_fold_view_agrees_with_is_overdue() -> None:
    listing = _listing(_utc(2024, 11, 30))
    state = ListState()
    state.apply(VerifiedRecord(LISTING_ID, ISSUER, listing))
    view = state.listing(LISTING_ID)
    assert view is not None
    for at in (_utc(2025, 2, 28), _utc(2025, 2, 28, 0, 0, 1)):
        assert view.overdue(at) == is_overdue(listing, view.step, at)
    state.apply(
        VerifiedRecord(
            "cd" * 32,
            ISSUER,
            StatusChange(
                issuer=ISSUER,
                listing_id=LISTING_ID,
                step=LifecycleStep.CORRECTED,
                effective_at=_utc(2025, 3, 2),
                decision_ref="ZJ-AMR-2025-9",
                reason="fake reviews deleted, commitment signed",
            ),
        )
    )
    view = state.listing(LISTING_ID)
    assert view is not None and not view.overdue(_utc(2025, 6, 1))


# --- the rule table --------------------------------------------------------------------


def test_most_specific_rule_wins() -> None:
    rules = DeadlineRules(
        {
            (ListKind.BLACKLIST, None): 3,
            (ListKind.KEY_SCRUTINY, None): 6,
            (ListKind.BLACKLIST, ConductType.COUNTERFEIT): 2,
        }
    )
    assert rules.months_for(ListKind.BLACKLIST, ConductType.COUNTERFEIT) == 2
    assert rules.months_for(ListKind.BLACKLIST, ConductType.EMPTY_PARCEL) == 3
    assert rules.months_for(ListKind.KEY_SCRUTINY, ConductType.FALSE_ADVERTISING_PENALTY) == 6
    assert rules.months_for(ListKind.KEY_SCRUTINY, ConductType.OTHER) == 6


def test_default_rules_are_three_months_everywhere() -> None:
    for kind in ListKind:
        for conduct in ConductType:
            if kind in conduct.lists:
                assert DEFAULT_RULES.months_for(kind, conduct) == 3


def test_rule_table_is_frozen() -> None:
    rules = DeadlineRules.parse("KEY_SCRUTINY=6")
    with pytest.raises(TypeError):
        rules.months[(ListKind.BLACKLIST, None)] = 9  # type: ignore[index]


def test_parse_overrides_defaults() -> None:
    rules = DeadlineRules.parse(" key_scrutiny=6 ; BLACKLIST/COUNTERFEIT = 2 ")
    assert rules.months_for(ListKind.KEY_SCRUTINY, ConductType.CONTRACT_BREACH_PENALTY) == 6
    assert rules.months_for(ListKind.BLACKLIST, ConductType.COUNTERFEIT) == 2
    assert rules.months_for(ListKind.BLACKLIST, ConductType.IP_INFRINGEMENT) == 3
    assert DeadlineRules.parse("") == DEFAULT_RULES
    assert DeadlineRules.parse(rules.describe()) == rules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("GREYLIST=3", "unknown list or conduct"),
        ("BLACKLIST/NOPE=3", "unknown list or conduct"),
        ("BLACKLIST/FALSE_ADVERTISING_PENALTY=3", "not on list BLACKLIST"),
        ("BLACKLIST=0", "1 to 120"),
        ("BLACKLIST=121", "1 to 120"),
        ("BLACKLIST=three", "integer"),
        ("BLACKLIST", "LIST"),
    ],
)
def test_bad_rules_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DeadlineRules.parse(text)


def test_every_list_needs_a_default() -> None:
    with pytest.raises(ConfigError, match="KEY_SCRUTINY"):
        DeadlineRules({(ListKind.BLACKLIST, None): 3})


# --- the gateway's check on submitted listings -------------------------------------------


def test_check_refuses_deadlines_longer_than_the_rule() -> None:
    listed = _utc(2026, 11, 30)
    DEFAULT_RULES.check(_listing(listed))  # unset: exactly the default
    DEFAULT_RULES.check(_listing(listed, correction_deadline=_utc(2027, 2, 28)))
    DEFAULT_RULES.check(_listing(listed, correction_deadline=_utc(2026, 12, 31)))  # shorter
    with pytest.raises(RecordError, match="later than listed_at \\+ 3 months"):
        DEFAULT_RULES.check(_listing(listed, correction_deadline=_utc(2027, 2, 28, 0, 0, 1)))


def test_check_uses_the_specific_rule_and_the_unset_default() -> None:
    rules = DeadlineRules.parse("KEY_SCRUTINY=6, BLACKLIST/COUNTERFEIT=2")
    listed = _utc(2026, 1, 31)
    scrutiny = {
        "list": ListKind.KEY_SCRUTINY,
        "conduct": ConductType.FALSE_ADVERTISING_PENALTY,
    }
    rules.check(_listing(listed, correction_deadline=_utc(2026, 7, 31), **scrutiny))
    with pytest.raises(RecordError):
        rules.check(_listing(listed, correction_deadline=_utc(2026, 8, 1), **scrutiny))
    # A 2-month rule makes the unset (3-month) default too long: the issuer must sign one.
    counterfeit = {"conduct": ConductType.COUNTERFEIT}
    with pytest.raises(RecordError, match="the default"):
        rules.check(_listing(listed, **counterfeit))
    rules.check(
        _listing(
            listed,
            correction_deadline=rules.deadline_for(
                ListKind.BLACKLIST, ConductType.COUNTERFEIT, listed
            ),
            **counterfeit,
        )
    )
    assert rules.deadline_for(ListKind.BLACKLIST, ConductType.COUNTERFEIT, listed) == _utc(
        2026, 3, 31
    )
