"""Lookups over the stored projections: check subjects, list listings, read records."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.codec import decode_statement
from gateway.core.statements import PAYLOAD_TYPES, Listing, Subject
from gateway.errors import NotFoundError
from gateway.service.ledger import Clock, utc_now
from gateway.service.paging import decode_token, encode_token
from gateway.storage import (
    ListingFilter,
    ListingProjection,
    SanctionProjection,
    SqlStore,
    StoredRecord,
)

MAX_PAGE = 1000
DEFAULT_PAGE = 100


@dataclass(frozen=True)
class ListingState:
    projection: ListingProjection
    # The listing's payload exactly as stored (verified and validated when it was
    # accepted): responses carry it without parsing it into the domain and back.
    listing_payload: bytes
    sanctions: tuple[SanctionProjection, ...]
    overdue: bool

    @functools.cached_property
    def listing(self) -> Listing:
        listing = decode_statement(PAYLOAD_TYPES[Listing], self.listing_payload)
        assert isinstance(listing, Listing)
        return listing


@dataclass(frozen=True)
class SubjectState:
    subject: Subject
    listed: bool
    listings: tuple[ListingState, ...]


class QueryService:
    def __init__(self, store: SqlStore, *, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def record(self, record_id: str) -> StoredRecord:
        stored = self._store.record_by_id(record_id)
        if stored is None:
            raise NotFoundError(f"record_id: no record {record_id}")
        return stored

    def check(self, subjects: Sequence[Subject]) -> list[SubjectState]:
        now = self._clock()
        found = self._store.listings_for_subjects(sorted({s.key for s in subjects}))
        by_key: dict[str, tuple[bool, tuple[ListingState, ...]]] = {}
        for key, rows in found.items():
            listings = tuple([_state(p, payload, sanctions, now) for p, payload, sanctions in rows])
            by_key[key] = (any(st.projection.in_force for st in listings), listings)
        unlisted: tuple[bool, tuple[ListingState, ...]] = (False, ())
        return [SubjectState(s, *by_key.get(s.key, unlisted)) for s in subjects]

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


def _state(
    projection: ListingProjection,
    payload: bytes | None,
    sanctions: Sequence[SanctionProjection],
    now: datetime,
) -> ListingState:
    if payload is None:  # projections and records are written in one transaction
        raise NotFoundError(f"listing {projection.listing_id} has no record")
    return ListingState(
        projection=projection,
        listing_payload=payload,
        sanctions=tuple(sanctions),
        overdue=projection.in_force and now > projection.deadline,
    )
