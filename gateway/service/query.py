"""Lookups over the stored projections: check subjects, list listings, read records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.core.statements import SanctionAction, Subject
from gateway.errors import NotFoundError
from gateway.service.ledger import Clock, utc_now
from gateway.service.paging import decode_token, encode_token
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


class QueryService:
    def __init__(self, store: SqlStore, *, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def record(self, record_id: str) -> StoredRecord:
        stored = self._store.record_by_id(record_id)
        if stored is None:
            raise NotFoundError(f"record_id: no record {record_id}", reason="unknown-record")
        return stored

    def check(self, subjects: Sequence[Subject]) -> list[SubjectState]:
        """The state of each subject, in order."""
        now = self._clock()
        keys = [s.key for s in subjects]
        by_key = {
            key: SubjectState(
                listed=any([r.in_force for r in rows]),
                listings=tuple([_state(r, r.payload, r.sanctions, now) for r in rows]),
            )
            for key, rows in self._store.listings_for_subjects(sorted(set(keys))).items()
        }
        return [by_key.get(k, _UNLISTED) for k in keys]

    def list_listings(
        self, f: ListingFilter, *, page_size: int, page_token: str
    ) -> tuple[list[ListingState], str]:
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
        return self._states(rows, now), token

    def _states(self, rows: Sequence[ListingProjection], now: datetime) -> list[ListingState]:
        if not rows:
            return []
        ids = [r.listing_id for r in rows]
        sanctions = self._store.sanctions_for(ids)
        payloads = self._store.payloads_by_ids(ids)
        return [
            _state(row, payloads.get(row.listing_id), sanctions.get(row.listing_id, ()), now)
            for row in rows
        ]


_NOT_APPLICABLE = int(SanctionAction.NOT_APPLICABLE)


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
