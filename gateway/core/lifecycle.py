"""A listing's due process: from its status changes to its state, order-independently.

One pure function, ``derive``, over the *set* of a listing's status changes (sorted by
``(effective_at, record_id)`` inside, so arrival order never matters). The fold, the
stored projection and the monthly report all call it, so they cannot disagree.

- **Identification.** A listing signed by an authority is identified when signed
  (``listed_at``). A listing signed by a platform is *reported*: it is identified at the
  earliest ``effective_at`` of its IDENTIFIED steps (authorization decided who may sign
  one: ``gateway.core.policy``). Only an identified listing runs a correction deadline,
  escalates and obliges platforms.
- **Deadline.** Counted from the identification: the listing's own period (its signed
  ``correction_deadline`` minus ``listed_at``; unset, 3 calendar months in UTC+08:00,
  counted from the identification instead of ``listed_at``). An authority's listing
  keeps exactly its signed deadline.
- **Disputes.** DISPUTED opens a dispute when none is open; the next UPHELD or WITHDRAWN
  (in ``(effective_at, record_id)`` order) decides it; further DISPUTED steps while one
  is open, and decisions with none open, change nothing. A dispute opened before the
  deadline moves it out by the time it was open (counted from the identification at
  the earliest); while it is open, the deadline does not run (``deadline`` is None).
  A dispute opened after the deadline moves nothing: it cannot undo an escalation.
- **Closing.** CORRECTED, REMOVED, WITHDRAWN and RETIRED end the listing; among
  several the winner is WITHDRAWN over REMOVED over CORRECTED over RETIRED (void from
  the start beats removed, beats repaired, beats a publication that merely ran out),
  then the latest. ``closed_at`` is the earliest of them. WITHDRAWN means the listing
  was erroneous: reports count it as an error, not a repair. RETIRED (issue 18) is
  signed by the issuing alliance's gateway when the maximum publication period,
  counted from the identification, ends (``gateway.core.periods``); it counts only on
  an identified listing and when effective at or after the identification (a RETIRED
  step on a listing never identified changes nothing). Like any closing step it ends
  the APPLY obligations and starts the LIFT obligations of platforms still applying a
  measure (``gateway.core.obligations``): the joint punishment ends with publication.
- **Escalation in effect.** An ESCALATED step counts only when the listing is
  identified, its deadline runs and the step's ``effective_at`` is at or after it, and
  no closing step is effective at or before it: a correction effective before the
  deadline rescinds an escalation signed meanwhile, whatever the order they arrived in.
- **Step shown.** The winning closing step; else ESCALATED when one is in effect; else
  DISPUTED while a dispute is open; else the highest of COMMITMENT_SIGNED,
  NOTICE_SERVED, UPHELD, IDENTIFIED (the latest of that step), else LISTED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from gateway.core.identifiers import MemberId, Role
from gateway.core.statements import LifecycleStep, Listing, add_months

__all__ = [
    "CLOSING_STEPS",
    "Dispute",
    "Lifecycle",
    "StepRecord",
    "derive",
    "identified_when_signed",
]

CLOSING_STEPS = frozenset(
    {
        LifecycleStep.CORRECTED,
        LifecycleStep.REMOVED,
        LifecycleStep.WITHDRAWN,
        LifecycleStep.RETIRED,
    }
)
_CLOSING_RANK: Mapping[LifecycleStep, int] = MappingProxyType(
    {
        LifecycleStep.RETIRED: 0,
        LifecycleStep.CORRECTED: 1,
        LifecycleStep.REMOVED: 2,
        LifecycleStep.WITHDRAWN: 3,
    }
)
_OPEN_RANK: Mapping[LifecycleStep, int] = MappingProxyType(
    {
        LifecycleStep.IDENTIFIED: 1,
        LifecycleStep.UPHELD: 2,
        LifecycleStep.NOTICE_SERVED: 3,
        LifecycleStep.COMMITMENT_SIGNED: 4,
    }
)
_DECISIONS = frozenset({LifecycleStep.UPHELD, LifecycleStep.WITHDRAWN})


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One status change of a listing, as the rules need it."""

    record_id: str
    step: LifecycleStep
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class Dispute:
    opened_at: datetime
    record_id: str  # the DISPUTED step
    decided_at: datetime | None = None
    decision: LifecycleStep | None = None  # UPHELD or WITHDRAWN
    decision_record_id: str | None = None

    @property
    def open(self) -> bool:
        return self.decided_at is None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A listing's state under the due-process rules (see the module docstring)."""

    step: LifecycleStep
    step_record_id: str
    step_at: datetime
    identified_at: datetime | None
    disputes: tuple[Dispute, ...]
    # The correction deadline in force; None while reported or while a dispute is open.
    deadline: datetime | None
    escalated_at: datetime | None  # the earliest escalation in effect
    closing: LifecycleStep | None
    closed_at: datetime | None  # the earliest closing step

    @property
    def in_force(self) -> bool:
        return self.closing is None

    @property
    def identified(self) -> bool:
        return self.identified_at is not None

    @property
    def open_dispute(self) -> Dispute | None:
        last = self.disputes[-1] if self.disputes else None
        return last if last is not None and last.open else None

    def overdue(self, at: datetime) -> bool:
        """In force, identified, no dispute open, and strictly past the deadline."""
        return self.in_force and self.deadline is not None and at > self.deadline


