"""Erasure records: what they name, who may sign them (issue 18, protocol revision 4).

An erasure names records whose disclosures every gateway holding them deletes. Where a
member submits one, every named record must be a redactable record this gateway holds,
and the signer must be allowed to erase each (``gateway.core.policy.authorize_erasure``).
A replica checks the named records it holds, and those arriving in the same batch, and
erases only those; the rest it does not hold (their origin erased them before serving
them, or they never reach it).
The deletion itself runs in the sequencer's transaction (``gateway.service.projection``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.codec import decode_statement
from gateway.core.identifiers import MemberId
from gateway.core.policy import authorize_erasure
from gateway.core.statements import (
    REDACTABLE_TYPES,
    AuthorityScope,
    Erasure,
    Listing,
    Statement,
)
from gateway.errors import NotFoundError, RecordError
from gateway.storage import SqlStore

__all__ = ["authorize_held", "named_records"]

_NONE: Mapping[str, tuple[str, Statement]] = MappingProxyType({})


def named_records(
    store: SqlStore,
    erasure: Erasure,
    *,
    require_all: bool,
    arriving: Mapping[str, tuple[str, Statement]] = _NONE,
) -> dict[str, tuple[Statement, Listing | None]]:
    """The named records this gateway holds, each with the listing it belongs to;
    ``arriving``: records of the same replicated batch, not stored yet (``record_id ->
    (payload_type, statement)``), which the erasure reaches all the same.

    ``require_all`` (a submission): a named record not held is ``NotFoundError``, one
    of a clear-text (v1) type ``RecordError``. Otherwise (replication) both are left
    out."""
    records = store.records_by_ids(list(erasure.record_ids))
    if require_all:
        for record_id in erasure.record_ids:
            if record_id not in records:
                raise NotFoundError(
                    f"erasure.record_ids: no record {record_id} is known to this gateway",
                    reason="unknown-record",
                )
    named: dict[str, tuple[Statement, Listing | None]] = {}
    parents: dict[str, str] = {}
    for record_id in erasure.record_ids:  # distinct (Erasure checks)
        held = records.get(record_id)
        if held is not None:
            payload_type = held.payload_type
        elif record_id in arriving:
            payload_type = arriving[record_id][0]
        else:
            continue
        if payload_type not in REDACTABLE_TYPES:
            if require_all:
                raise RecordError(
                    f"erasure.record_ids: record {record_id} is {payload_type}, which "
                    "signs its values in the clear: only redactable records can be erased",
                    reason="not-erasable",
                )
            continue
        stmt = (
            arriving[record_id][1]
            if held is None
            else decode_statement(held.payload_type, held.payload, held.disclosures)
        )
        if isinstance(stmt, Listing):
            named[record_id] = (stmt, stmt)
        else:
            named[record_id] = (stmt, None)
            parent = getattr(stmt, "listing_id", None)
            if isinstance(parent, str):
                parents[record_id] = parent
    parent_ids = set(parents.values())
    wanted = sorted(parent_ids - set(named) - set(arriving))
    listings: dict[str, Statement] = {
        rid: decode_statement(r.payload_type, r.payload, r.disclosures)
        for rid, r in store.records_by_ids(wanted).items()
    }
    listings.update((rid, arriving[rid][1]) for rid in parent_ids & set(arriving))
    for record_id, parent in parents.items():
        listing = named[parent][0] if parent in named else listings.get(parent)
        if isinstance(listing, Listing):
            named[record_id] = (named[record_id][0], listing)
    return named


def _require_closed(store: SqlStore, listing_ids: set[str]) -> None:
    """A listing in force is still being sanctioned: platforms find its subject by its
    disclosures. It is closed first (CORRECTED, REMOVED, WITHDRAWN or RETIRED), then its
    records are erased; so the obligations it gave rise to, and every count of them,
    never change with an erasure."""
    for listing_id in sorted(listing_ids):
        projection = store.listing(listing_id)
        if projection is not None and projection.in_force:
            raise RecordError(
                f"erasure.record_ids: listing {listing_id} is in force: its records are erased "
                "once it is closed",
                advice="correct, remove or withdraw the listing first, then erase its records",
                reason="listing-in-force",
            )


def authorize_held(
    store: SqlStore,
    signer: str,
    erasure: Erasure,
    *,
    signer_region: str | None,
    signer_scope: AuthorityScope | None,
    require_all: bool,
    arriving: Mapping[str, tuple[str, Statement]] = _NONE,
) -> tuple[str, ...]:
    """Authorize ``erasure`` against the named records held here and those ``arriving``
    in the same replicated batch (which the sequencer erases when both land together);
    return their ids."""
    named = named_records(store, erasure, require_all=require_all, arriving=arriving)
    authorize_erasure(
        MemberId.parse(signer),
        erasure,
        named,
        signer_region=signer_region,
        signer_scope=signer_scope,
    )
    if require_all:  # where a member submits it; replicas follow their origin
        _require_closed(
            store,
            {
                rid if isinstance(stmt, Listing) else str(getattr(stmt, "listing_id", rid))
                for rid, (stmt, _) in named.items()
            },
        )
    return tuple(rid for rid in erasure.record_ids if rid in named)
