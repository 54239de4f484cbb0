"""When a listing's written correction notice is due, and whether it is late.

Notice §IV: once a listing is identified, the entity receives a written notice to
correct (失信整改通知). The notice is due within the issuing alliance's
``AlliancePolicy.notice_working_days`` (``DEFAULT_NOTICE_WORKING_DAYS`` when the policy
says 0 or there is none) working days of the identification, counted on the State
Council's working-day calendar in Asia/Shanghai (``WorkCalendar.add_workdays``):
identified on a Monday with 5 working days, the notice is due by the end of the
following Monday. A listing is **late** when no NOTICE_SERVED step is effective by then
(served later, or not yet).

The identification time (issue 16): an authority's own listing is identified when
signed (its ``listed_at``); a listing a platform signed is *reported* until the first
IDENTIFIED step, whose ``effective_at`` it is. A reported listing owes no notice yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.core.identifiers import MemberId, Role
from gateway.core.statements import AlliancePolicy, LifecycleStep, Listing
from gateway.core.workdays import WorkCalendar
from gateway.errors import GatewayError

__all__ = [
    "DEFAULT_NOTICE_WORKING_DAYS",
    "NoticeRule",
    "identified_at",
    "notice_due",
    "notice_late",
    "notice_working_days",
]

# Five working days (one working week): the correction notice is "issued right after
# publication" (DESIGN.md §1); a week is what a secretariat needs to serve it in writing.
DEFAULT_NOTICE_WORKING_DAYS = 5


@dataclass(frozen=True)
class NoticeRule:
    """The working-day calendar notices are counted on."""

    calendar: WorkCalendar


def notice_working_days(policy: AlliancePolicy | None) -> int:
    if policy is None or policy.notice_working_days == 0:
        return DEFAULT_NOTICE_WORKING_DAYS
    return policy.notice_working_days


def identified_at(listing: Listing, first: Mapping[LifecycleStep, datetime]) -> datetime | None:
    """When the listing was identified (``first``: the earliest effective time of each
    of its steps); ``None`` while a platform's listing is only reported."""
    if MemberId.parse(listing.issuer, field="listing.issuer").role is Role.AUTHORITY:
        return listing.listed_at
    return first.get(LifecycleStep.IDENTIFIED)


def notice_due(
    rule: NoticeRule,
    listing: Listing,
    first: Mapping[LifecycleStep, datetime],
    policy: AlliancePolicy | None = None,
) -> datetime | None:
    """When the notice is due; ``None`` when the listing is not identified or the
    calendar lacks a year the count needs (no guess is made)."""
    start = identified_at(listing, first)
    if start is None:
        return None
    try:
        return rule.calendar.add_workdays(start, notice_working_days(policy))
    except GatewayError:
        return None


def notice_late(due: datetime | None, served_at: datetime | None, at: datetime) -> bool:
    """Not served by ``due`` (served later, or not yet at ``at``, past the due time)."""
    if due is None:
        return False
    if served_at is not None:
        return served_at > due
    return at > due
