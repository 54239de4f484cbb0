"""The monthly report: per reporting unit counts, computed from records alone.

The input is the set of verified records of one log below a checkpoint (any order;
duplicates ignored), so a monitor that replays the log up to the checkpoint gets the
same numbers. State at month end is the fold of the records whose times fall before
the end of the month (Asia/Shanghai): a listing counts from its ``listed_at``, a step
or a confirmation from its ``effective_at``.

Per unit (the listing's ``region_code`` prefix):

- ``new_listings``: listed in the month, by list and conduct;
- ``corrected_in_time`` / ``corrected_late``: first CORRECTED step in the month, at or
  before / after the correction deadline in force (``gateway.core.lifecycle``: counted
  from the identification, moved out by disputes; a listing never identified has none
  and counts in time); not counted when the listing was withdrawn;
- ``removed``: first REMOVED step in the month (not counted when withdrawn);
  ``withdrawn``: first WITHDRAWN step in the month (listed in error, not a repair);
- ``retired``: the listing's first RETIRED step (issue 18: its maximum publication
  period ended; only on an identified listing, not when withdrawn) falls in the month;
- ``escalated``: the first escalation *in effect* falls in the month (an escalation a
  correction effective at or before it rescinds is not counted, so a listing corrected
  in time counts once, as corrected in time);
- ``identified``: platform reports identified in the month (their first IDENTIFIED);
- ``disputes_opened``, ``disputes_upheld``, ``disputes_withdrawn``: disputes opened,
  decided UPHELD, decided WITHDRAWN in the month; ``disputes_open_at_month_end`` and
  ``disputes_overdue_at_month_end``: open at month end, and of those the ones past the
  issuing alliance's decision limit (``gateway.core.disputes``; the policy in force at
  month end);
- ``overdue_at_month_end``: in force at month end and past the deadline in force;
- ``in_force_at_month_end``;
- ``sanctions_applied`` / ``sanctions_lifted``: confirmations effective in the month,
  by measure and platform;
- ``not_applicable_answers``: NOT_APPLICABLE answers effective in the month (the
  seller has no account with the platform);
- ``government_measures``: government measures effective in the month, by kind;
- ``notices_served`` / ``commitments_signed``: first NOTICE_SERVED / COMMITMENT_SIGNED
  step in the month; ``notices_late``: listings whose correction notice fell due in the
  month (``gateway.core.notices``: counted from the identification; a listing
  withdrawn, or closed before the notice fell due, owes none) and was not served by
  then (only with a working-day calendar);
- ``outstanding_confirmations``: (listing, own platform) pairs owing an APPLIED sanction
  after the grace period, at month end (the platforms of the reporting gateway's trust
  domain: ``gateway.core.obligations``; only an escalation in effect obliges);
  ``outstanding_lifts``: measures still applied after a correction, removal or
  withdrawal beyond the grace period, by measure;
- ``by_city``: the listing counters again, per prefecture-level code (the first four
  digits of ``region_code`` then ``00``), for the codes with any non-zero counter.

``compute_month`` also returns the month's **ledger** (one entry per listing that is
new, changed or overdue in the month, with its state at month end) and the member
records at month end; neither is part of the signed document.

``canonical_json`` turns the document into the bytes the ``MonthlyReport`` signs:
sorted keys, no insignificant whitespace, UTF-8, integers only.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from gateway.core.alliance_policy import PolicyBook
from gateway.core.disputes import dispute_overdue
from gateway.core.fold import MemberDirectory, SanctionKey, VerifiedRecord
from gateway.core.identifiers import REPORTING_UNITS, Role
from gateway.core.lifecycle import Lifecycle, StepRecord, derive, identified_when_signed
from gateway.core.notices import notice_due
from gateway.core.obligations import (
    Obligation,
    ObligationKind,
    evaluate,
    policy_grace,
    policy_satisfying,
)
from gateway.core.statements import (
    AlliancePolicy,
    GovernmentMeasure,
    LifecycleStep,
    Listing,
    MemberRecord,
    MemberStatus,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
)
from gateway.core.workdays import REPORT_TZ, ReportMonth, WorkCalendar

__all__ = [
    "CITY_COUNTERS",
    "DUE_PROCESS_COUNTERS",
    "REPORT_FORMAT",
    "LedgerEntry",
    "MonthData",
    "UnitReport",
    "canonical_json",
    "city_code",
    "compute_month",
    "compute_units",
    "report_document",
    "totals",
]

REPORT_FORMAT = "alliance.monthly-report.v1"

# The listing counters that ``by_city`` repeats per prefecture-level code.
CITY_COUNTERS = (
    "new_listings_total",
    "corrected_in_time",
    "corrected_late",
    "removed",
    "withdrawn",
    "escalated",
    "overdue_at_month_end",
    "in_force_at_month_end",
)

# Due-process counters (protocol revision 3), per unit and in the totals.
DUE_PROCESS_COUNTERS = (
    "identified",
    "disputes_opened",
    "disputes_upheld",
    "disputes_withdrawn",
    "disputes_open_at_month_end",
    "disputes_overdue_at_month_end",
)

# Publication-period counters (issue 18), per unit and in the totals.
PUBLICATION_COUNTERS = ("retired",)


def city_code(region_code: str) -> str:
    """The prefecture-level code of a region code: ``330106`` -> ``330100``."""
    return region_code[:4] + "00"


@dataclass(slots=True)
class UnitReport:
    """The counts of one reporting unit for one month."""

    unit: str
    new_listings: dict[str, dict[str, int]] = field(default_factory=dict)
    corrected_in_time: int = 0
    corrected_late: int = 0
    removed: int = 0
    withdrawn: int = 0
    escalated: int = 0
    identified: int = 0
    disputes_opened: int = 0
    disputes_upheld: int = 0
    disputes_withdrawn: int = 0
    disputes_open_at_month_end: int = 0
    disputes_overdue_at_month_end: int = 0
    retired: int = 0
    overdue_at_month_end: int = 0
    in_force_at_month_end: int = 0
    sanctions_applied: dict[str, dict[str, int]] = field(default_factory=dict)
    sanctions_lifted: dict[str, dict[str, int]] = field(default_factory=dict)
    outstanding_confirmations: int = 0
    outstanding_lifts: dict[str, int] = field(default_factory=dict)
    not_applicable_answers: int = 0
    government_measures: dict[str, int] = field(default_factory=dict)
    notices_served: int = 0
    commitments_signed: int = 0
    notices_late: int = 0
    by_city: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "name": REPORTING_UNITS.get(self.unit, ""),
            "new_listings": self.new_listings,
            "new_listings_total": sum(sum(c.values()) for c in self.new_listings.values()),
            "corrected_in_time": self.corrected_in_time,
            "corrected_late": self.corrected_late,
            "removed": self.removed,
            "withdrawn": self.withdrawn,
            "escalated": self.escalated,
            **{name: getattr(self, name) for name in DUE_PROCESS_COUNTERS},
            **{name: getattr(self, name) for name in PUBLICATION_COUNTERS},
            "overdue_at_month_end": self.overdue_at_month_end,
            "in_force_at_month_end": self.in_force_at_month_end,
            "sanctions_applied": self.sanctions_applied,
            "sanctions_lifted": self.sanctions_lifted,
            "outstanding_confirmations": self.outstanding_confirmations,
            "outstanding_lifts": self.outstanding_lifts,
            "outstanding_lifts_total": sum(self.outstanding_lifts.values()),
            "not_applicable_answers": self.not_applicable_answers,
            "government_measures": self.government_measures,
            "government_measures_total": sum(self.government_measures.values()),
            "notices_served": self.notices_served,
            "commitments_signed": self.commitments_signed,
            "notices_late": self.notices_late,
            "by_city": {
                code: {name: counts.get(name, 0) for name in CITY_COUNTERS}
                for code, counts in sorted(self.by_city.items())
            },
        }


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One listing of the month's ledger (台账), as it stood at month end.

    ``measures`` are the sanctions whose newest confirmation at month end is APPLIED,
    as ``(platform, measure, measure_other)``.
    """

    listing_id: str
    listing: Listing
    step: LifecycleStep
    overdue: bool
    new_in_month: bool
    corrected_at: datetime | None
    removed_at: datetime | None
    escalated_at: datetime | None
    measures: tuple[tuple[str, SanctionMeasure, str], ...]
    identified_at: datetime | None = None
    withdrawn_at: datetime | None = None
    dispute_open: bool = False


