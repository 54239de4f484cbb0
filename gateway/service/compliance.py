"""Sanction tracking over the stored projections: what each platform owes on a listing.

The rule is ``gateway.core.obligations.evaluate``; this module gathers its inputs
from storage (the listing's signed statement, its step history, the winning sanction
confirmations and NOT_APPLICABLE answers) and from the member directory (this
gateway's own ACTIVE platforms, which owe an answer when the listing names no store).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.codec import decode_statement
from gateway.core.alliance_policy import dispute_decision_working_days
from gateway.core.disputes import decision_due_by
from gateway.core.fold import SanctionKey
from gateway.core.identifiers import MemberId
from gateway.core.lifecycle import Lifecycle, StepRecord, derive
from gateway.core.notices import notice_due, notice_late, notice_working_days
from gateway.core.obligations import (
    ListingCompliance,
    Obligation,
    ObligationKind,
    ObligationState,
    evaluate,
    is_own,
    policy_grace,
    policy_satisfying,
)
from gateway.core.statements import (
    GOVERNMENT_MEASURE_V1,
    GOVERNMENT_MEASURE_V2,
    AlliancePolicy,
    GovernmentMeasure,
    LifecycleStep,
    Listing,
    MemberStatus,
    Role,
    SanctionAction,
    SanctionMeasure,
    StatusChange,
)
from gateway.core.workdays import WorkCalendar
from gateway.errors import GatewayError, NotFoundError, RecordError
from gateway.service.directory import Directory
from gateway.service.ledger import Clock, utc_now
from gateway.service.new_records import NewRecords, RecordsOfType
from gateway.service.paging import (
    decode_text_token,
    decode_token,
    encode_text_token,
    encode_token,
)
from gateway.service.policies import Policies
from gateway.storage import ListingProjection, SqlStore
from gateway.storage.compliance import ComplianceStore, ListingCount, StepTime

__all__ = ["ComplianceService", "ComplianceSummary", "ListingDetail", "Owed", "StepEntry"]

MAX_PAGE = 1000
DEFAULT_PAGE = 100
_SCAN = 500
_NOT_APPLICABLE = int(SanctionAction.NOT_APPLICABLE)


@dataclass(frozen=True)
class StepEntry:
    """One status change of a listing, as recorded."""

    record_id: str
    statement: StatusChange


@dataclass(frozen=True)
class ListingDetail:
    """A listing's obligations with its recorded steps, government measures and the
    correction notice's due time (``None``: not identified, or no calendar for it)."""

    compliance: ListingCompliance
    steps: tuple[StepEntry, ...]
    measures: tuple[tuple[str, GovernmentMeasure], ...]
    notice_due_at: datetime | None
    notice_late: bool


@dataclass(frozen=True)
class Owed:
    """One obligation a platform owes, with its listing."""

    listing: ListingCompliance
    obligation: Obligation


