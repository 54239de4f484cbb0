"""Where a month's report stands: due, drafted, finalised or submitted, and overdue.

A month's report is **due** once the month is over; **drafted** once a draft was
written (``report --draft``); **finalised** once the gateway signed a ``MonthlyReport``
of it; **submitted** once the gateway signed a ``ReportSubmission`` saying it was sent.
A report is **overdue** when its due time (00:00 Asia/Shanghai after the due date) has
passed and it was not submitted. The month's state is the furthest its reports got,
whichever scope (all units, or one unit) they cover.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from gateway.core.workdays import ReportMonth

__all__ = ["MonthState", "ReportState", "month_state"]


class ReportState(enum.IntEnum):
    """In the order a report goes through them."""

    DUE = 1
    DRAFTED = 2
    FINALISED = 3
    SUBMITTED = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class MonthState:
    month: ReportMonth
    state: ReportState
    # None when the calendar lacks the year: then the report is never called overdue.
    due_date: date | None
    due_by: datetime | None
    overdue: bool


def month_state(
    month: ReportMonth,
    *,
    drafted: bool,
    finalised: bool,
    submitted: bool,
    due_date: date | None,
    due_by: datetime | None,
    now: datetime,
) -> MonthState:
    if submitted:
        state = ReportState.SUBMITTED
    elif finalised:
        state = ReportState.FINALISED
    elif drafted:
        state = ReportState.DRAFTED
    else:
        state = ReportState.DUE
    overdue = state is not ReportState.SUBMITTED and due_by is not None and now >= due_by
    return MonthState(month, state, due_date, due_by, overdue)
