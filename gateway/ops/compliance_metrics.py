"""Compliance gauges: overdue and escalated listings, outstanding sanctions, and the
next monthly report's due time.

Labels are bounded: list names (enum), 2-digit reporting units (32), obligation kinds
and measure names (enums). Registered into the gateway's registry by
``register_compliance_metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.core.report_state import MonthState, ReportState
from gateway.core.statements import ListKind, SanctionMeasure
from gateway.service.compliance import ComplianceSummary

__all__ = ["ComplianceMetrics", "register_compliance_metrics"]


@dataclass(frozen=True)
class ComplianceMetrics:
    overdue: Gauge
    escalated: Gauge
    outstanding: Gauge
    next_due: Gauge
    escalations: Counter
    retirements: Counter
    report_overdue: Gauge
    notices_late: Gauge
    not_applicable: Gauge
    disputes_open: Gauge
    disputes_overdue: Gauge
    report_state: Gauge
    submission_overdue: Gauge

    def update(self, summary: ComplianceSummary) -> None:
        self.notices_late.clear()
        for c in summary.notices_late:
            self.notices_late.labels(list=ListKind(c.list_kind).name.lower(), unit=c.unit).set(
                c.count
            )
        self.not_applicable.set(summary.not_applicable)
        for gauge, counts in ((self.overdue, summary.overdue), (self.escalated, summary.escalated)):
            gauge.clear()
            for c in counts:
                gauge.labels(list=ListKind(c.list_kind).name.lower(), unit=c.unit).set(c.count)
        for gauge, by_unit in (
            (self.disputes_open, summary.disputes_open),
            (self.disputes_overdue, summary.disputes_overdue),
        ):
            gauge.clear()
            for unit, n in sorted(by_unit.items()):
                gauge.labels(unit=unit).set(n)
        self.outstanding.clear()
        self.outstanding.labels(kind="apply", measure="any").set(summary.outstanding_confirmations)
        for measure in SanctionMeasure:
            self.outstanding.labels(kind="lift", measure=measure.name.lower()).set(
                summary.outstanding_lifts.get(measure, 0)
            )

    def set_report_states(self, states: list[MonthState]) -> None:
        """One series per state (1 for the month's current one) and the overdue flag, for
        the recent months only (``month`` stays a bounded label)."""
        self.report_state.clear()
        self.submission_overdue.clear()
        for s in states:
            month = str(s.month)
            for state in ReportState:
                self.report_state.labels(month=month, state=state.label).set(
                    1 if s.state is state else 0
                )
            self.submission_overdue.labels(month=month).set(1 if s.overdue else 0)

    def set_next_due(self, due_by: datetime | None) -> None:
        """The instant the next report becomes late; NaN when the calendar lacks it."""
        self.next_due.set(float("nan") if due_by is None else due_by.timestamp())


def register_compliance_metrics(registry: CollectorRegistry) -> ComplianceMetrics:
    return ComplianceMetrics(
        overdue=Gauge(
            "alliance_compliance_overdue_listings",
            "Listings in force past their correction deadline, by list and reporting unit",
            ["list", "unit"],
            registry=registry,
        ),
        escalated=Gauge(
            "alliance_compliance_escalated_listings",
            "Listings in force and ESCALATED, by list and reporting unit",
            ["list", "unit"],
            registry=registry,
        ),
        outstanding=Gauge(
            "alliance_compliance_outstanding_sanctions",
            "Obligations past the grace period: kind=apply counts (listing, platform) pairs "
            "with no APPLIED sanction after an escalation; kind=lift counts measures still "
            "APPLIED after a correction or removal, by measure",
            ["kind", "measure"],
            registry=registry,
        ),
        next_due=Gauge(
            "alliance_report_next_due_timestamp_seconds",
            "Unix time the next monthly report becomes late (00:00 Asia/Shanghai after its "
            "due date); NaN when the working-day calendar lacks the year",
            registry=registry,
        ),
        notices_late=Gauge(
            "alliance_compliance_notices_late_listings",
            "Listings of this alliance in force whose correction notice was not served within "
            "the alliance's notice_working_days of identification (and still is not), by list "
            "and reporting unit",
            ["list", "unit"],
            registry=registry,
        ),
        not_applicable=Gauge(
            "alliance_compliance_not_applicable_obligations",
            "Obligations of this gateway's platforms ended by a NOT_APPLICABLE answer (the "
            "seller has no account with the platform)",
            registry=registry,
        ),
        report_overdue=Gauge(
            "alliance_report_overdue",
            "1 when the newest monthly report whose due time has passed was not produced",
            registry=registry,
        ),
        disputes_open=Gauge(
            "alliance_compliance_open_disputes",
            "Listings in force with a dispute (DISPUTED) not yet decided, by reporting unit",
            ["unit"],
            registry=registry,
        ),
        disputes_overdue=Gauge(
            "alliance_compliance_overdue_disputes",
            "Open disputes not decided within the issuing alliance's "
            "dispute_decision_working_days (AlliancePolicy), by reporting unit",
            ["unit"],
            registry=registry,
        ),
        report_state=Gauge(
            "alliance_report_state",
            "The monthly report's state for each of the last two ended months: 1 for its "
            "current state (due, drafted, finalised, submitted), 0 for the others",
            ["month", "state"],
            registry=registry,
        ),
        submission_overdue=Gauge(
            "alliance_report_submission_overdue",
            "1 when the month's report is past its due time (00:00 Asia/Shanghai after the "
            "due date) and no ReportSubmission records that it was sent",
            ["month"],
            registry=registry,
        ),
        escalations=Counter(
            "alliance_escalations_signed_total",
            "ESCALATED status changes this process signed and appended",
            registry=registry,
        ),
        retirements=Counter(
            "alliance_retirements_signed_total",
            "RETIRED status changes this process signed and appended (maximum publication "
            "period ended)",
            registry=registry,
        ),
    )
