"""When an open dispute is overdue: not decided within the issuing alliance's limit.

The limit is ``AlliancePolicy.dispute_decision_working_days`` of the alliance that
issued the listing (0 or no policy: ``DEFAULT_DISPUTE_DECISION_WORKING_DAYS``), counted
in working days of the State Council's schedule (``gateway.core.workdays``) in
Asia/Shanghai: the day the dispute opened does not count; the dispute is overdue from
00:00 of the day after the last working day of the limit. A year the calendar has no
schedule for counts Monday to Friday as working days.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from gateway.core.alliance_policy import dispute_decision_working_days
from gateway.core.lifecycle import Lifecycle
from gateway.core.statements import AlliancePolicy
from gateway.core.workdays import REPORT_TZ, WorkCalendar
from gateway.errors import ConfigError

__all__ = ["decision_due_by", "dispute_overdue"]

_SATURDAY = 5


def _is_workday(d: date, calendar: WorkCalendar | None) -> bool:
    if calendar is not None:
        try:
            return calendar.is_workday(d)
        except ConfigError:
            pass  # no schedule for that year: weekdays
    return d.weekday() < _SATURDAY


def decision_due_by(
    opened_at: datetime, working_days: int, calendar: WorkCalendar | None
) -> datetime:
    """The instant a dispute opened at ``opened_at`` becomes overdue."""
    day = opened_at.astimezone(REPORT_TZ).date()
    counted = 0
    while counted < working_days:
        day += timedelta(days=1)
        if _is_workday(day, calendar):
            counted += 1
    after = day + timedelta(days=1)
    return datetime(after.year, after.month, after.day, tzinfo=REPORT_TZ)


def dispute_overdue(
    lifecycle: Lifecycle,
    policy: AlliancePolicy | None,
    at: datetime,
    calendar: WorkCalendar | None = None,
) -> bool:
    """Is the listing's dispute open at ``at`` and past its decision limit?"""
    dispute = lifecycle.open_dispute
    if dispute is None or dispute.opened_at > at:
        return False
    days = dispute_decision_working_days(policy)
    return at >= decision_due_by(dispute.opened_at, days, calendar)