def identified_when_signed(listing: Listing) -> bool:
    """An authority's listing needs no identification step."""
    return MemberId.parse(listing.issuer, field="listing.issuer").role is Role.AUTHORITY


def _base_deadline(listing: Listing, identified_at: datetime) -> datetime:
    if identified_when_signed(listing):
        return listing.deadline
    if listing.correction_deadline is None:
        return add_months(identified_at, 3)
    return identified_at + (listing.correction_deadline - listing.listed_at)


def _disputes(events: list[StepRecord]) -> tuple[Dispute, ...]:
    out: list[Dispute] = []
    current: Dispute | None = None
    for e in events:
        if e.step is LifecycleStep.DISPUTED and current is None:
            current = Dispute(e.effective_at, e.record_id)
        elif e.step in _DECISIONS and current is not None:
            out.append(
                Dispute(current.opened_at, current.record_id, e.effective_at, e.step, e.record_id)
            )
            current = None
    if current is not None:
        out.append(current)
    return tuple(out)


def _deadline(
    listing: Listing, identified_at: datetime | None, disputes: tuple[Dispute, ...]
) -> datetime | None:
    if identified_at is None:
        return None
    deadline = _base_deadline(listing, identified_at)
    for d in disputes:
        if d.opened_at >= deadline:
            break  # opened after the deadline: later ones too (disputes do not overlap)
        if d.decided_at is None:
            return None  # open: the deadline waits
        start = max(d.opened_at, identified_at)
        if d.decided_at > start:
            deadline += d.decided_at - start
    return deadline


def derive(listing_id: str, listing: Listing, steps: Iterable[StepRecord]) -> Lifecycle:
    """The listing's state from the set of its status changes (any order, duplicates ok)."""
    events = sorted(set(steps), key=lambda e: (e.effective_at, e.record_id))
    if identified_when_signed(listing):
        identified_at: datetime | None = listing.listed_at
    else:
        identified_at = next(
            (e.effective_at for e in events if e.step is LifecycleStep.IDENTIFIED), None
        )
    disputes = _disputes(events)
    deadline = _deadline(listing, identified_at, disputes)
    closes = [
        e
        for e in events
        if e.step in CLOSING_STEPS
        and (
            e.step is not LifecycleStep.RETIRED
            or (identified_at is not None and e.effective_at >= identified_at)
        )
    ]
    closed_at = closes[0].effective_at if closes else None
    closing = (
        max(closes, key=lambda e: (_CLOSING_RANK[e.step], e.effective_at, e.record_id))
        if closes
        else None
    )
    escalation = None
    if deadline is not None:
        escalation = next(
            (
                e
                for e in events
                if e.step is LifecycleStep.ESCALATED
                and e.effective_at >= deadline
                and (closed_at is None or closed_at > e.effective_at)
            ),
            None,
        )
    open_dispute = disputes[-1] if disputes and disputes[-1].open else None
    shown: StepRecord
    if closing is not None:
        shown = closing
    elif escalation is not None:
        shown = escalation
    elif open_dispute is not None:
        shown = StepRecord(open_dispute.record_id, LifecycleStep.DISPUTED, open_dispute.opened_at)
    else:
        candidates = [e for e in events if e.step in _OPEN_RANK]
        if identified_at is None:
            candidates = [e for e in candidates if e.step is not LifecycleStep.IDENTIFIED]
        shown = max(
            candidates,
            key=lambda e: (_OPEN_RANK[e.step], e.effective_at, e.record_id),
            default=StepRecord(listing_id, LifecycleStep.LISTED, listing.listed_at),
        )
    return Lifecycle(
        step=shown.step,
        step_record_id=shown.record_id,
        step_at=shown.effective_at,
        identified_at=identified_at,
        disputes=disputes,
        deadline=deadline,
        escalated_at=None if escalation is None else escalation.effective_at,
        closing=None if closing is None else closing.step,
        closed_at=closed_at,
    )
