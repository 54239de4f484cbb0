"""Lookups over the stored projections: check subjects, list listings, read records.

What a member sees of a listing whose publication ended (issue 18) is decided by
``gateway.core.visibility.visibility`` alone: a platform it no longer concerns gets
"not listed" and no history; one still applying a measure sees the listing with its
own sanctions only; authorities and monitors see everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.core.identifiers import MemberId
from gateway.core.periods import end_from_projection, period_of
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    LifecycleStep,
    ListKind,
    SanctionAction,
    Subject,
    add_months,
)
from gateway.core.visibility import Visibility, visibility
from gateway.errors import NotFoundError
from gateway.service.ledger import Clock, utc_now
from gateway.service.paging import decode_token, encode_token
from gateway.service.policies import Policies
from gateway.storage import (
    ListingFilter,
    ListingProjection,
    SanctionProjection,
    SqlStore,
    StoredRecord,
    SubjectListing,
)

MAX_PAGE = 1000
DEFAULT_PAGE = 100


@dataclass(frozen=True, slots=True)
class ListingState:
    listing_id: str
    # The listing's payload exactly as stored (verified and validated when it was
    # accepted): responses carry it without parsing it into the domain and back.
    listing_payload: bytes
    step: int
    deadline: datetime
    in_force: bool
    overdue: bool
    sanctions: tuple[SanctionProjection, ...]


@dataclass(frozen=True, slots=True)
class SubjectState:
    """What a check answers about one subject (subjects with one key share a state)."""

    listed: bool
    listings: tuple[ListingState, ...]


_UNLISTED = SubjectState(listed=False, listings=())


_APPLIED = int(SanctionAction.APPLIED)


class QueryService:
    def __init__(
        self, store: SqlStore, *, clock: Clock = utc_now, policies: Policies | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._policies = policies if policies is not None else Policies(clock=clock)

    def _visibility(
        self,
        viewer: MemberId | None,
        row: ListingProjection | SubjectListing,
        sanctions: Sequence[SanctionProjection],
        now: datetime,
        shortest: int,
    ) -> Visibility:
        """What ``viewer`` (None: the gateway itself) sees of ``row`` at ``now``."""
        if viewer is None:
            return Visibility.FULL
        if row.in_force and (
            row.identified_at is None or now < add_months(row.identified_at, shortest)
        ):
            return Visibility.FULL  # not closed and the maximum cannot have ended yet
        kind, conduct = ListKind(row.list_kind), ConductType(row.conduct)
        policy = self._policy(row.issuer, now)
        period = period_of(kind, conduct, () if policy is None else policy.publication_periods)
        end = end_from_projection(
            None if row.in_force else LifecycleStep(row.step),
            row.identified_at,
            row.closed_at,
            period,
        )
        applying = {s.platform for s in sanctions if s.action == _APPLIED}
        return visibility(viewer, publication_end=end, applying=applying, at=now)

    def _policy(self, issuer: str, now: datetime) -> AlliancePolicy | None:
        return self._policies.current(MemberId.parse(issuer).trust_domain, now)

    def record(self, record_id: str) -> StoredRecord:
        stored = self._store.record_by_id(record_id)
        if stored is None:
            raise NotFoundError(f"record_id: no record {record_id}", reason="unknown-record")
        return stored

    def check(
        self, subjects: Sequence[Subject], viewer: MemberId | None = None
    ) -> list[SubjectState]:
        """The state of each subject, in order, as ``viewer`` may see it (``None``: all)."""
        now = self._clock()
        keys = [s.key for s in subjects]
        shortest = self._policies.shortest_maximum(now)
        by_key: dict[str, SubjectState] = {}
        for key, rows in self._store.listings_for_subjects(sorted(set(keys))).items():
            states = []
            for r in rows:
                seen = self._visibility(viewer, r, r.sanctions, now, shortest)
                if seen is Visibility.HIDDEN:
                    continue
                states.append(_state(r, r.payload, _shown(seen, viewer, r.sanctions), now))
            if states:
                by_key[key] = SubjectState(
                    listed=any([s.in_force for s in states]), listings=tuple(states)
                )
        return [by_key.get(k, _UNLISTED) for k in keys]

    def list_listings(
        self,
        f: ListingFilter,
        *,
        page_size: int,
        page_token: str,
        viewer: MemberId | None = None,
    ) -> tuple[list[ListingState], str]:
        """A page of listings in log order; those whose publication ended for ``viewer``
        are left out, so a page may hold fewer than ``page_size`` while more follow."""
        limit = DEFAULT_PAGE if page_size == 0 else min(page_size, MAX_PAGE)
        after = decode_token("v1", page_token)
        now = self._clock()
        if f.overdue_at is not None:
            f = ListingFilter(
                list_kind=f.list_kind,
                conduct=f.conduct,
                region_prefix=f.region_prefix,
                step=f.step,
                in_force_only=f.in_force_only,
                overdue_at=now,
            )
        rows = self._store.list_listings(f, after_index=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_token("v1", rows[-1].log_index) if more else ""
        return self._states(rows, now, viewer), token

    def _states(
        self, rows: Sequence[ListingProjection], now: datetime, viewer: MemberId | None
    ) -> list[ListingState]:
        if not rows:
            return []
        ids = [r.listing_id for r in rows]
        sanctions = self._store.sanctions_for(ids)
        payloads = self._store.payloads_by_ids(ids)
        shortest = self._policies.shortest_maximum(now)
        out = []
        for row in rows:
            own = sanctions.get(row.listing_id, ())
            seen = self._visibility(viewer, row, own, now, shortest)
            if seen is not Visibility.HIDDEN:
                shown = _shown(seen, viewer, own)
                out.append(_state(row, payloads.get(row.listing_id), shown, now))
        return out


_NOT_APPLICABLE = int(SanctionAction.NOT_APPLICABLE)


def _shown(
    seen: Visibility, viewer: MemberId | None, sanctions: Sequence[SanctionProjection]
) -> Sequence[SanctionProjection]:
    """The sanctions a viewer sees: all, or (LIFT_ONLY) only its own."""
    if seen is Visibility.LIFT_ONLY and viewer is not None:
        me = str(viewer)
        return tuple(s for s in sanctions if s.platform == me)
    return sanctions


def _state(
    listing: ListingProjection | SubjectListing,
    payload: bytes | None,
    sanctions: Sequence[SanctionProjection],
    now: datetime,
) -> ListingState:
    if payload is None:  # projections and records are written in one transaction
        raise NotFoundError(f"listing {listing.listing_id} has no record")
    return ListingState(
        listing_id=listing.listing_id,
        listing_payload=payload,
        step=listing.step,
        # The deadline in force; a listing still reported, or under open dispute, shows
        # its signed deadline, which does not run (docs/PROTOCOL.md, ListingState).
        deadline=listing.deadline if listing.due_at is None else listing.due_at,
        in_force=listing.in_force,
        overdue=listing.in_force and listing.due_at is not None and now > listing.due_at,
        # NOT_APPLICABLE answers are what a platform owes (Compliance), not sanctions.
        sanctions=tuple(s for s in sanctions if s.action != _NOT_APPLICABLE),
    )
