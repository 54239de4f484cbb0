"""Compliance inside a gateway: escalation on the ticker, the Compliance service, the
report service and its gauges, assembled from a gateway's core parts (``CoreParts``).

``gateway.ops.app`` creates one ``ComplianceRuntime`` per gateway, adds its service to
the gRPC server and calls ``tick()`` on every ticker round; the operator CLI builds a
``ReportService`` from a ``Core`` with ``report_service``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from gateway.core.crypto import SigningKey
from gateway.core.deadlines import DeadlineRules
from gateway.core.notes import NoteSigner
from gateway.core.workdays import ReportMonth
from gateway.errors import ConfigError, GatewayError
from gateway.ops.compliance_metrics import ComplianceMetrics, register_compliance_metrics
from gateway.ops.config import Config
from gateway.ops.workcalendar import load_work_calendar
from gateway.service.calendars import CalendarBook
from gateway.service.compliance import ComplianceService
from gateway.service.directory import Directory
from gateway.service.escalation import Escalator
from gateway.service.ledger import Clock, Ledger
from gateway.service.policies import Policies
from gateway.service.reports import FederationHealth, ReportService, federation_health
from gateway.service.retirement import Retirer
from gateway.service.submissions import SubmissionService
from gateway.storage import SqlStore
from gateway.storage.compliance import ComplianceStore
from gateway.storage.report_state import DraftStore
from gateway.transport.compliance import SERVICE_NAME, add_compliance_service

__all__ = [
    "SERVICE_NAME",
    "ComplianceRuntime",
    "CoreParts",
    "calendar_book",
    "deadline_rules",
    "report_service",
    "submission_service",
]

logger = logging.getLogger(__name__)

# Outstanding obligations are recounted for the gauges at most this often: the count
# evaluates every escalated or closed listing, which is more than a ticker round needs.
_SUMMARY_INTERVAL_S = 30.0
# The report state gauges cover this many of the latest ended months.
_STATE_MONTHS = 2


class CoreParts(Protocol):
    """What compliance needs of a gateway's core (``gateway.ops.app.Core`` has it): named
    here so that this module does not import the application that assembles it."""

    @property
    def config(self) -> Config: ...
    @property
    def store(self) -> SqlStore: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def key(self) -> SigningKey: ...
    @property
    def note_signer(self) -> NoteSigner: ...
    @property
    def directory(self) -> Directory: ...
    @property
    def policies(self) -> Policies: ...
    @property
    def clock(self) -> Clock: ...


def deadline_rules(core: CoreParts) -> DeadlineRules:
    return DeadlineRules.parse(core.config.deadline_rules)


def calendar_book(core: CoreParts) -> CalendarBook:
    """The working-day calendar in force: the shipped (or ``calendar_dir``) schedules,
    each year replaced by the deciding calendar record of the log."""
    records = ComplianceStore(core.store.engine).records_of_type_after
    return CalendarBook(records, load_work_calendar(core.config.calendar_dir))


def submission_service(core: CoreParts, book: CalendarBook | None = None) -> SubmissionService:
    config = core.config
    calendars = book if book is not None else calendar_book(core)
    return SubmissionService(
        ComplianceStore(core.store.engine).records_of_type_after,
        DraftStore(core.store.engine).drafted,
        core.ledger,
        core.key,
        gateway_id=config.member_id,
        origin=config.log_origin,
        calendar=calendars.current,
        clock=core.clock,
        clock_skew=config.intake_rules.clock_skew,
    )


def report_service(
    core: CoreParts,
    *,
    federation: FederationHealth | None = None,
    book: CalendarBook | None = None,
) -> ReportService:
    """The report service of ``core``; federation health from the replication cursors
    unless ``federation`` says otherwise."""
    config = core.config
    calendars = book if book is not None else calendar_book(core)
    return ReportService(
        core.store,
        ComplianceStore(core.store.engine),
        core.ledger,
        core.key,
        core.note_signer,
        gateway_id=config.member_id,
        origin=config.log_origin,
        calendar=calendars.shipped,
        grace=timedelta(days=config.sanction_grace_days),
        federation=federation or federation_health(core.store, core.clock),
        clock=core.clock,
        clock_skew=config.intake_rules.clock_skew,
        calendars=calendars.current,
    )


class ComplianceRuntime:
    def __init__(
        self,
        core: CoreParts,
        registry: CollectorRegistry | None = None,
        *,
        federation: FederationHealth | None = None,
    ) -> None:
        config = core.config
        if config.sanction_grace_days < 0:
            raise ConfigError("sanction_grace_days: must not be negative")
        self.deadline_rules = deadline_rules(core)
        self._trust_domain, self._gateway_id = config.trust_domain, config.member_id
        cstore = ComplianceStore(core.store.engine)
        self._clock: Clock = core.clock
        self.escalator = Escalator(
            core.store,
            cstore,
            core.ledger,
            core.key,
            gateway_id=config.member_id,
            origin=config.log_origin,
        )
        self.retirer = Retirer(
            core.store,
            cstore,
            core.ledger,
            core.key,
            core.policies,
            gateway_id=config.member_id,
            origin=config.log_origin,
        )
        self.calendars = calendar_book(core)
        self.reports = report_service(core, federation=federation, book=self.calendars)
        self.submissions = submission_service(core, self.calendars)
        self.compliance = ComplianceService(
            core.store,
            cstore,
            core.directory,
            trust_domain=config.trust_domain,
            grace=timedelta(days=config.sanction_grace_days),
            clock=core.clock,
            policies=core.policies,
            calendar=lambda: self.reports.calendar,
        )
        self.metrics: ComplianceMetrics | None = (
            register_compliance_metrics(registry) if registry is not None else None
        )
        self._summary_at = float("-inf")

    def add_to_server(self, server: Any) -> None:
        """Add the Compliance service to ``server`` (a ``grpc.Server``: only the
        transport imports grpc)."""
        add_compliance_service(
            server,
            self.compliance,
            self.reports,
            [(self._trust_domain, self._gateway_id, self.deadline_rules)],
        )

    def tick(self) -> None:
        """Escalate and retire what is due, then refresh the gauges. Never raises: a failure is
        logged and retried on the next round, and other periodic work goes on."""
        now = self._clock()
        try:
            appended = self.escalator.run(now)
            if self.metrics is not None and appended:
                self.metrics.escalations.inc(len(appended))
        except Exception:
            logger.exception("escalation failed; retrying next round")
        try:
            retired = self.retirer.run(now)
            if self.metrics is not None and retired:
                self.metrics.retirements.inc(len(retired))
        except Exception:
            logger.exception("retirement failed; retrying next round")
        if self.metrics is not None and time.monotonic() - self._summary_at >= _SUMMARY_INTERVAL_S:
            self.refresh_gauges()

    def _last_report_missing(self, now: datetime) -> bool:
        """Whether last month's report is late: its due time passed and none was signed.
        (An unknown due date — a year missing from the calendar — is not "late".)"""
        month = ReportMonth.containing(now).previous()
        try:
            due_by = self.reports.calendar.due_by(month)
        except GatewayError:
            return False
        return now >= due_by and not self.reports.reports(month)

    def refresh_gauges(self) -> None:
        """Recount overdue, escalated and outstanding, and the next report's due time."""
        if self.metrics is None:
            return
        now = self._clock()
        try:
            self.metrics.update(self.compliance.summary(now))
            self._summary_at = time.monotonic()
            try:
                due = self.reports.calendar.due_by(self.reports.calendar.next_due(now))
            except GatewayError as e:
                logger.warning("next report due date unknown: %s", e)
                due = None
            self.metrics.set_next_due(due)
            self.metrics.report_overdue.set(1 if self._last_report_missing(now) else 0)
            latest = ReportMonth.containing(now).previous()
            months = [latest]
            for _ in range(_STATE_MONTHS - 1):
                months.insert(0, months[0].previous())
            self.metrics.set_report_states(self.submissions.states(months))
        except Exception:
            logger.exception("compliance gauges could not be refreshed")