@dataclass(frozen=True)
class ComplianceSummary:
    """Counts for the gauges, at one instant."""

    overdue: list[ListingCount]
    escalated: list[ListingCount]
    outstanding_confirmations: int
    outstanding_lifts: dict[SanctionMeasure, int] = field(default_factory=dict)
    not_applicable: int = 0
    # Own listings whose correction notice is late and still not served, by list and unit.
    notices_late: list[ListingCount] = field(default_factory=list)
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
        trust_domain: str,
        grace: timedelta,
        clock: Clock = utc_now,
        policies: Policies | None = None,
        calendar: Callable[[], WorkCalendar] | None = None,
    ) -> None:
        """``trust_domain``: this gateway's; its platforms are the ones it tracks.
        ``grace``: the gateway's grace period. ``policies`` give each listing its issuing
        alliance's policy: its dispute limit, notice time, ``sanction_grace_days`` and
        ``measure_requirements`` win (None: no policy, the defaults). ``calendar``: the
        working-day calendar in force, which counts disputes (None: Monday to Friday)
        and notices (None: notice times are not computed)."""
        self._policies = policies
        self._calendar = calendar
        self._trust_domain = trust_domain
        self._store = store
        self._compliance = compliance
        self._directory = directory
        self._grace = grace
        self._clock = clock
        self._measures = _MeasuresByListing(compliance.records_of_type_after)

    @property
    def grace(self) -> timedelta:
        return self._grace

    def listing(self, listing_id: str) -> ListingCompliance:
        projection = self._store.listing(listing_id)
        if projection is None:
            raise NotFoundError(
                f"listing_id: no listing {listing_id} is known to this gateway",
                reason="unknown-listing",
            )
        (result,) = self._evaluate([projection], self._clock())
        return result

    def detail(self, listing_id: str) -> ListingDetail:
        """``listing`` with the recorded steps, government measures and notice timing."""
        result = self.listing(listing_id)
        history = self._compliance.step_times([listing_id]).get(listing_id, [])
        records = self._store.records_by_ids([h.record_id for h in history])
        steps = []
        for h in history:
            r = records[h.record_id]
            stmt = decode_statement(r.payload_type, r.payload, r.disclosures)
            assert isinstance(stmt, StatusChange)
            steps.append(StepEntry(h.record_id, stmt))
        measures = []
        for r in self._store.records_by_ids(self._measures.on(listing_id)).values():
            stmt = decode_statement(r.payload_type, r.payload, r.disclosures)
            assert isinstance(stmt, GovernmentMeasure)
            measures.append((r.record_id, stmt))
        measures.sort(key=lambda m: (m[1].effective_at, m[0]))
        calendar = None if self._calendar is None else self._calendar()
        due, late = self._notice(result.listing, result.lifecycle, history, self._clock(), calendar)
        return ListingDetail(result, tuple(steps), tuple(measures), due, late)

    def _policy(self, listing: Listing, now: datetime) -> AlliancePolicy | None:
        return None if self._policies is None else self._policies.for_listing(listing, now)

    def _notice(
        self,
        listing: Listing,
        lifecycle: Lifecycle,
        history: Sequence[StepTime],
        now: datetime,
        calendar: WorkCalendar | None,
    ) -> tuple[datetime | None, bool]:
        if calendar is None:
            return None, False
        served = next(  # history is oldest first
            (h.effective_at for h in history if h.step == LifecycleStep.NOTICE_SERVED), None
        )
        due = notice_due(calendar, lifecycle, self._policy(listing, now))
        return due, notice_late(due, served, now)

    def late_notices(self, now: datetime) -> list[ListingCount]:
        """This gateway's own listings whose notice is late and still not served."""
        if self._calendar is None:
            return []
        calendar = self._calendar()  # once: it may read the log for calendar records
        if calendar is None:
            return []
        counts: dict[tuple[int, str], int] = {}
        policies: dict[str, AlliancePolicy | None] = {}
        after = -1
        prefix = f"spiffe://{self._trust_domain}/"
        while True:
            rows = self._compliance.notice_candidates(
                prefix, now - timedelta(days=1), after_index=after, limit=_SCAN
            )
            if not rows:
                break
            # The candidates are in force with no notice served: the notice is late once
            # the working days the issuing alliance allows after the identification have
            # passed (notice_due, notice_late). All of it is in the projection row: no
            # listing is read or decoded (this runs for every own listing on the gauges'
            # refresh).
            for row in rows:
                domain = MemberId.parse(row.issuer).trust_domain
                if domain not in policies:
                    policies[domain] = (
                        None if self._policies is None else self._policies.current(domain, now)
                    )
                try:
                    due = calendar.add_workdays(
                        row.identified_at, notice_working_days(policies[domain])
                    )
                except GatewayError:
                    continue  # a year the calendar lacks: no guess (notice_due)
                if notice_late(due, None, now):
                    key = (row.list_kind, row.region_code[:2])
                    counts[key] = counts.get(key, 0) + 1
            after = rows[-1].log_index
        return [ListingCount(kind, unit, n) for (kind, unit), n in sorted(counts.items())]

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

    def owed(
        self, platform: str, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Owed], str]:
        """What ``platform`` owes (PENDING or OUTSTANDING), soonest due first, paged.

        The page token is the position ``(due_at, listing_id)`` of the last one sent.
        """
        limit = DEFAULT_PAGE if page_size == 0 else min(page_size, MAX_PAGE)
        after: tuple[str, str] | None = None
        if page_token:
            due, sep, listing_id = decode_text_token("o1", page_token).partition(" ")
            if not sep:
                raise RecordError("page_token: not a token this call returned")
            after = (due, listing_id)
        found = [
            Owed(result, o)
            for result, _ in self._scan("", -1, self._clock())
            for o in result.obligations
            if o.platform == platform and o.owed
        ]
        found.sort(key=_owed_order)
        if after is not None:
            found = [f for f in found if _owed_order(f) > after]
        if len(found) <= limit:
            return found, ""
        page = found[:limit]
        return page, encode_text_token("o1", " ".join(_owed_order(page[-1])))

    def summary(self, now: datetime) -> ComplianceSummary:
        confirmations = 0
        lifts: dict[SanctionMeasure, int] = {}
        not_applicable = 0
        for result, _ in self._scan("", -1, now):
            not_applicable += sum(
                1 for o in result.obligations if o.state is ObligationState.NOT_APPLICABLE
            )
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
            not_applicable=not_applicable,
            notices_late=self.late_notices(now),
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
        """This gateway's own ACTIVE platforms."""
        return [
            m.member_id
            for m in self._directory.members()
            if m.role is Role.PLATFORM
            and m.status is MemberStatus.ACTIVE
            and is_own(m.member_id, self._trust_domain)
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
            listing = decode_statement(record.payload_type, record.payload, record.disclosures)
            assert isinstance(listing, Listing)
            policy = self._policy(listing, now)
            history = steps.get(row.listing_id, [])
            lifecycle = derive(row.listing_id, listing, _step_records(history))
            confirmed = sanctions.get(row.listing_id, ())
            state: dict[SanctionKey, SanctionAction] = {
                (s.platform, SanctionMeasure(s.measure), s.measure_other): SanctionAction(s.action)
                for s in confirmed
                if s.action != _NOT_APPLICABLE
            }
            answered = {s.platform for s in confirmed if s.action == _NOT_APPLICABLE}
            out.append(
                evaluate(
                    row.listing_id,
                    listing,
                    lifecycle=lifecycle,
                    sanctions=state,
                    not_applicable=answered,
                    active_platforms=active,
                    trust_domain=self._trust_domain,
                    grace=policy_grace(policy, self._grace),
                    satisfying=policy_satisfying(listing, policy),
                    at=now,
                )
            )
        return out


def _step_records(history: Iterable[StepTime]) -> Iterator[StepRecord]:
    for s in history:
        yield StepRecord(s.record_id, LifecycleStep(s.step), s.effective_at)


def _owed_order(owed: Owed) -> tuple[str, str]:
    # RFC 3339 UTC with microseconds sorts as text in time order.
    return (owed.obligation.due_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), owed.listing.listing_id)


class _MeasuresByListing:
    """The record ids of the government measures on each listing, read from the log as
    it grows: each call decodes only the measures appended since the one before (a
    listing's detail used to decode every measure in the log). The log only grows and
    a measure's listing is in its signed payload, so what was read stays true."""

    def __init__(self, records: RecordsOfType) -> None:
        self._new = NewRecords(records, (GOVERNMENT_MEASURE_V1, GOVERNMENT_MEASURE_V2))
        self._lock = threading.Lock()
        self._ids: dict[str, list[str]] = {}

    def on(self, listing_id: str) -> list[str]:
        with self._lock:
            for payload_type, _, record_id, payload in self._new.read():
                stmt = decode_statement(payload_type, payload)
                if isinstance(stmt, GovernmentMeasure):
                    self._ids.setdefault(stmt.listing_id, []).append(record_id)
            return list(self._ids.get(listing_id, ()))
