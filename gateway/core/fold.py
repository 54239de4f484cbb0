"""The deterministic fold from a set of verified records to list state.

Two gateways that hold the same records must answer the same, whatever order the
records arrived in (federation relays them in any order, and duplicates). So every
rule here is a function of a set, never "the last one applied": a listing's state is
``gateway.core.lifecycle.derive`` over the set of its status changes (identification,
disputes, the deadline in force, escalations in effect, closing), and each sanction is
the confirmation with the greatest ``(effective_at, action, record_id)``. Records that
refer to a listing not seen yet wait, and count once it arrives.

The fold does not authorize: it trusts that every record it is given was verified and
allowed (``gateway.core.policy``) before it got here.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from gateway.core.identifiers import MemberId
from gateway.core.lifecycle import CLOSING_STEPS, Lifecycle, StepRecord, derive
from gateway.core.statements import (
    Erasure,
    LifecycleStep,
    Listing,
    MemberRecord,
    MemberStatus,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    StatusChange,
    without_disclosures,
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

# The order in which steps show, lowest first (``gateway.core.lifecycle`` decides which
# steps are in effect: an open dispute, an escalation not rescinded). WITHDRAWN (void
# from the start) outranks REMOVED, which outranks everything else: a removal is final.
STEP_PRECEDENCE: Mapping[LifecycleStep, int] = MappingProxyType(
    {
        LifecycleStep.LISTED: 0,
        LifecycleStep.IDENTIFIED: 1,
        LifecycleStep.UPHELD: 2,
        LifecycleStep.NOTICE_SERVED: 3,
        LifecycleStep.COMMITMENT_SIGNED: 4,
        LifecycleStep.DISPUTED: 5,
        LifecycleStep.ESCALATED: 6,
        LifecycleStep.RETIRED: 7,
        LifecycleStep.CORRECTED: 8,
        LifecycleStep.REMOVED: 9,
        LifecycleStep.WITHDRAWN: 10,
    }
)

# (platform member id, measure, measure_other)
SanctionKey = tuple[str, SanctionMeasure, str]


# The rules as functions, so a stored projection (gateway.service) applies exactly these.


def stronger_step(a: LifecycleStep, b: LifecycleStep) -> LifecycleStep:
    """The step of higher precedence in ``STEP_PRECEDENCE``."""
    return a if STEP_PRECEDENCE[a] >= STEP_PRECEDENCE[b] else b


def in_force_step(step: LifecycleStep) -> bool:
    """A listing is in force until it is corrected, removed or withdrawn."""
    return step not in CLOSING_STEPS


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

    ``lifecycle`` is its due-process state (``gateway.core.lifecycle``); ``step``,
    ``step_record_id`` and ``step_at`` name the status change shown (for LISTED, the
    listing's own id and ``listed_at``).
    """

    listing_id: str
    listing: Listing
    lifecycle: Lifecycle
    sanctions: Mapping[SanctionKey, SanctionView]
    # Platform -> its NOT_APPLICABLE answer (the greatest (effective_at, record_id)).
    not_applicable: Mapping[str, SanctionView] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def step(self) -> LifecycleStep:
        return self.lifecycle.step

    @property
    def step_record_id(self) -> str:
        return self.lifecycle.step_record_id

    @property
    def step_at(self) -> datetime:
        return self.lifecycle.step_at

    @property
    def deadline(self) -> datetime | None:
        """The correction deadline in force (None: reported, or a dispute is open)."""
        return self.lifecycle.deadline

    @property
    def in_force(self) -> bool:
        return self.lifecycle.in_force

    def overdue(self, at: datetime) -> bool:
        return self.lifecycle.overdue(at)