@dataclass(frozen=True, slots=True)
class MonthData:
    """What one replay of the log gives for a month: the signed counts per unit, the
    ledger of the month's listings (in the scope, in listing-time order) and the member
    records at month end (for display names)."""

    units: dict[str, UnitReport]
    ledger: tuple[LedgerEntry, ...]
    members: Mapping[str, MemberRecord]


@dataclass(slots=True)
class _Listing:
    listing: Listing
    steps: dict[str, tuple[LifecycleStep, datetime]] = field(default_factory=dict)
    confirmations: dict[str, SanctionConfirmation] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What every listing of one report is counted with."""

    month: ReportMonth
    trust_domain: str
    active: tuple[str, ...]
    grace: timedelta
    calendar: WorkCalendar | None
    policies: PolicyBook


def _bump(table: dict[str, int], key: str) -> None:
    table[key] = table.get(key, 0) + 1


def _bump2(table: dict[str, dict[str, int]], key: str, sub: str) -> None:
    _bump(table.setdefault(key, {}), sub)


def compute_units(
    records: Iterable[VerifiedRecord],
    month: ReportMonth,
    *,
    grace: timedelta,
    trust_domain: str,
    unit: str | None = None,
    calendar: WorkCalendar | None = None,
) -> dict[str, UnitReport]:
    """Counts per reporting unit (all 32, or only ``unit``), order-independent."""
    return compute_month(
        records, month, grace=grace, trust_domain=trust_domain, unit=unit, calendar=calendar
    ).units


def compute_month(
    records: Iterable[VerifiedRecord],
    month: ReportMonth,
    *,
    grace: timedelta,
    trust_domain: str,
    unit: str | None = None,
    calendar: WorkCalendar | None = None,
) -> MonthData:
    """Counts per reporting unit, the ledger and the members, order-independent.

    ``trust_domain``: the reporting gateway's, whose platforms' obligations count;
    ``calendar``: the working days that time dispute decisions (``None``: Monday to
    Friday) and correction notices (``None``: late notices are not counted).
    """
    end = month.end
    listings: dict[str, _Listing] = {}
    steps: dict[str, dict[str, tuple[LifecycleStep, datetime]]] = defaultdict(dict)
    confirmations: dict[str, dict[str, SanctionConfirmation]] = defaultdict(dict)
    measures: dict[str, dict[str, GovernmentMeasure]] = defaultdict(dict)
    members = MemberDirectory()
    policies = PolicyBook()
    for rec in records:
        stmt = rec.statement
        if isinstance(stmt, Listing):
            if stmt.listed_at < end:
                listings[rec.record_id] = _Listing(stmt)
        elif isinstance(stmt, StatusChange):
            if stmt.effective_at < end:
                steps[stmt.listing_id][rec.record_id] = (stmt.step, stmt.effective_at)
        elif isinstance(stmt, SanctionConfirmation):
            if stmt.effective_at < end:
                confirmations[stmt.listing_id][rec.record_id] = stmt
        elif isinstance(stmt, GovernmentMeasure):
            if stmt.effective_at < end:
                measures[stmt.listing_id][rec.record_id] = stmt
        elif isinstance(stmt, AlliancePolicy):
            if stmt.issued_at < end:
                policies.apply(rec.record_id, stmt)
        elif isinstance(stmt, MemberRecord) and stmt.issued_at < end:
            members.apply(rec.record_id, stmt)
    active = tuple(
        m.member_id
        for m in members.members()
        if m.role is Role.PLATFORM and m.status is MemberStatus.ACTIVE
    )
    inputs = _Inputs(month, trust_domain, active, grace, calendar, policies)
    units = {u: UnitReport(u) for u in REPORTING_UNITS if unit is None or u == unit}
    ledger: list[LedgerEntry] = []
    for listing_id in sorted(listings):
        entry = listings[listing_id]
        target = units.get(entry.listing.region_code[:2])
        if target is None:
            continue
        row = _count(
            target,
            listing_id,
            entry.listing,
            steps.get(listing_id, {}),
            confirmations.get(listing_id, {}),
            measures.get(listing_id, {}),
            inputs,
        )
        if row is not None:
            ledger.append(row)
    ledger.sort(key=lambda r: (r.listing.listed_at, r.listing_id))
    by_id = {m.member_id: m for m in members.members()}
    return MonthData(units, tuple(ledger), MappingProxyType(by_id))


def _within(at: datetime | None, start: datetime, end: datetime) -> bool:
    return at is not None and start <= at < end


def _hits(
    *,
    new: bool,
    corrected: bool,
    in_time: bool,
    removed: bool,
    withdrawn: bool,
    escalated: bool,
    in_force: bool,
    overdue: bool,
) -> list[str]:
    """The ``CITY_COUNTERS`` one listing adds to."""
    flags = (
        ("new_listings_total", new),
        ("corrected_in_time", corrected and in_time),
        ("corrected_late", corrected and not in_time),
        ("removed", removed),
        ("withdrawn", withdrawn),
        ("escalated", escalated),
        ("overdue_at_month_end", overdue),
        ("in_force_at_month_end", in_force),
    )
    return [name for name, hit in flags if hit]


def _count_disputes(
    out: UnitReport,
    listing: Listing,
    state: Lifecycle,
    policy: AlliancePolicy | None,
    inputs: _Inputs,
) -> None:
    """Identifications and disputes of one listing into its unit's counters."""
    start, end = inputs.month.start, inputs.month.end
    if not identified_when_signed(listing) and _within(state.identified_at, start, end):
        out.identified += 1
    for d in state.disputes:
        if _within(d.opened_at, start, end):
            out.disputes_opened += 1
        if _within(d.decided_at, start, end):
            if d.decision is LifecycleStep.UPHELD:
                out.disputes_upheld += 1
            else:
                out.disputes_withdrawn += 1
    if state.open_dispute is not None:
        out.disputes_open_at_month_end += 1
        if dispute_overdue(state, policy, end, inputs.calendar):
            out.disputes_overdue_at_month_end += 1


