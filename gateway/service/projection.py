"""Keep the stored projections equal to the core fold, a batch at a time.

The rules are the fold's own (``gateway.core.fold``): a listing's state is
``gateway.core.lifecycle.derive`` over all its stored status changes, recomputed when
one arrives, and per sanction key the greatest (effective_at, action, record_id) wins,
so the projection does not depend on the order records arrive in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from gateway.codec import decode_statement
from gateway.core.fold import sanction_wins
from gateway.core.identifiers import MemberId
from gateway.core.lifecycle import Lifecycle, StepRecord, derive
from gateway.core.policy import authorize_statement
from gateway.core.statements import (
    AuthorityScope,
    Erasure,
    LifecycleStep,
    Listing,
    MemberRecord,
    SanctionConfirmation,
    Statement,
    StatusChange,
)
from gateway.errors import PermissionError
from gateway.storage import ListingProjection, SanctionProjection, UnitOfWork

logger = logging.getLogger(__name__)


def project_batch(
    uow: UnitOfWork,
    items: Sequence[tuple[str, int, Statement]],
    disclosed: Mapping[str, bytes] = MappingProxyType({}),
) -> None:
    """Project the newly appended ``(record_id, log_index, statement)`` of one batch;
    ``disclosed``: the disclosure values of its listings, kept beside them for lookups.

    Listings, the bulk of any ingest, are inserted with one statement; everything else
    goes through ``project`` in log order. A record that refers to a listing appearing
    later in the same batch waits for it exactly as if the listing were in a later batch.
    """
    listing_at = {rid: idx for rid, idx, s in items if isinstance(s, Listing)}
    uow.insert_listings(
        [_listing_projection(rid, idx, s) for rid, idx, s in items if isinstance(s, Listing)],
        disclosed,
    )
    waiting = uow.pending_listing_ids(list(listing_at))
    for record_id, log_index, statement in items:
        if isinstance(statement, Listing):
            if record_id in waiting:
                _release_pending(uow, record_id, statement)
            continue
        target = getattr(statement, "listing_id", None)
        if isinstance(target, str) and listing_at.get(target, -1) > log_index:
            uow.add_pending(record_id, target)
            waiting.add(target)
            continue
        project(uow, record_id, log_index, statement)


def project(uow: UnitOfWork, record_id: str, log_index: int, statement: Statement) -> None:
    if isinstance(statement, Listing):
        uow.insert_listings([_listing_projection(record_id, log_index, statement)])
        _release_pending(uow, record_id, statement)
    elif isinstance(statement, StatusChange):
        _status_change(uow, record_id, statement)
    elif isinstance(statement, SanctionConfirmation):
        _confirmation(uow, record_id, statement)
    elif isinstance(statement, MemberRecord):
        _member(uow, record_id, statement)
    elif isinstance(statement, Erasure):
        erased = uow.erase(record_id, statement.effective_at, statement.record_ids)
        logger.info("erasure %s: %d disclosures deleted", record_id, erased)


def _listing_projection(record_id: str, log_index: int, listing: Listing) -> ListingProjection:
    state = derive(record_id, listing, ())
    return ListingProjection(
        listing_id=record_id,
        subject_key=None if listing.subject is None else listing.subject.key,
        issuer=listing.issuer,
        list_kind=int(listing.list),
        conduct=int(listing.conduct),
        region_code=listing.region_code,
        listed_at=listing.listed_at,
        deadline=listing.deadline,
        step=int(state.step),
        in_force=True,
        log_index=log_index,
        due_at=state.deadline,
        identified_at=state.identified_at,
    )


def _release_pending(uow: UnitOfWork, record_id: str, listing: Listing) -> None:
    for waiting in uow.take_pending(record_id):
        statement = decode_statement(waiting.payload_type, waiting.payload)
        if isinstance(statement, StatusChange) and not _allowed_late(
            uow, waiting.signer, statement, listing
        ):
            continue
        project(uow, waiting.record_id, waiting.log_index, statement)


def _allowed_late(uow: UnitOfWork, signer: str, change: StatusChange, listing: Listing) -> bool:
    """Finish authorizing a status change that was replicated before its listing.

    Replication could check it only in part (``gateway.service.replication``); one that
    fails now stays in the log but never counts.
    """
    try:
        authorize_statement(
            MemberId.parse(signer),
            change,
            listing=listing,
            signer_region=uow.member_region(signer),
            signer_scope=_scope(uow.member_scope(signer)),
        )
    except PermissionError as e:
        logger.warning("status change %s does not count: %s", change.listing_id, e)
        return False
    return True


def _scope(value: int | None) -> AuthorityScope | None:
    return None if value is None else AuthorityScope(value)


def _status_change(uow: UnitOfWork, record_id: str, change: StatusChange) -> None:
    current = uow.get_listing(change.listing_id)
    if current is None:
        uow.add_pending(record_id, change.listing_id)
        return
    uow.insert_step(record_id, change.listing_id, int(change.step), change.effective_at)
    state = _lifecycle(uow, change.listing_id)
    dispute = state.open_dispute
    uow.set_listing_state(
        change.listing_id,
        step=int(state.step),
        in_force=state.in_force,
        due_at=state.deadline,
        identified_at=state.identified_at,
        dispute_since=None if dispute is None else dispute.opened_at,
        closed_at=state.closed_at,
    )


def _lifecycle(uow: UnitOfWork, listing_id: str) -> Lifecycle:
    """The listing's state from its record and every status change projected so far."""
    stored = uow.record_payload(listing_id)
    assert stored is not None  # a projected listing's record is in the same database
    listing = decode_statement(*stored)
    assert isinstance(listing, Listing)
    steps = [StepRecord(r, LifecycleStep(s), at) for r, s, at in uow.steps_of(listing_id)]
    return derive(listing_id, listing, steps)


def _confirmation(uow: UnitOfWork, record_id: str, c: SanctionConfirmation) -> None:
    if uow.get_listing(c.listing_id) is None:
        uow.add_pending(record_id, c.listing_id)
        return
    # A NOT_APPLICABLE answer has no measure: it is kept per platform as measure 0.
    measure = 0 if c.measure is None else int(c.measure)
    existing = uow.get_sanction(c.listing_id, c.issuer, measure, c.measure_other)
    candidate = SanctionProjection(
        listing_id=c.listing_id,
        platform=c.issuer,
        measure=measure,
        measure_other=c.measure_other,
        action=int(c.action),
        effective_at=c.effective_at,
        record_id=record_id,
    )
    if existing is None or sanction_wins(
        (candidate.effective_at, candidate.action, candidate.record_id),
        (existing.effective_at, existing.action, existing.record_id),
    ):
        uow.put_sanction(candidate)


def _member(uow: UnitOfWork, record_id: str, m: MemberRecord) -> None:
    current = uow.get_member_version(m.member_id)
    if current is None or (m.issued_at, record_id) > current:
        scope = m.authority_scope
        uow.put_member(
            m.member_id,
            record_id,
            m.issued_at,
            int(m.role),
            int(m.status),
            m.region_code,
            None if scope is None else int(scope),
        )
