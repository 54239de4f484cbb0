"""When a listing's written correction notice is due, and whether it is late.

Notice §IV: once a listing is identified, the entity receives a written notice to
correct (失信整改通知). The notice is due within the issuing alliance's
``notice_working_days`` (its policy; ``DEFAULT_NOTICE_WORKING_DAYS`` without one)
working days of the identification, counted on the State Council's working-day
calendar in Asia/Shanghai (``WorkCalendar.add_workdays``): identified on a Monday with
5 working days, the notice is due by the end of the following Monday. A listing is
**late** when no NOTICE_SERVED step is effective by then (served later, or not yet).

The identification time is the listing's ``listed_at`` (an authority's own listing is
identified when signed) unless an identification step says otherwise
(``identified_at``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from gateway.core.identifiers import MemberId
from gateway.core.statements import LifecycleStep, Listing
from gateway.core.workdays import WorkCalendar
from gateway.errors import GatewayError

__all__ = [
    "DEFAULT_NOTICE_WORKING_DAYS",
    "NoticeRule",
    "identified_at",
    "notice_due",
    "notice_late",
]

DEFAULT_NOTICE_WORKING_DAYS = 5


@dataclass(frozen=True)
class NoticeRule:
    """The calendar and the working days per issuing alliance (trust domain)."""

    calendar: WorkCalendar
    working_days: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    default_working_days: int = DEFAULT_NOTICE_WORKING_DAYS

    def days_for(self, listing: Listing) -> int:
        domain = MemberId.parse(listing.issuer).trust_domain
        return self.working_days.get(domain) or self.default_working_days


def identified_at(listing: Listing, first: Mapping[LifecycleStep, datetime]) -> datetime | None:
    """When the listing was identified: ``listed_at`` (``first``: the earliest effective
    time of each step of the listing)."""
    del first  # every listing counts as identified when listed, until identification steps
    return listing.listed_at


def notice_due(
    rule: NoticeRule,
    listing: Listing,
    first: Mapping[LifecycleStep, datetime],
    *,
    identified: Callable[[Listing, Mapping[LifecycleStep, datetime]], datetime | None] = (
        identified_at
    ),
) -> datetime | None:
    """When the notice is due; ``None`` when the listing is not identified or the
    calendar lacks a year the count needs (no guess is made)."""
    start = identified(listing, first)
    if start is None:
        return None
    try:
        return rule.calendar.add_workdays(start, rule.days_for(listing))
    except GatewayError:
        return None


def notice_late(due: datetime | None, served_at: datetime | None, at: datetime) -> bool:
    """Not served by ``due`` (served later, or not yet at ``at``, past the due time)."""
    if due is None:
        return False
    if served_at is not None:
        return served_at > due
    return at > due