def _count_notices_and_measures(
    out: UnitReport,
    state: Lifecycle,
    first: Mapping[LifecycleStep, datetime],
    measures: Mapping[str, GovernmentMeasure],
    policy: AlliancePolicy | None,
    inputs: _Inputs,
) -> bool:
    """Count notices, commitments, late notices and government measures; whether a
    government measure took effect in the month."""
    start, end = inputs.month.start, inputs.month.end
    if _within(first.get(LifecycleStep.NOTICE_SERVED), start, end):
        out.notices_served += 1
    if _within(first.get(LifecycleStep.COMMITMENT_SIGNED), start, end):
        out.commitments_signed += 1
    if inputs.calendar is not None:
        due = notice_due(inputs.calendar, state, policy)
        served = first.get(LifecycleStep.NOTICE_SERVED)
        if due is not None and start <= due < end and (served is None or served > due):
            out.notices_late += 1
    changed = False
    for m in measures.values():
        if start <= m.effective_at < end:
            changed = True
            _bump(out.government_measures, m.kind.name)
    return changed


def _count_outstanding(out: UnitReport, outstanding: Iterable[Obligation]) -> None:
    for o in outstanding:
        if o.kind is ObligationKind.APPLY:
            out.outstanding_confirmations += 1
        else:
            for measure, _ in o.measures:
                _bump(out.outstanding_lifts, measure.name)


