"""What platforms owe on a listing: sanctions after an escalation, lifts after closing.

- **After an escalation** (the listing is in force and an escalation is in effect:
  ``gateway.core.lifecycle``; a reported listing, or one whose dispute opened before the
  deadline is still open, has none, so no obligation starts), every *required*
  platform must confirm at least one APPLIED measure. The required platforms are the
  platforms of the subject's store references (whatever region they are in) or, when
  the listing names no store, every ACTIVE platform in the member directory.
- **After a correction, removal or withdrawal**, every platform that still has a
  measure APPLIED must confirm LIFTED for it.

Each obligation is SATISFIED, PENDING (not yet, within the grace period counted from
the escalation's or the closing step's ``effective_at``) or OUTSTANDING (grace period
over). The rule is a pure function of the folded records and an instant, so the live
Compliance service and the monthly report (evaluated at month end) agree.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.fold import SanctionKey
from gateway.core.lifecycle import Lifecycle
from gateway.core.statements import LifecycleStep, Listing, SanctionAction, SanctionMeasure

__all__ = [
    "ListingCompliance",
    "MeasureKey",
    "Obligation",
    "ObligationKind",
    "ObligationState",
    "evaluate",
    "required_platforms",
]

# (measure, measure_other)
MeasureKey = tuple[SanctionMeasure, str]


class ObligationKind(enum.IntEnum):
    APPLY = 1
    LIFT = 2


class ObligationState(enum.IntEnum):
    SATISFIED = 1
    PENDING = 2
    OUTSTANDING = 3


@dataclass(frozen=True, slots=True)
class Obligation:
    """One platform's obligation on one listing.

    ``measures``: for APPLY the measures the platform has APPLIED; for LIFT the
    measures it still has APPLIED (empty once everything is lifted).
    """

    platform: str
    kind: ObligationKind
    state: ObligationState
    due_at: datetime
    measures: tuple[MeasureKey, ...]


@dataclass(frozen=True, slots=True)
class ListingCompliance:
    listing_id: str
    listing: Listing
    lifecycle: Lifecycle
    at: datetime
    platforms_from_stores: bool
    obligations: tuple[Obligation, ...]

    @property
    def step(self) -> LifecycleStep:
        return self.lifecycle.step

    @property
    def escalated_at(self) -> datetime | None:
        return self.lifecycle.escalated_at

    @property
    def closed_at(self) -> datetime | None:
        return self.lifecycle.closed_at

    @property
    def deadline(self) -> datetime | None:
        return self.lifecycle.deadline

    @property
    def in_force(self) -> bool:
        return self.lifecycle.in_force

    @property
    def overdue(self) -> bool:
        return self.lifecycle.overdue(self.at)

    def outstanding(self, kind: ObligationKind | None = None) -> tuple[Obligation, ...]:
        return tuple(
            o
            for o in self.obligations
            if o.state is ObligationState.OUTSTANDING and (kind is None or o.kind is kind)
        )


def required_platforms(
    listing: Listing, active_platforms: Iterable[str]
) -> tuple[bool, tuple[str, ...]]:
    """``(from_stores, platforms)``: the store platforms, else every active platform."""
    stores = sorted({s.platform for s in listing.subject.stores})
    if stores:
        return True, tuple(stores)
    return False, tuple(sorted(set(active_platforms)))


def evaluate(
    listing_id: str,
    listing: Listing,
    *,
    lifecycle: Lifecycle,
    sanctions: Mapping[SanctionKey, SanctionAction],
    active_platforms: Iterable[str],
    grace: timedelta,
    at: datetime,
) -> ListingCompliance:
    """The obligations on a listing at ``at``.

    ``lifecycle`` is the listing's state (its escalation in effect, its closing);
    ``sanctions`` the winning action per (platform, measure, measure_other).
    """
    from_stores, required = required_platforms(listing, active_platforms)
    obligations: list[Obligation] = []
    escalated_at, closed_at = lifecycle.escalated_at, lifecycle.closed_at
    if lifecycle.in_force:
        if escalated_at is not None:
            due = escalated_at + grace
            for platform in required:
                applied = _measures(sanctions, platform)
                obligations.append(
                    Obligation(
                        platform,
                        ObligationKind.APPLY,
                        _state(bool(applied), due, at),
                        due,
                        applied,
                    )
                )
    elif closed_at is not None:
        due = closed_at + grace
        for platform in sorted({p for p, _, _ in sanctions}):
            still = _measures(sanctions, platform)
            obligations.append(
                Obligation(platform, ObligationKind.LIFT, _state(not still, due, at), due, still)
            )
    return ListingCompliance(
        listing_id=listing_id,
        listing=listing,
        lifecycle=lifecycle,
        at=at,
        platforms_from_stores=from_stores,
        obligations=tuple(obligations),
    )


def _measures(
    sanctions: Mapping[SanctionKey, SanctionAction], platform: str
) -> tuple[MeasureKey, ...]:
    return tuple(
        sorted(
            (measure, other)
            for (p, measure, other), action in sanctions.items()
            if p == platform and action is SanctionAction.APPLIED
        )
    )


def _state(done: bool, due: datetime, at: datetime) -> ObligationState:
    if done:
        return ObligationState.SATISFIED
    return ObligationState.OUTSTANDING if at > due else ObligationState.PENDING
