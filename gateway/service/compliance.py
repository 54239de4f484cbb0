"""Sanction tracking over the stored projections: what each platform owes on a listing.

The rule is ``gateway.core.obligations.evaluate``; this module gathers its inputs
from storage (the listing's signed statement, its step history, the winning sanction
confirmations) and from the member directory (the ACTIVE platforms, which owe a
sanction when the listing names no store).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.codec import decode_statement
from gateway.core.alliance_policy import dispute_decision_working_days
from gateway.core.disputes import decision_due_by
from gateway.core.fold import SanctionKey
from gateway.core.identifiers import MemberId
from gateway.core.lifecycle import StepRecord, derive
from gateway.core.obligations import ListingCompliance, ObligationKind, evaluate
from gateway.core.statements import (
    LifecycleStep,
    Listing,
    MemberStatus,
    Role,
    SanctionAction,
    SanctionMeasure,
)
from gateway.core.workdays import WorkCalendar
from gateway.errors import NotFoundError, RecordError
from gateway.service.directory import Directory
from gateway.service.ledger import Clock, utc_now
from gateway.service.paging import decode_token, encode_token
from gateway.service.policies import Policies
from gateway.storage import ListingProjection, SqlStore
from gateway.storage.compliance import ComplianceStore, ListingCount

__all__ = ["ComplianceService", "ComplianceSummary"]

MAX_PAGE = 1000
DEFAULT_PAGE = 100
_SCAN = 500


@dataclass(frozen=True)
class ComplianceSummary:
    """Counts for the gauges, at one instant."""

    overdue: list[ListingCount]
    escalated: list[ListingCount]
    outstanding_confirmations: int
    outstanding_lifts: dict[SanctionMeasure, int] = field(default_factory=dict)
    # Open disputes, and those past the issuing alliance's decision limit, by unit.
    disputes_open: dict[str, int] = field(default_factory=dict)
    disputes_overdue: dict[str, int] = field(default_factory=dict)


class ComplianceService:
    def __init__(
        self,
        store: SqlStore,
        compliance: ComplianceStore,
        directory: Directory,
        *,
        grace: timedelta,
        clock: Clock = utc_now,
        policies: Policies | None = None,
        calendar: Callable[[], WorkCalendar] | None = None,
    ) -> None:
        """``policies`` give each listing its issuing alliance's dispute limit and
        ``calendar`` the working-day calendar in force, which counts it (None: no policy
        signed / Monday to Friday)."""
        self._policies = policies
        self._calendar = calendar
        self._store = store
        self._compliance = compliance
        self._directory = directory
        self._grace = grace
        self._clock = clock

    @property
    def grace(self) -> timedelta:
        return self._grace

    def listing(self, listing_id: str) -> ListingCompliance:
        projection = self._store.listing(listing_id)
        if projection is None:
            raise NotFoundError(f"listing_id: no listing {listing_id} is known to this gateway")
        (result,) = self._evaluate([projection], self._clock())
        return result

    def outstanding(
        self,
        *,
        region_prefix: str = "",
        kind: ObligationKind | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[ListingCompliance], str]:
        """Listings with an OUTSTANDING obligation (of ``kind``), in log order, paged."""
        if region_prefix and not (
            region_prefix.isascii() and region_prefix.isdigit() and len(region_prefix) <= 6
        ):
            raise RecordError(f"region_prefix: {region_prefix!r} must be 1 to 6 digits")
        limit = DEFAULT_PAGE if page_size == 0 else min(page_size, MAX_PAGE)
        found: list[ListingCompliance] = []
        last = decode_token("c1", page_token)
        for result, index in self._scan(region_prefix, last, self._clock()):
            if result.outstanding(kind):
                if len(found) == limit:
                    return found, encode_token("c1", last)
                found.append(result)
            last = index
        return found, ""

    def summary(self, now: datetime) -> ComplianceSummary:
        confirmations = 0
        lifts: dict[SanctionMeasure, int] = {}
        for result, _ in self._scan("", -1, now):
            for o in result.outstanding():
                if o.kind is ObligationKind.APPLY:
                    confirmations += 1
                else:
                    for measure, _other in o.measures:
                        lifts[measure] = lifts.get(measure, 0) + 1
        opened, overdue = self.disputes(now)
        return ComplianceSummary(
            overdue=self._compliance.overdue_counts(now),
            escalated=self._compliance.escalated_counts(),
            outstanding_confirmations=confirmations,
            outstanding_lifts=lifts,
            disputes_open=opened,
            disputes_overdue=overdue,
        )

    def disputes(self, now: datetime) -> tuple[dict[str, int], dict[str, int]]:
        """Open disputes by reporting unit, and those not decided within the issuing
        alliance's limit (``gateway.core.disputes``)."""
        opened: dict[str, int] = {}
        overdue: dict[str, int] = {}
        calendar = None if self._calendar is None else self._calendar()
        for _, issuer, region, since in self._compliance.open_disputes():
            unit = region[:2]
            opened[unit] = opened.get(unit, 0) + 1
            domain = MemberId.parse(issuer).trust_domain
            policy = None if self._policies is None else self._policies.current(domain, now)
            days = dispute_decision_working_days(policy)
            if now >= decision_due_by(since, days, calendar):
                overdue[unit] = overdue.get(unit, 0) + 1
        return opened, overdue

    def _scan(
        self, region_prefix: str, after: int, now: datetime
    ) -> Iterator[tuple[ListingCompliance, int]]:
        """Every listing that can owe something, evaluated, with its log index."""
        while True:
            rows = self._compliance.obligation_candidates(
                region_prefix=region_prefix, after_index=after, limit=_SCAN
            )
            if not rows:
                return
            for row, result in zip(rows, self._evaluate(rows, now), strict=True):
                yield result, row.log_index
            after = rows[-1].log_index

    def _active_platforms(self) -> list[str]:
        return [
            m.member_id
            for m in self._directory.members()
            if m.role is Role.PLATFORM and m.status is MemberStatus.ACTIVE
        ]

    def _evaluate(
        self, rows: Sequence[ListingProjection], now: datetime
    ) -> list[ListingCompliance]:
        ids = [r.listing_id for r in rows]
        records = self._store.records_by_ids(ids)
        sanctions = self._store.sanctions_for(ids)
        steps = self._compliance.step_times(ids)
        active = self._active_platforms()
        out = []
        for row in rows:
            record = records.get(row.listing_id)
            if record is None:  # projections and records are written in one transaction
                raise NotFoundError(f"listing {row.listing_id} has no record")
            listing = decode_statement(record.payload_type, record.payload)
            assert isinstance(listing, Listing)
            lifecycle = derive(
                row.listing_id,
                listing,
                (
                    StepRecord(s.record_id, LifecycleStep(s.step), s.effective_at)
                    for s in steps.get(row.listing_id, [])
                ),
            )
            state: dict[SanctionKey, SanctionAction] = {
                (s.platform, SanctionMeasure(s.measure), s.measure_other): SanctionAction(s.action)
                for s in sanctions.get(row.listing_id, ())
            }
            out.append(
                evaluate(
                    row.listing_id,
                    listing,
                    lifecycle=lifecycle,
                    sanctions=state,
                    active_platforms=active,
                    grace=self._grace,
                    at=now,
                )
            )
        return out