def _count(
    out: UnitReport,
    listing_id: str,
    listing: Listing,
    steps: Mapping[str, tuple[LifecycleStep, datetime]],
    confirmations: Mapping[str, SanctionConfirmation],
    measures: Mapping[str, GovernmentMeasure],
    inputs: _Inputs,
) -> LedgerEntry | None:
    """Count one listing into its unit (and city); its ledger entry when it is new,
    changed or overdue in the month, else None."""
    month = inputs.month
    start, end = month.start, month.end
    new = month.contains(listing.listed_at)
    if new:
        _bump2(out.new_listings, listing.list.name, listing.conduct.name)
    # The listing's state at month end: the due-process rules over its steps so far.
    state = derive(listing_id, listing, (StepRecord(rid, s, at) for rid, (s, at) in steps.items()))
    first: dict[LifecycleStep, datetime] = {}
    for s, at in steps.values():
        if s not in first or at < first[s]:
            first[s] = at
    withdrawn = first.get(LifecycleStep.WITHDRAWN)
    void = state.closing is LifecycleStep.WITHDRAWN
    corrected = None if void else first.get(LifecycleStep.CORRECTED)
    removed = None if void else first.get(LifecycleStep.REMOVED)
    escalated = state.escalated_at
    overdue = state.overdue(end)
    retired = first.get(LifecycleStep.RETIRED)
    if (
        not void
        and retired is not None
        and state.identified_at is not None
        and retired >= state.identified_at
        and _within(retired, start, end)
    ):
        out.retired += 1
    hits = _hits(
        new=new,
        corrected=_within(corrected, start, end),
        in_time=corrected is not None and (state.deadline is None or corrected <= state.deadline),
        removed=_within(removed, start, end),
        withdrawn=_within(withdrawn, start, end),
        escalated=_within(escalated, start, end),
        in_force=state.in_force,
        overdue=overdue,
    )
    for name in hits:
        if name != "new_listings_total":
            setattr(out, name, getattr(out, name) + 1)
    if hits:
        city = out.by_city.setdefault(city_code(listing.region_code), {})
        for name in hits:
            _bump(city, name)
    policy = inputs.policies.for_listing(listing, end)
    _count_disputes(out, listing, state, policy, inputs)
    changed = any(start <= at < end for _, at in steps.values())
    changed = _count_notices_and_measures(out, state, first, measures, policy, inputs) or changed
    # Sanctions: confirmations in the month, and the winning state at month end.
    winning: dict[SanctionKey, tuple[datetime, int, str]] = {}
    answered: set[str] = set()
    for record_id, c in confirmations.items():
        in_month = start <= c.effective_at < end
        changed = changed or in_month
        if c.measure is None:  # NOT_APPLICABLE
            answered.add(c.issuer)
            out.not_applicable_answers += in_month
            continue
        if in_month:
            table = (
                out.sanctions_applied
                if c.action is SanctionAction.APPLIED
                else out.sanctions_lifted
            )
            _bump2(table, c.measure.name, c.issuer)
        skey: SanctionKey = (c.issuer, c.measure, c.measure_other)
        order = (c.effective_at, c.action.value, record_id)
        if skey not in winning or order > winning[skey]:
            winning[skey] = order
    result = evaluate(
        listing_id,
        listing,
        lifecycle=state,
        sanctions={k: SanctionAction(v[1]) for k, v in winning.items()},
        not_applicable=answered,
        active_platforms=inputs.active,
        trust_domain=inputs.trust_domain,
        grace=policy_grace(policy, inputs.grace),
        satisfying=policy_satisfying(listing, policy),
        at=end,
    )
    _count_outstanding(out, result.outstanding())
    if not (new or changed or overdue):
        return None
    applied = sorted(
        (k for k, v in winning.items() if v[1] == SanctionAction.APPLIED.value),
        key=lambda k: (k[0], k[1].value, k[2]),
    )
    return LedgerEntry(
        listing_id=listing_id,
        listing=listing,
        step=state.step,
        overdue=overdue,
        new_in_month=new,
        corrected_at=corrected,
        removed_at=removed,
        escalated_at=escalated,
        measures=tuple(applied),
        identified_at=state.identified_at,
        withdrawn_at=withdrawn,
        dispute_open=state.open_dispute is not None,
    )


