"""The deterministic fold from a set of verified records to list state.

Two gateways that hold the same records must answer the same, whatever order the
records arrived in (federation relays them in any order, and duplicates). So every
rule here is a maximum over a set under a total order, never "the last one applied":
the lifecycle step is the status change of highest precedence, and each sanction is the
confirmation with the greatest ``(effective_at, action, record_id)``. Records that refer
to a listing not seen yet wait, and count once it arrives.

The fold does not authorize: it trusts that every record it is given was verified and
allowed (``gateway.core.policy``) before it got here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from gateway.core.identifiers import MemberId
from gateway.core.statements import (
    LifecycleStep,
    Listing,
    MemberRecord,
    MemberStatus,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    StatusChange,
)

__all__ = [
    "STEP_PRECEDENCE",
    "ListState",
    "ListingView",
    "MemberDirectory",
    "SanctionKey",
    "SanctionView",
    "VerifiedRecord",
    "in_force_step",
    "sanction_wins",
    "stronger_step",
]

# REMOVED outranks everything, so a removal is final whatever arrives after it; a
# correction outranks an escalation, so a late correction still ends the listing.
STEP_PRECEDENCE: Mapping[LifecycleStep, int] = MappingProxyType(
    {
        LifecycleStep.LISTED: 0,
        LifecycleStep.NOTICE_SERVED: 1,
        LifecycleStep.COMMITMENT_SIGNED: 2,
        LifecycleStep.ESCALATED: 3,
        LifecycleStep.CORRECTED: 4,
        LifecycleStep.REMOVED: 5,
    }
)

# (platform member id, measure, measure_other)
SanctionKey = tuple[str, SanctionMeasure, str]


# The rules as functions, so a stored projection (gateway.service) applies exactly these.


def stronger_step(a: LifecycleStep, b: LifecycleStep) -> LifecycleStep:
    """The step of higher precedence: the fold's step is this over all status changes."""
    return a if STEP_PRECEDENCE[a] >= STEP_PRECEDENCE[b] else b


def in_force_step(step: LifecycleStep) -> bool:
    """A listing is in force until it is corrected or removed."""
    return step not in (LifecycleStep.CORRECTED, LifecycleStep.REMOVED)


def sanction_wins(candidate: tuple[datetime, int, str], current: tuple[datetime, int, str]) -> bool:
    """Does ``(effective_at, action, record_id)`` replace the current confirmation?

    At equal times LIFTED (2) beats APPLIED (1): lifting is the safer reading.
    """
    return candidate > current


@dataclass(frozen=True, slots=True)
class VerifiedRecord:
    """A record whose signature and authorization were checked."""

    record_id: str
    signer: str
    statement: Statement


@dataclass(frozen=True, slots=True)
class SanctionView:
    action: SanctionAction
    effective_at: datetime
    record_id: str


@dataclass(frozen=True, slots=True)
class ListingView:
    """A listing as the fold sees it at one moment (a copy: later records do not change it).

    ``step_record_id`` and ``step_at`` name the status change that decided ``step``
    (among several of the same step, the latest ``(effective_at, record_id)``); for
    LISTED they are the listing's own id and ``listed_at``.
    """

    listing_id: str
    listing: Listing
    step: LifecycleStep
    step_record_id: str
    step_at: datetime
    sanctions: Mapping[SanctionKey, SanctionView]

    @property
    def deadline(self) -> datetime:
        return self.listing.deadline

    @property
    def in_force(self) -> bool:
        return in_force_step(self.step)

    def overdue(self, at: datetime) -> bool:
        return self.in_force and at > self.deadline


@dataclass(slots=True)
class _Entry:
    listing_id: str
    listing: Listing
    # (precedence, effective_at, record_id) of the winning status change.
    step_key: tuple[int, datetime, str]
    step: LifecycleStep
    sanctions: dict[SanctionKey, SanctionView] = field(default_factory=dict)

    def fold(self, rec: VerifiedRecord) -> None:
        stmt = rec.statement
        if isinstance(stmt, StatusChange):
            key = (STEP_PRECEDENCE[stmt.step], stmt.effective_at, rec.record_id)
            if key > self.step_key:
                self.step_key, self.step = key, stmt.step
        elif isinstance(stmt, SanctionConfirmation):
            skey: SanctionKey = (stmt.issuer, stmt.measure, stmt.measure_other)
            new = SanctionView(stmt.action, stmt.effective_at, rec.record_id)
            old = self.sanctions.get(skey)
            if old is None or sanction_wins(_sanction_order(new), _sanction_order(old)):
                self.sanctions[skey] = new

    def view(self) -> ListingView:
        _, at, record_id = self.step_key
        return ListingView(
            listing_id=self.listing_id,
            listing=self.listing,
            step=self.step,
            step_record_id=record_id,
            step_at=at,
            sanctions=MappingProxyType(dict(self.sanctions)),
        )


