"""Recording that a month's report was sent, and where each month's report stands.

``submit`` signs a ``ReportSubmission`` (to whom, when, the SHA-256 of each file sent)
naming the gateway's own signed ``MonthlyReport`` of that month and scope, and appends
it to the log, from where it replicates like every record. ``states`` reads the
report's state per month (``gateway.core.report_state``) from the drafts noted in the
database and the reports and submissions in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway import codec
from gateway.core.crypto import SigningKey
from gateway.core.intake import DEFAULT_CLOCK_SKEW
from gateway.core.report_state import MonthState, month_state
from gateway.core.statements import (
    MONTHLY_REPORT_TYPES,
    PAYLOAD_TYPES,
    MonthlyReport,
    ReportSubmission,
    SubmittedFile,
)
from gateway.core.workdays import ReportMonth, WorkCalendar
from gateway.errors import ConfigError, NotFoundError, RecordError
from gateway.service.gateway_signing import sign_as_gateway
from gateway.service.ledger import Clock, Ledger, utc_now
from gateway.service.new_records import RecordsOfType

__all__ = ["SUBMISSION_TYPE", "SubmissionService", "Submitted"]

logger = logging.getLogger(__name__)

SUBMISSION_TYPE = PAYLOAD_TYPES[ReportSubmission]
# Reports signed before they named their files (v1) count as much as v2 ones.
_REPORT_TYPES = tuple(sorted(MONTHLY_REPORT_TYPES))

# ``months -> {(month, unit): drafted_at}`` (``DraftStore.drafted``).
Drafts = Callable[[list[str]], dict[tuple[str, str], datetime]]


def _first(item: tuple[int, str, object]) -> int:
    return item[0]


@dataclass(frozen=True)
class Submitted:
    record_id: str
    log_index: int
    duplicate: bool
    statement: ReportSubmission


class SubmissionService:
    def __init__(
        self,
        records: RecordsOfType,
        drafts: Drafts,
        ledger: Ledger,
        key: SigningKey,
        *,
        gateway_id: str,
        origin: str,
        calendar: Callable[[], WorkCalendar],
        clock: Clock = utc_now,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    ) -> None:
        self._records = records
        self._drafts = drafts
        self._ledger = ledger
        self._key = key
        self._gateway_id = gateway_id
        self._origin = origin
        self._calendar = calendar
        self._clock = clock
        self._clock_skew = clock_skew

    def _own(self, *payload_types: str) -> list[tuple[str, MonthlyReport | ReportSubmission]]:
        found: list[tuple[int, str, MonthlyReport | ReportSubmission]] = []
        for payload_type in payload_types:
            for index, record_id, payload in self._records(payload_type, -1):
                statement = codec.decode_statement(payload_type, payload)
                assert isinstance(statement, MonthlyReport | ReportSubmission)
                if statement.issuer == self._gateway_id:
                    found.append((index, record_id, statement))
        return [(record_id, statement) for _, record_id, statement in sorted(found, key=_first)]

    def submit(
        self,
        month: ReportMonth,
        unit: str | None,
        *,
        recipient: str,
        files: Sequence[tuple[str, bytes]],
        submitted_at: datetime | None = None,
    ) -> Submitted:
        """Sign and append that ``month``'s report (``unit``: one unit, None: all) was
        sent to ``recipient`` at ``submitted_at`` (default now) as ``files``
        (``(name, SHA-256)``)."""
        now = self._clock()
        at = now if submitted_at is None else submitted_at
        if at.tzinfo is None:
            raise RecordError("--at: must state its time zone (e.g. +08:00)")
        if at > now + self._clock_skew:
            raise RecordError(
                f"--at: {at.isoformat()} is in the future (the gateway's clock reads "
                f"{now.isoformat()})",
                advice="record a submission once the report was sent",
            )
        if at < month.end:
            raise RecordError(
                f"--at: {at.isoformat()} is before {month} ended: its report cannot have been "
                "sent yet"
            )
        scope = unit or ""
        reports = [
            record_id
            for record_id, s in self._own(*_REPORT_TYPES)
            if s.month == str(month) and s.unit == scope
        ]
        if not reports:
            raise NotFoundError(
                f"no signed report of {month} ({scope or 'all units'}) in this gateway's log",
                advice="finalise it first: `alliance-gateway report --month "
                f"{month}{' --region ' + scope if scope else ''} --narrative FILE`",
            )
        statement = ReportSubmission(
            issuer=self._gateway_id,
            month=str(month),
            unit=scope,
            report_id=reports[-1],
            recipient=recipient.strip(),
            submitted_at=at,
            files=tuple(SubmittedFile(name, digest) for name, digest in files),
        )
        accepted = sign_as_gateway(
            statement, key=self._key, gateway_id=self._gateway_id, origin=self._origin
        )
        (result,) = self._ledger.append([accepted])
        logger.info(
            "report %s (%s) submitted to %s: record %s, log index %s",
            month,
            scope or "all units",
            statement.recipient,
            result.record_id,
            result.log_index,
        )
        return Submitted(result.record_id, result.log_index, result.duplicate, statement)

    def submissions(self, month: ReportMonth) -> list[tuple[str, ReportSubmission]]:
        """This gateway's submissions of ``month``, in log order."""
        return [
            (record_id, s)
            for record_id, s in self._own(SUBMISSION_TYPE)
            if isinstance(s, ReportSubmission) and s.month == str(month)
        ]

    def states(
        self, months: Sequence[ReportMonth], *, now: datetime | None = None
    ) -> list[MonthState]:
        """Where the report of each of ``months`` stands ``now`` (default: the clock's)."""
        now = self._clock() if now is None else now
        names = [str(m) for m in months]
        drafted = {month for month, _ in self._drafts(names)}
        finalised = {s.month for _, s in self._own(*_REPORT_TYPES)}
        submitted = {s.month for _, s in self._own(SUBMISSION_TYPE)}
        calendar = self._calendar()
        out = []
        for month in months:
            due_date: date | None = None
            due_by: datetime | None = None
            # A year the calendar lacks: no due date, so never overdue.
            with suppress(ConfigError):
                due_date, due_by = calendar.due_date(month), calendar.due_by(month)
            out.append(
                month_state(
                    month,
                    drafted=str(month) in drafted,
                    finalised=str(month) in finalised,
                    submitted=str(month) in submitted,
                    due_date=due_date,
                    due_by=due_by,
                    now=now,
                )
            )
        return out