_SUMMED = (
    "new_listings_total",
    "corrected_in_time",
    "corrected_late",
    "removed",
    "withdrawn",
    "escalated",
    "overdue_at_month_end",
    "in_force_at_month_end",
    "outstanding_confirmations",
    "outstanding_lifts_total",
    *DUE_PROCESS_COUNTERS,
    *PUBLICATION_COUNTERS,
    "not_applicable_answers",
    "government_measures_total",
    "notices_served",
    "commitments_signed",
    "notices_late",
)


def totals(units: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sums over unit documents: the counters, and the by-measure tables."""
    out: dict[str, Any] = dict.fromkeys(_SUMMED, 0)
    applied: dict[str, int] = {}
    lifted: dict[str, int] = {}
    lifts: dict[str, int] = {}
    government: dict[str, int] = {}
    for u in units:
        for name in _SUMMED:
            out[name] += u[name]
        for table, target in ((u["sanctions_applied"], applied), (u["sanctions_lifted"], lifted)):
            for measure, by_platform in table.items():
                target[measure] = target.get(measure, 0) + sum(by_platform.values())
        for measure, n in u["outstanding_lifts"].items():
            lifts[measure] = lifts.get(measure, 0) + n
        for kind, n in u["government_measures"].items():
            government[kind] = government.get(kind, 0) + n
    out["government_measures"] = government
    out["sanctions_applied_by_measure"] = applied
    out["sanctions_lifted_by_measure"] = lifted
    out["outstanding_lifts"] = lifts
    return out


def report_document(
    *,
    issuer: str,
    log_origin: str,
    month: ReportMonth,
    unit: str | None,
    checkpoint_size: int,
    checkpoint_root: bytes,
    units: Mapping[str, UnitReport],
    grace_days: int,
    due_date: date | None,
    federation: Mapping[str, Any],
) -> dict[str, Any]:
    """The report as a JSON-ready document (the signed content is its canonical JSON).

    Everything but ``federation`` is a function of the records below the checkpoint,
    the month, the scope, the grace period and the calendar; ``federation`` is what
    the gateway observed of its peers when it computed the report.
    """
    unit_docs = [units[u].to_json() for u in sorted(units)]
    return {
        "format": REPORT_FORMAT,
        "issuer": issuer,
        "log_origin": log_origin,
        "month": str(month),
        "scope": unit or "all",
        "period": {
            "start": month.start.isoformat(),
            "end": month.end.isoformat(),
            "time_zone": str(REPORT_TZ),
        },
        "due_date": due_date.isoformat() if due_date is not None else None,
        "checkpoint": {
            "size": checkpoint_size,
            "root": base64.b64encode(checkpoint_root).decode("ascii"),
        },
        "rules": {"sanction_grace_days": grace_days},
        "units": unit_docs,
        "totals": totals(unit_docs),
        "federation": dict(federation),
    }


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, compact separators, UTF-8; floats are refused (not canonical)."""
    _no_floats(document)
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _no_floats(value: object) -> None:
    if isinstance(value, float):
        raise ValueError("canonical JSON: floats are not allowed, use integers")
    if isinstance(value, Mapping):
        for v in value.values():
            _no_floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _no_floats(v)