@dataclass(slots=True)
class _Entry:
    listing_id: str
    listing: Listing
    steps: dict[str, StepRecord] = field(default_factory=dict)
    sanctions: dict[SanctionKey, SanctionView] = field(default_factory=dict)
    not_applicable: dict[str, SanctionView] = field(default_factory=dict)

    def fold(self, rec: VerifiedRecord) -> None:
        stmt = rec.statement
        if isinstance(stmt, StatusChange):
            self.steps[rec.record_id] = StepRecord(rec.record_id, stmt.step, stmt.effective_at)
        elif isinstance(stmt, SanctionConfirmation):
            new = SanctionView(stmt.action, stmt.effective_at, rec.record_id)
            if stmt.measure is None:  # NOT_APPLICABLE: an answer per platform
                answer = self.not_applicable.get(stmt.issuer)
                if answer is None or _sanction_order(new) > _sanction_order(answer):
                    self.not_applicable[stmt.issuer] = new
                return
            skey: SanctionKey = (stmt.issuer, stmt.measure, stmt.measure_other)
            old = self.sanctions.get(skey)
            if old is None or sanction_wins(_sanction_order(new), _sanction_order(old)):
                self.sanctions[skey] = new

    def lifecycle(self) -> Lifecycle:
        return derive(self.listing_id, self.listing, self.steps.values())

    def view(self) -> ListingView:
        return ListingView(
            listing_id=self.listing_id,
            listing=self.listing,
            lifecycle=self.lifecycle(),
            sanctions=MappingProxyType(dict(self.sanctions)),
            not_applicable=MappingProxyType(dict(self.not_applicable)),
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
        self._erased: set[str] = set()  # record ids an erasure named
        self._pending: dict[str, dict[str, VerifiedRecord]] = {}

    def apply(self, rec: VerifiedRecord) -> None:
        """Fold one record in; a record id seen before is ignored."""
        if rec.record_id in self._seen:
            return
        self._seen.add(rec.record_id)
        stmt = rec.statement
        if isinstance(stmt, Erasure):
            for record_id in stmt.record_ids:
                self._erased.add(record_id)
                self._redact(record_id)
            return
        if isinstance(stmt, Listing):
            if rec.record_id in self._erased:  # the erasure came first: same outcome
                stmt = without_disclosures(stmt)
            entry = _Entry(listing_id=rec.record_id, listing=stmt)
            self._entries[rec.record_id] = entry
            if stmt.subject is not None:  # a redacted (erased) listing is found by no key
                self._by_subject.setdefault(stmt.subject.key, set()).add(rec.record_id)
            for waiting in self._pending.pop(rec.record_id, {}).values():
                entry.fold(waiting)
        elif isinstance(stmt, StatusChange | SanctionConfirmation):
            target = self._entries.get(stmt.listing_id)
            if target is None:
                self._pending.setdefault(stmt.listing_id, {})[rec.record_id] = rec
            else:
                target.fold(rec)

    def _redact(self, listing_id: str) -> None:
        """An erased listing keeps its lifecycle and sanctions, not its subject or text."""
        entry = self._entries.get(listing_id)
        if entry is None or entry.listing.redacted:
            return
        subject = entry.listing.subject
        if subject is not None:
            self._by_subject.get(subject.key, set()).discard(listing_id)
        entry.listing = without_disclosures(entry.listing)

    def listing(self, listing_id: str) -> ListingView | None:
        entry = self._entries.get(listing_id)
        return None if entry is None else entry.view()

    def by_subject(self, subject_key: str) -> list[ListingView]:
        """All listings of a subject (in force or not), by ``listed_at`` then id."""
        ids = self._by_subject.get(subject_key, set())
        return sorted((self._entries[i].view() for i in ids), key=_view_order)

    def is_listed(self, subject_key: str) -> bool:
        """True when any listing of the subject is in force."""
        ids = self._by_subject.get(subject_key, ())
        return any(self._entries[i].lifecycle().in_force for i in ids)

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
                e.lifecycle(),
                tuple(
                    sorted(
                        (p, m.value, other, v.action.name, v.effective_at.isoformat(), v.record_id)
                        for (p, m, other), v in e.sanctions.items()
                    )
                ),
                tuple(
                    sorted(
                        (p, v.effective_at.isoformat(), v.record_id)
                        for p, v in e.not_applicable.items()
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
    """Member records folded: who may sign, with which keys, at a given time.

    Two rules, each a minimum or maximum over the set of member records, so every
    gateway holding the same records decides the same whatever their arrival order:

    - **Current record.** Per member id, the record with the greatest
      ``(issued_at, record_id)`` among those with ``issued_at <= at``: a record takes
      effect at its ``issued_at``, so one dated in the future changes nothing before
      its time (``at=None``: the greatest of all).
    - **Key ownership.** A public key belongs to one member: the member of the record
      with the smallest ``(issued_at, record_id)`` among *all* member records that list
      it. A key configured as a gateway's trust anchor belongs to that gateway whatever
      the records say. A key is valid for its owner only.
    """

    def __init__(self, anchors: Mapping[bytes, str] | None = None) -> None:
        """``anchors``: raw public key -> the configured gateway it belongs to."""
        self._anchors = dict(anchors or {})
        # member id -> its records as (issued_at, record_id, record), sorted
        self._records: dict[str, list[tuple[datetime, str, MemberRecord]]] = {}
        self._seen: set[str] = set()
        # raw public key -> (issued_at, record_id, member id) of its earliest claim
        self._claims: dict[bytes, tuple[datetime, str, str]] = {}

    def apply(self, record_id: str, record: MemberRecord) -> None:
        """Fold one member record in; a record id seen before is ignored."""
        if record_id in self._seen:
            return
        self._seen.add(record_id)
        insort(
            self._records.setdefault(record.member_id, []), (record.issued_at, record_id, record)
        )
        claim = (record.issued_at, record_id, record.member_id)
        for key in record.keys:
            current = self._claims.get(key.public_key)
            if current is None or claim < current:
                self._claims[key.public_key] = claim

    def get(self, member_id: str | MemberId, at: datetime | None = None) -> MemberRecord | None:
        """The member's current record at ``at`` (``None``: its newest record)."""
        versions = self._records.get(str(member_id))
        if not versions:
            return None
        if at is None:
            return versions[-1][2]
        for issued_at, _, record in reversed(versions):
            if issued_at <= at:
                return record
        return None

    def owner(self, public_key: bytes) -> str | None:
        """The member a raw public key belongs to (None: no record lists it)."""
        anchor = self._anchors.get(public_key)
        if anchor is not None:
            return anchor
        claim = self._claims.get(public_key)
        return None if claim is None else claim[2]

    def keys_valid_at(self, member_id: str | MemberId, at: datetime) -> list[bytes]:
        """Raw public keys the member may sign with at ``at``: those of its current
        record, valid at ``at`` and owned by it; none when it is suspended."""
        record = self.get(member_id, at)
        if record is None or record.status is not MemberStatus.ACTIVE:
            return []
        member = str(member_id)
        return [
            k.public_key
            for k in record.keys
            if k.valid_at(at) and self.owner(k.public_key) == member
        ]

    def keys_ever(
        self, member_id: str | MemberId, extra: Iterable[tuple[str, MemberRecord]] = ()
    ) -> list[bytes]:
        """Raw public keys listed in any record of the member and owned by it, as if the
        ``extra`` records were folded in too (replication: records of the same batch)."""
        member = str(member_id)
        extra = [(rid, r) for rid, r in extra if rid not in self._seen]
        extra_claims: dict[bytes, tuple[datetime, str, str]] = {}
        for record_id, record in extra:
            claim = (record.issued_at, record_id, record.member_id)
            for key in record.keys:
                current = extra_claims.get(key.public_key)
                if current is None or claim < current:
                    extra_claims[key.public_key] = claim
        listed = [k.public_key for _, _, r in self._records.get(member, ()) for k in r.keys]
        listed += [k.public_key for _, r in extra if r.member_id == member for k in r.keys]
        owned: list[bytes] = []
        for raw in dict.fromkeys(listed):
            anchor = self._anchors.get(raw)
            if anchor is not None:
                if anchor == member:
                    owned.append(raw)
                continue
            claims = [c for c in (self._claims.get(raw), extra_claims.get(raw)) if c is not None]
            if min(claims)[2] == member:
                owned.append(raw)
        return owned

    def members(self, at: datetime | None = None) -> Iterator[MemberRecord]:
        """Current member records at ``at`` (``None``: the newest of each), by member id."""
        for member_id in sorted(self._records):
            record = self.get(member_id, at)
            if record is not None:
                yield record
