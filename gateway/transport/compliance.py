"""alliance.v1.Compliance: obligations per listing, outstanding ones, report schedule.

Read-only for every role (``gateway.core.policy.RPC_ROLES``); errors are mapped by the
interceptor like every other service.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from gateway import codec
from gateway.core.deadlines import PROTOCOL_DEFAULT_MONTHS, DeadlineRules
from gateway.core.obligations import ListingCompliance, Obligation, ObligationKind
from gateway.core.workdays import ReportMonth
from gateway.pb.alliance.v1 import compliance_pb2 as co
from gateway.pb.alliance.v1 import compliance_pb2_grpc
from gateway.pb.alliance.v1 import statements_pb2 as st
from gateway.service.compliance import ComplianceService, ListingDetail, Owed
from gateway.service.reports import ReportService, Schedule
from gateway.transport.identity import caller_of

__all__ = [
    "SERVICE_NAME",
    "AllianceRules",
    "ComplianceServicer",
    "add_compliance_service",
    "deadline_rules_pb",
    "listing_detail",
]

SERVICE_NAME: str = co.DESCRIPTOR.services_by_name["Compliance"].full_name

AllianceRules = tuple[str, str, DeadlineRules]
"""(trust domain, member id of its gateway, the alliance's deadline rules)."""


class ComplianceServicer(compliance_pb2_grpc.ComplianceServicer):
    def __init__(
        self,
        compliance: ComplianceService,
        reports: ReportService,
        deadline_rules: Sequence[AllianceRules] = (),
    ) -> None:
        self._compliance = compliance
        self._reports = reports
        self._deadline_rules = deadline_rules_pb(deadline_rules)

    def GetCompliance(
        self, request: co.GetComplianceRequest, context: grpc.ServicerContext
    ) -> co.ListingCompliance:
        listing_id = codec.record_id_from_pb(request.listing_id, "listing_id")
        return listing_detail(self._compliance.detail(listing_id))

    def ListOutstanding(
        self, request: co.ListOutstandingRequest, context: grpc.ServicerContext
    ) -> co.ListOutstandingResponse:
        kind = codec.enum_from_pb(ObligationKind, request.kind, "kind") if request.kind else None
        found, token = self._compliance.outstanding(
            region_prefix=request.region_prefix,
            kind=kind,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return co.ListOutstandingResponse(
            listings=[listing_compliance(c) for c in found], next_page_token=token
        )

    def ListOwed(
        self, request: co.ListOwedRequest, context: grpc.ServicerContext
    ) -> co.ListOwedResponse:
        # Only platforms call it (RPC_ROLES): what the caller itself owes.
        platform = caller_of(context).member_id
        found, token = self._compliance.owed(
            platform, page_size=request.page_size, page_token=request.page_token
        )
        return co.ListOwedResponse(owed=[_owed(o) for o in found], next_page_token=token)

    def GetReportSchedule(
        self, request: co.GetReportScheduleRequest, context: grpc.ServicerContext
    ) -> co.ReportSchedule:
        month = ReportMonth.parse(request.month) if request.month else None
        return report_schedule(self._reports.schedule(month))

    def GetDeadlineRules(
        self, request: co.GetDeadlineRulesRequest, context: grpc.ServicerContext
    ) -> co.DeadlineRules:
        response = co.DeadlineRules()
        response.CopyFrom(self._deadline_rules)
        return response


def add_compliance_service(
    server: grpc.Server,
    compliance: ComplianceService,
    reports: ReportService,
    deadline_rules: Sequence[AllianceRules] = (),
) -> None:
    compliance_pb2_grpc.add_ComplianceServicer_to_server(
        ComplianceServicer(compliance, reports, deadline_rules), server
    )


def deadline_rules_pb(alliances: Sequence[AllianceRules]) -> co.DeadlineRules:
    """The rules in force, each list's rule first, then the conducts with their own."""
    msg = co.DeadlineRules(protocol_default_months=PROTOCOL_DEFAULT_MONTHS)
    for trust_domain, gateway, rules in alliances:
        entry = msg.alliances.add(trust_domain=trust_domain, gateway=gateway)
        ordered = sorted(
            rules.months.items(),
            key=lambda kv: (kv[0][1] is not None, kv[0][0].value, kv[0][1] or 0),
        )
        for (kind, conduct), months in ordered:
            entry.rules.add(
                list=st.ListKind.ValueType(kind.value),
                conduct=st.ConductType.ValueType(conduct.value if conduct else 0),
                months=months,
            )
    return msg


def _obligation(o: Obligation) -> co.PlatformObligation:
    return co.PlatformObligation(
        platform=o.platform,
        kind=co.ObligationKind.ValueType(o.kind.value),
        state=co.ObligationState.ValueType(o.state.value),
        measures=[
            co.MeasureRef(measure=st.SanctionMeasure.ValueType(m.value), measure_other=other)
            for m, other in o.measures
        ],
        due_at=codec.timestamp_to_pb(o.due_at),
        satisfying=[st.SanctionMeasure.ValueType(m.value) for m in sorted(o.satisfying)],
        may_answer_not_applicable=o.may_answer_not_applicable,
    )


def _owed(o: Owed) -> co.OwedObligation:
    listing = o.listing.listing
    return co.OwedObligation(
        listing_id=o.listing.listing_id,
        region_code=listing.region_code,
        list=st.ListKind.ValueType(listing.list.value),
        conduct=st.ConductType.ValueType(listing.conduct.value),
        obligation=_obligation(o.obligation),
    )


def listing_compliance(c: ListingCompliance) -> co.ListingCompliance:
    msg = co.ListingCompliance(
        listing_id=c.listing_id,
        region_code=c.listing.region_code,
        step=st.LifecycleStep.ValueType(c.step.value),
        # The deadline in force; while reported or disputed, the signed one (not running).
        correction_deadline=codec.timestamp_to_pb(c.deadline or c.listing.deadline),
        in_force=c.in_force,
        overdue=c.overdue,
        platforms_from_stores=c.platforms_from_stores,
        obligations=[_obligation(o) for o in c.obligations],
    )
    if c.escalated_at is not None:
        msg.escalated_at.CopyFrom(codec.timestamp_to_pb(c.escalated_at))
    if c.closed_at is not None:
        msg.closed_at.CopyFrom(codec.timestamp_to_pb(c.closed_at))
    return msg


def listing_detail(d: ListingDetail) -> co.ListingCompliance:
    """``listing_compliance`` with the steps, government measures and notice timing."""
    msg = listing_compliance(d.compliance)
    for entry in d.steps:
        s = entry.statement
        msg.steps.add(
            record_id=entry.record_id,
            issuer=s.issuer,
            step=st.LifecycleStep.ValueType(s.step.value),
            effective_at=codec.timestamp_to_pb(s.effective_at),
            decision_ref=s.decision_ref,
            document_sha256=s.document_sha256,
        )
    for record_id, m in d.measures:
        msg.government_measures.add(
            record_id=record_id,
            issuer=m.issuer,
            kind=st.GovernmentMeasureKind.ValueType(m.kind.value),
            kind_other=m.kind_other,
            decision_ref=m.decision_ref,
            effective_at=codec.timestamp_to_pb(m.effective_at),
            document_sha256=m.document_sha256,
        )
    if d.notice_due_at is not None:
        msg.notice_due_at.CopyFrom(codec.timestamp_to_pb(d.notice_due_at))
    msg.notice_late = d.notice_late
    return msg


def report_schedule(s: Schedule) -> co.ReportSchedule:
    return co.ReportSchedule(
        month=str(s.month),
        period_start=codec.timestamp_to_pb(s.month.start),
        period_end=codec.timestamp_to_pb(s.month.end),
        due_date=s.due_date.isoformat(),
        due_by=codec.timestamp_to_pb(s.due_by),
        reports=[
            co.ReportRef(
                record_id=r.record_id,
                log_index=r.log_index,
                unit=r.unit,
                checkpoint_size=r.checkpoint_size,
            )
            for r in s.reports
        ],
    )