def _sanction_order(v: SanctionView) -> tuple[datetime, int, str]:
    return (v.effective_at, v.action.value, v.record_id)


def _view_order(v: ListingView) -> tuple[datetime, str]:
    return (v.listing.listed_at, v.listing_id)


class ListState:
    """Listings, their lifecycle steps and sanctions, folded from records.

    Member records are not list state and are ignored here (see ``MemberDirectory``).
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._entries: dict[str, _Entry] = {}
        self._by_subject: dict[str, set[str]] = {}
        # listing id -> record id -> record waiting for that listing
        self._pending: dict[str, dict[str, VerifiedRecord]] = {}

    def apply(self, rec: VerifiedRecord) -> None:
        """Fold one record in; a record id seen before is ignored."""
        if rec.record_id in self._seen:
            return
        self._seen.add(rec.record_id)
        stmt = rec.statement
        if isinstance(stmt, Listing):
            entry = _Entry(
                listing_id=rec.record_id,
                listing=stmt,
                step_key=(STEP_PRECEDENCE[LifecycleStep.LISTED], stmt.listed_at, rec.record_id),
                step=LifecycleStep.LISTED,
            )
            self._entries[rec.record_id] = entry
            self._by_subject.setdefault(stmt.subject.key, set()).add(rec.record_id)
            for waiting in self._pending.pop(rec.record_id, {}).values():
                entry.fold(waiting)
        elif isinstance(stmt, StatusChange | SanctionConfirmation):
            target = self._entries.get(stmt.listing_id)
            if target is None:
                self._pending.setdefault(stmt.listing_id, {})[rec.record_id] = rec
            else:
                target.fold(rec)

    def listing(self, listing_id: str) -> ListingView | None:
        entry = self._entries.get(listing_id)
        return None if entry is None else entry.view()

    def by_subject(self, subject_key: str) -> list[ListingView]:
        """All listings of a subject (in force or not), by ``listed_at`` then id."""
        ids = self._by_subject.get(subject_key, set())
        return sorted((self._entries[i].view() for i in ids), key=_view_order)

    def is_listed(self, subject_key: str) -> bool:
        """True when any listing of the subject is in force."""
        return any(v.in_force for v in self.by_subject(subject_key))

    def listings(self) -> Iterator[ListingView]:
        """Every listing, by ``listed_at`` then id."""
        return iter(sorted((e.view() for e in self._entries.values()), key=_view_order))

    def pending_count(self) -> int:
        """Records held because the listing they refer to has not arrived."""
        return sum(len(waiting) for waiting in self._pending.values())

    def snapshot(self) -> dict[str, object]:
        """A plain, order-free picture of the whole state, for comparisons in tests."""
        listings = {
            e.listing_id: (
                e.step.name,
                e.step_key[2],
                tuple(
                    sorted(
                        (p, m.value, other, v.action.name, v.effective_at.isoformat(), v.record_id)
                        for (p, m, other), v in e.sanctions.items()
                    )
                ),
            )
            for e in self._entries.values()
        }
        pending = sorted(r for waiting in self._pending.values() for r in waiting)
        subjects = {k: tuple(sorted(ids)) for k, ids in self._by_subject.items()}
        return {
            "seen": tuple(sorted(self._seen)),
            "listings": listings,
            "subjects": subjects,
            "pending": tuple(pending),
        }


class MemberDirectory:
    """The newest member record per member id: who may sign, with which keys."""

    def __init__(self) -> None:
        self._best: dict[str, tuple[datetime, str, MemberRecord]] = {}

    def apply(self, record_id: str, record: MemberRecord) -> None:
        """Keep the record with the greatest ``(issued_at, record_id)`` per member."""
        current = self._best.get(record.member_id)
        if current is None or (record.issued_at, record_id) > current[:2]:
            self._best[record.member_id] = (record.issued_at, record_id, record)

    def get(self, member_id: str | MemberId) -> MemberRecord | None:
        best = self._best.get(str(member_id))
        return None if best is None else best[2]

    def keys_valid_at(self, member_id: str | MemberId, at: datetime) -> list[bytes]:
        """Raw public keys the member may sign with at ``at``; none when suspended."""
        record = self.get(member_id)
        if record is None or record.status is not MemberStatus.ACTIVE:
            return []
        return [k.public_key for k in record.keys if k.valid_at(at)]

    def members(self) -> Iterator[MemberRecord]:
        """Current member records, by member id."""
        return iter(self._best[m][2] for m in sorted(self._best))
