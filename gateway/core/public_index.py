"""The public feed's index: the log's listings folded up to a signed checkpoint.

A pure, in-memory structure fed the log's records in index order (``apply``), up to a
tree size the log signed. It keeps what publication needs and nothing else: the
listings this alliance's authorities issued and the platforms' reports of every
alliance (an authority of this one may identify any: ``publication.may_publish``), the
status changes that close a listing (CORRECTED, REMOVED, WITHDRAWN, RETIRED: the fold
ranks them above every other step) or identify a platform's report (IDENTIFIED: only
those change what is published), the member records (the deciding body's name and key;
of another alliance, a reporting platform's and that alliance's gateway's, which the
proof of a report carries) and the alliance policies (the publication periods, the
issuing alliance's). The rule of what is shown is
``gateway.core.publication.publication``, at the time of the read.

**Time.** An entry's publication can end with no record: when the minimum period after
a correction passes, or the maximum before the RETIRED step arrives. Its change index
then stays where it was; the entry turns into an ``EXPIRED`` tombstone in place (a
mirror that already saw the removal drops the entry by then, docs/PROTOCOL.md §8.3).

**Change index.** Each listing sits at one position of the change feed: the largest of
its own log index, the log index of the record that decided its step and, for a
platform's report, that of the identification it is published by. Folding a
record in can only move a listing to that record's index (the fold's step is a maximum,
the identification a minimum, over a growing set), so a reader that has seen every
change below ``since`` misses nothing by asking for changes from ``since`` on: that is
the feed's cursor.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.core.alliance_policy import PolicyBook
from gateway.core.fold import ListingView, ListState, VerifiedRecord
from gateway.core.identifiers import MemberId, Role
from gateway.core.lifecycle import identified_when_signed
from gateway.core.periods import policy_period
from gateway.core.publication import (
    CLOSING_STEPS,
    Identification,
    Publication,
    PublicStatus,
    may_publish,
    publication,
)
from gateway.core.statements import (
    AlliancePolicy,
    Erasure,
    LifecycleStep,
    Listing,
    MemberRecord,
    StatusChange,
    without_disclosures,
)

__all__ = ["IndexedRecord", "PageEntry", "PublicIndex"]

# A page scans at most this many change positions per entry it may return (a filter
# that matches little must not make one request walk the whole index).
_SCAN_FACTOR = 20


@dataclass(frozen=True, slots=True)
class IndexedRecord:
    """A verified record of the log: its position, id, statement and signing key ids."""

    log_index: int
    record_id: str
    statement: Listing | StatusChange | MemberRecord | AlliancePolicy | Erasure
    keyids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PageEntry:
    change_index: int
    listing_index: int
    publication: Publication


class PublicIndex:
    def __init__(self, trust_domain: str) -> None:
        self.trust_domain = trust_domain
        self.size = 0
        self._state = ListState()
        self._index_of: dict[str, int] = {}
        self._keyids: dict[str, tuple[str, ...]] = {}
        self._closing: dict[str, StatusChange] = {}
        # listing id -> its IDENTIFIED steps as (effective_at, record_id, statement), sorted:
        # the first is the identification (gateway.core.lifecycle counts from it)
        self._identified: dict[str, list[tuple[datetime, str, StatusChange]]] = {}
        self._identifies: dict[str, str] = {}  # IDENTIFIED record id -> listing id
        # member id -> [(issued_at, record_id, record)], sorted
        self._members: dict[str, list[tuple[datetime, str, MemberRecord]]] = {}
        # trust domain -> [(log_index, record_id, record)] of its gateway's self-issued
        # records, in log order (the proof of another alliance's platform's report)
        self._gateways: dict[str, list[tuple[int, str, MemberRecord]]] = {}
        self._change_of: dict[str, int] = {}  # listing id -> change index
        self._at_change: dict[int, str] = {}  # change index -> listing id
        self._changes: list[int] = []  # sorted change indexes
        self._by_uscc: dict[str, set[str]] = {}
        self._names: dict[str, set[str]] = {}  # subject name -> credit codes
        self._policies = PolicyBook()  # the alliances' policies (publication periods)
        # Bumped by every member record and erasure folded in: what ``authority_record``
        # answers, or a status change's text, may have changed (readers key caches on it).
        self.generation = 0

    # -- folding -------------------------------------------------------------------------

    def apply(self, records: Sequence[IndexedRecord], size: int) -> None:
        """Fold in the records of ``[self.size, size)`` that matter here (others may be
        left out by the caller); afterwards the index stands at tree size ``size``."""
        if size < self.size:
            raise ValueError(f"the index is at {self.size}; it cannot go back to {size}")
        for rec in records:
            if not self.size <= rec.log_index < size:
                raise ValueError(f"record at {rec.log_index} is outside [{self.size}, {size})")
            self._apply(rec)
        self.size = size

    def _apply(self, rec: IndexedRecord) -> None:
        stmt = rec.statement
        if rec.record_id in self._index_of:
            return
        if isinstance(stmt, AlliancePolicy):
            self._policies.apply(rec.record_id, stmt)
            return
        if isinstance(stmt, Erasure):
            self._forget(stmt.record_ids)
            self._state.apply(VerifiedRecord(rec.record_id, "", stmt))
            self.generation += 1
            return
        if isinstance(stmt, MemberRecord):
            self._index_of[rec.record_id] = rec.log_index
            self._keyids[rec.record_id] = rec.keyids
            insort(
                self._members.setdefault(stmt.member_id, []),
                (stmt.issued_at, rec.record_id, stmt),
            )
            member = MemberId.parse(stmt.member_id)
            if member.role is Role.GATEWAY and stmt.issuer == stmt.member_id:
                insort(
                    self._gateways.setdefault(member.trust_domain, []),
                    (rec.log_index, rec.record_id, stmt),
                )
            self.generation += 1
            return
        if isinstance(stmt, Listing):
            subject = stmt.subject
            if not may_publish(stmt, self.trust_domain) or subject is None or subject.uscc is None:
                return  # never published here: not kept (publication() decides the rest)
            listing_id = rec.record_id
            self._by_uscc.setdefault(subject.uscc, set()).add(listing_id)
            if subject.name:
                self._names.setdefault(subject.name, set()).add(subject.uscc)
        elif stmt.step in CLOSING_STEPS:
            listing_id = stmt.listing_id
            self._closing[rec.record_id] = stmt
        elif stmt.step is LifecycleStep.IDENTIFIED:
            listing_id = stmt.listing_id
            insort(
                self._identified.setdefault(listing_id, []),
                (stmt.effective_at, rec.record_id, stmt),
                key=lambda e: (e[0], e[1]),
            )
            self._identifies[rec.record_id] = listing_id
        else:
            return
        self._index_of[rec.record_id] = rec.log_index
        self._keyids[rec.record_id] = rec.keyids
        self._state.apply(VerifiedRecord(rec.record_id, "", stmt))
        self._reposition(listing_id)

    def _forget(self, record_ids: Sequence[str]) -> None:
        """Erased listings leave the search index (and, redacted by the fold, the feed:
        ``publication`` publishes no listing without its subject); erased status changes
        keep no text (as their leaves carry no disclosures)."""
        for record_id in record_ids:
            change = self._closing.get(record_id)
            if change is not None:
                self._closing[record_id] = without_disclosures(change)
            steps = self._identified.get(self._identifies.get(record_id, ""), [])
            for i, (at, rid, step) in enumerate(steps):
                if rid == record_id:
                    steps[i] = (at, rid, without_disclosures(step))
        for listing_id in record_ids:
            view = self._state.listing(listing_id)
            subject = None if view is None else view.listing.subject
            if subject is None or subject.uscc is None:
                continue
            ids = self._by_uscc.get(subject.uscc, set())
            ids.discard(listing_id)
            if not ids:
                self._by_uscc.pop(subject.uscc, None)
                for codes in self._names.values():
                    codes.discard(subject.uscc)

    def _reposition(self, listing_id: str) -> None:
        view = self._state.listing(listing_id)
        if view is None:
            return  # a removal waiting for its listing (the fold holds it)
        change = max(self._index_of[listing_id], self._index_of[view.step_record_id])
        ident = self._identification(view)
        if ident is not None:
            change = max(change, self._index_of[ident.record_id])
        old = self._change_of.get(listing_id)
        if old == change:
            return
        if old is not None:
            del self._at_change[old]
            self._changes.pop(bisect_left(self._changes, old))
        self._change_of[listing_id] = change
        self._at_change[change] = listing_id
        insort(self._changes, change)

    # -- reading -------------------------------------------------------------------------

    def _identification(self, view: ListingView) -> Identification | None:
        """A platform's report's first IDENTIFIED step (none for an authority's listing)."""
        steps = self._identified.get(view.listing_id)
        if not steps or identified_when_signed(view.listing):
            return None
        _, record_id, change = steps[0]
        return Identification(record_id, change)

    def _publication(self, view: ListingView, at: datetime) -> Publication | None:
        removal = self._closing.get(view.step_record_id) if view.step in CLOSING_STEPS else None
        policy = self._policies.for_listing(view.listing, at)
        return publication(
            view,
            removal=removal,
            identification=self._identification(view),
            publisher_trust_domain=self.trust_domain,
            at=at,
            period=policy_period(view.listing, policy),
        )

    def _entry(self, listing_id: str, at: datetime) -> PageEntry | None:
        view = self._state.listing(listing_id)
        if view is None:
            return None
        pub = self._publication(view, at)
        if pub is None:
            return None
        return PageEntry(self._change_of[listing_id], self._index_of[listing_id], pub)

    def page(
        self,
        since: int,
        limit: int,
        *,
        at: datetime,
        unit: str | None = None,
        in_force_only: bool = False,
    ) -> tuple[list[PageEntry], int, bool]:
        """Entries whose change index is at least ``since``, in change order: at most
        ``limit``, only of reporting unit ``unit`` when given, only those in force when
        ``in_force_only``. Returns them, the ``since`` of the next page and whether the
        index holds more past it (else the next page starts at the index's size)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        start = bisect_left(self._changes, since)
        budget = limit * _SCAN_FACTOR
        out: list[PageEntry] = []
        position = start
        while position < len(self._changes) and len(out) < limit and budget > 0:
            budget -= 1
            entry = self._entry(self._at_change[self._changes[position]], at)
            position += 1
            if entry is None:
                continue
            if unit is not None and entry.publication.unit != unit:
                continue
            if in_force_only and entry.publication.status is not PublicStatus.IN_FORCE:
                continue
            out.append(entry)
        if position < len(self._changes):
            return out, self._changes[position], True
        return out, max(since, self.size), False

    def entry(self, listing_id: str, at: datetime) -> PageEntry | None:
        """The published entry (in force or removed; not a tombstone)."""
        if listing_id not in self._change_of:
            return None
        found = self._entry(listing_id, at)
        if found is None or found.publication.status is PublicStatus.EXPIRED:
            return None
        return found

    def by_uscc(self, uscc: str, at: datetime) -> list[PageEntry]:
        """The subject's published entries (in force or removed), oldest listing first."""
        entries = (self._entry(i, at) for i in self._by_uscc.get(uscc, ()))
        found = [
            e for e in entries if e is not None and e.publication.status is not PublicStatus.EXPIRED
        ]
        return sorted(found, key=lambda e: e.listing_index)

    def search_name(self, text: str, limit: int, at: datetime) -> list[str]:
        """Credit codes of published subjects whose name contains ``text`` (at most
        ``limit``, in code order); a subject whose every publication ended is not."""
        needle = text.casefold()
        codes = {c for name, cs in self._names.items() if needle in name.casefold() for c in cs}
        out: list[str] = []
        for code in sorted(codes):
            if len(out) >= limit:
                break
            if self.by_uscc(code, at):
                out.append(code)
        return out

    def name_of(self, uscc: str) -> str:
        names = [n for n, cs in self._names.items() if uscc in cs]
        return min(names) if names else ""

    def log_index(self, record_id: str) -> int | None:
        return self._index_of.get(record_id)

    def keyids(self, record_id: str) -> tuple[str, ...]:
        return self._keyids.get(record_id, ())

    def authority_record(self, listing_id: str) -> tuple[str, MemberRecord] | None:
        """The member record of the listing's deciding authority: its issuer, or the
        authority that identified a platform's report (``None`` while it is reported)."""
        view = self._state.listing(listing_id)
        if view is None:
            return None
        ident = self._identification(view)
        if ident is not None:
            return self._member_record(ident.change.issuer, ident.record_id)
        if not identified_when_signed(view.listing):
            return None
        return self._member_record(view.listing.issuer, listing_id)

    def reporter_record(self, listing_id: str) -> tuple[str, MemberRecord] | None:
        """The member record of the platform that issued a report (``None`` for an
        authority's listing)."""
        view = self._state.listing(listing_id)
        if view is None or identified_when_signed(view.listing):
            return None
        return self._member_record(view.listing.issuer, listing_id)

    def own_member(self, member_id: str) -> bool:
        """Whether ``member_id`` is of this index's alliance (its records signed by the
        log's key)."""
        return MemberId.parse(member_id).trust_domain == self.trust_domain

    def reporter_gateway_record(
        self, listing_id: str, size: int
    ) -> tuple[str, MemberRecord] | None:
        """For a report of a platform of another alliance: that alliance's gateway's own
        (self-issued) record, which vouches for the platform's record (docs/PROTOCOL.md
        §8.4): of those below tree size ``size``, the newest in the log listing a key
        whose id a signature on the platform's record names, else the newest. ``None``
        for an authority's listing, a report of this alliance's platform, or when no
        such record is below ``size``."""
        view = self._state.listing(listing_id)
        if view is None or identified_when_signed(view.listing):
            return None
        domain = MemberId.parse(view.listing.issuer).trust_domain
        if domain == self.trust_domain:
            return None
        reporter = self._member_record(view.listing.issuer, listing_id)
        signed = reporter[0] if reporter is not None else ""
        return self._vouching([v for v in self._gateways.get(domain, []) if v[0] < size], signed)

    def remover_record(self, listing_id: str) -> tuple[str, MemberRecord] | None:
        """The member record of the authority that signed the closing change, when that
        is neither the listing's issuer nor its deciding authority (else ``None``)."""
        view = self._state.listing(listing_id)
        if view is None or view.step not in CLOSING_STEPS:
            return None
        change = self._closing.get(view.step_record_id)
        if change is None:
            return None
        ident = self._identification(view)
        deciding = ident.change.issuer if ident is not None else view.listing.issuer
        if change.issuer in (view.listing.issuer, deciding):
            return None
        if MemberId.parse(change.issuer).role is not Role.AUTHORITY:
            return None  # the gateway: its own key
        return self._member_record(change.issuer, view.step_record_id)

    def _member_record(self, member_id: str, signed: str) -> tuple[str, MemberRecord] | None:
        """The record of ``member_id`` that vouches for the signature on record ``signed``."""
        return self._vouching(self._members.get(member_id, []), signed)

    def _vouching(
        self, versions: Sequence[tuple[object, str, MemberRecord]], signed: str
    ) -> tuple[str, MemberRecord] | None:
        """Of ``versions`` (oldest first), the newest that lists a key whose id the
        signatures on record ``signed`` name, else the newest; None when there is none."""
        keyids = set(self._keyids.get(signed, ()))
        for _, record_id, record in reversed(versions):
            if any(hashlib.sha256(k.public_key).hexdigest() in keyids for k in record.keys):
                return record_id, record
        return (versions[-1][1], versions[-1][2]) if versions else None

    def __len__(self) -> int:
        return len(self._changes)
