"""When a listing's written correction notice is due, and whether it is late.

Notice §IV: once a listing is identified, the entity receives a written notice to
correct (失信整改通知). The notice is due within the issuing alliance's
``AlliancePolicy.notice_working_days`` (``DEFAULT_NOTICE_WORKING_DAYS`` when the policy
says 0 or there is none) working days of the identification, counted on the State
Council's working-day calendar in Asia/Shanghai (``WorkCalendar.add_workdays``):
identified on a Monday with 5 working days, the notice is due by the end of the
following Monday. A listing is **late** when no NOTICE_SERVED step is effective by then
(served later, or not yet).

The identification time is the listing's lifecycle state (``gateway.core.lifecycle``,
the one rule the fold, the projection, the obligations and the report use): an
authority's own listing is identified when signed (its ``listed_at``); a listing a
platform signed is *reported* until its first IDENTIFIED step. A reported listing owes
no notice yet; a withdrawn listing (void from the start) owes none, nor does one closed
(corrected or removed) by the time the notice fell due.
"""

from __future__ import annotations

from datetime import datetime

from gateway.core.lifecycle import Lifecycle
from gateway.core.statements import AlliancePolicy, LifecycleStep
from gateway.core.workdays import WorkCalendar
from gateway.errors import GatewayError

__all__ = [
    "DEFAULT_NOTICE_WORKING_DAYS",
    "notice_due",
    "notice_late",
    "notice_working_days",
]

# Five working days (one working week): the correction notice is "issued right after
# publication" (DESIGN.md §1); a week is what a secretariat needs to serve it in writing.
DEFAULT_NOTICE_WORKING_DAYS = 5


def notice_working_days(policy: AlliancePolicy | None) -> int:
    if policy is None or policy.notice_working_days == 0:
        return DEFAULT_NOTICE_WORKING_DAYS
    return policy.notice_working_days


def notice_due(
    calendar: WorkCalendar,
    lifecycle: Lifecycle,
    policy: AlliancePolicy | None = None,
) -> datetime | None:
    """When the listing's correction notice is due; ``None`` when it owes none (not
    identified, withdrawn, or closed by then) or the calendar lacks a year the count
    needs (no guess is made)."""
    start = lifecycle.identified_at
    if start is None or lifecycle.closing is LifecycleStep.WITHDRAWN:
        return None
    try:
        due = calendar.add_workdays(start, notice_working_days(policy))
    except GatewayError:
        return None
    if lifecycle.closed_at is not None and lifecycle.closed_at <= due:
        return None
    return due


def notice_late(due: datetime | None, served_at: datetime | None, at: datetime) -> bool:
    """Not served by ``due`` (served later, or not yet at ``at``, past the due time)."""
    if due is None:
        return False
    if served_at is not None:
        return served_at > due
    return at > due
