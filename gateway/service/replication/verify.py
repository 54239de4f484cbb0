"""What the puller checks in what a peer sends, before any of it is stored.

Every check that decides whether a peer's data is trusted lives here (a mutation-testing
target: pyproject.toml ``[tool.mutmut]``, docs/TESTING.md); the fetching, the cursor
and the cosigning are the puller's (``gateway.service.replication.puller``).

- ``check_checkpoint``: a checkpoint's consistency proof starts at our last verified
  size, and the ``PeerLogView`` state machine (``gateway.core.federation``) accepts its
  note and proof; a fork or an inconsistent proof is kept as evidence (both signed
  notes) and ends the session;
- ``check_entry``: an entry's record id is the SHA-256 of its PAE bytes;
- ``check_entries``: the view did not refuse a run of entries (not the peer's signed
  log);
- ``Admission``: each new record of a batch proven to be the peer's signed log. A batch
  with one bad record is refused whole: nothing of it is stored.

Checks on each replicated record, in this order (signatures and authority only: the
intake rules of ``gateway.core.intake`` were the origin's to apply, under its settings,
so a record a peer accepted never stops a batch here):

1. the record id is the SHA-256 of the entry's PAE bytes;
2. the payload parses far enough to read its ``issuer``, and a signature verifies over
   the received bytes with a key of that issuer: any key its member records list and
   it owns (ours, or one earlier in the same batch), or its configured anchor key if it
   is a configured gateway. Other members' signatures beside it count for nothing;
3. the statement's field rules (each v2 proof of possession included);
4. a gateway-role signer is a configured gateway (``require_configured_gateway``); a
   member record is signed by the configured gateway of the member's own trust domain;
   ``authorize_statement`` allows the signer to sign the statement.

A member record dated in the future is stored like any other; the directory lets it
take effect at its ``issued_at`` (``gateway.core.fold.MemberDirectory``).

**Key validity for replicated records.** A replica does not re-check the key's validity
window or the member's current status: it accepts any key the signer's home gateway
listed for it (and the signer owns: one key, one member). The home gateway checked both
at the time it accepted the record (keys valid at its clock, member active), and its
signed, cosigned checkpoint commits it to that. Re-checking at the statement's own
timestamp would add nothing against a stolen old key (its holder picks the timestamp)
and would refuse honest records whose times lie outside the key's window - a listing
dated on the decision day, before the authority's key was registered, or a sanction
effective after a key rotation - and a refused record blocks replication from that peer
for good. Checking against our clock would refuse old records after a rotation.
Compromised keys are handled at the home gateway (suspend, rotate); a replica that must
not trust a peer's relays should not pull from it.

**Status changes that arrive before their listing.** Honest logs never do this (a
gateway accepts a status change only once it holds the listing, and replication keeps
each source's order), but a relay could. Such a change is authorized as far as possible
without the listing (the signer signs as itself and its role may sign status changes; a
gateway may only escalate), stored, and held by the fold's pending mechanism. When the
listing arrives, the projection finishes the check against it; a change that fails then
stays in the log but never counts (``gateway.service.projection``).

**Peers.** Every region whose records may reach this gateway must be configured as a
peer, because its gateway's key (the anchor) is what verifies its member records. A
peer with ``pull = false`` is an anchor only: we verify its region's records as they
arrive through other peers (a spoke of a hub-and-spoke federation) but never connect to
it. Records of a region that is not configured are refused.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence

from gateway.codec import decode_statement, open_payload
from gateway.core import dsse
from gateway.core.federation import (
    CheckpointDecision,
    EntriesDecision,
    Evidence,
    PeerLogView,
    authorize_without_listing,
)
from gateway.core.identifiers import MemberId
from gateway.core.policy import authorize_statement, require_configured_gateway
from gateway.core.statements import (
    AuthorityScope,
    Erasure,
    GovernmentMeasure,
    Listing,
    MemberRecord,
    SanctionConfirmation,
    Statement,
    StatusChange,
)
from gateway.errors import (
    FederationError,
    GatewayError,
    LogIntegrityError,
    PermissionError,
    RecordError,
)
from gateway.service.directory import Directory, verify_issuer
from gateway.service.erasure import authorize_held
from gateway.service.ledger import Accepted
from gateway.service.replication.peer import PeerCheckpoint, PeerEntry
from gateway.storage import SqlStore

logger = logging.getLogger(__name__)

__all__ = ["Admission", "check_checkpoint", "check_entries", "check_entry"]


# -- the peer's log ----------------------------------------------------------------------


def check_checkpoint(
    origin: str,
    view: PeerLogView,
    item: PeerCheckpoint,
    keep_evidence: Callable[[Evidence], None],
) -> CheckpointDecision:
    """The view's decision on a peer's checkpoint, once accepted; ``keep_evidence``
    stores a fork or an inconsistent proof before the session ends."""
    if item.first_size != view.known_size:
        raise FederationError(
            f"{origin}: consistency proof from size {item.first_size}, "
            f"but our last verified checkpoint is {view.known_size}"
        )
    decision = view.on_checkpoint(item.note, item.proof)
    if decision.evidence is not None:
        keep_evidence(decision.evidence)
        logger.error("peer %s: %s; evidence kept", origin, decision.reason)
        raise LogIntegrityError(f"{origin}: {decision.reason}")
    if not decision.accepted:
        raise FederationError(f"{origin}: {decision.reason}")
    return decision


def check_entry(origin: str, item: PeerEntry) -> bytes:
    """The entry's PAE bytes (its log leaf), once its record id is their SHA-256."""
    entry = item.envelope.pae()
    if dsse.record_id(item.envelope.payload_type, item.envelope.payload) != item.record_id:
        raise FederationError(
            f"{origin}: entry {item.log_index} is labelled {item.record_id}, "
            "which is not the SHA-256 of its PAE bytes",
            advice="the peer serves entries under ids they do not hash to: alert its operator",
        )
    return entry


def check_entries(origin: str, decision: EntriesDecision) -> None:
    if decision.refused:
        raise FederationError(f"{origin}: refused: {decision.reason}")


# -- the records of a verified batch -----------------------------------------------------


class Admission:
    """The checks on each new record of a batch proven to be a peer's signed log."""

    def __init__(
        self,
        origin: str,
        *,
        directory: Directory,
        store: SqlStore,
        anchors: Collection[str],
    ) -> None:
        self._origin = origin
        self._directory = directory
        self._store = store
        self._anchors = frozenset(anchors)

    def admit(self, buffer: Sequence[PeerEntry]) -> list[Accepted]:
        """Check every new record of a verified batch; any failure refuses the batch."""
        stored = self._store.known_record_ids([e.record_id for e in buffer])
        batch = _Batch()
        accepted: list[Accepted] = []
        for item in buffer:
            if item.record_id in stored or item.record_id in batch.statements:
                continue
            try:
                accepted.append(self._admit_one(item, batch))
            except GatewayError as e:
                raise self._refused(item, e) from e
        # Erasures last: one may name records anywhere in the batch, before or after it,
        # and the sequencer erases them when the batch lands; each is authorized for
        # every one of them as for the records already held.
        for item, signer, erasure, region, scope in batch.erasures:
            try:
                authorize_held(
                    self._store,
                    signer,
                    erasure,
                    signer_region=region,
                    signer_scope=scope,
                    require_all=False,
                    arriving=batch.statements,
                )
            except GatewayError as e:
                raise self._refused(item, e) from e
        return accepted

    def _refused(self, item: PeerEntry, e: GatewayError) -> FederationError:
        return FederationError(
            f"{self._origin}: entry {item.log_index} (record {item.record_id[:16]}…) "
            f"refused, so is its batch: {e}",
            advice="the peer serves a record this gateway does not accept; "
            "check the peer list (every region must be configured) and alert the peer",
        )

    def _admit_one(self, item: PeerEntry, batch: _Batch) -> Accepted:
        env = item.envelope
        opened = open_payload(env.payload_type, env.payload)
        # Any signature by the issuer verifies the record, with any key the issuer's
        # records list and it owns (one earlier in this batch counts): see the module
        # docstring, "Key validity for replicated records".
        signer = opened.issuer
        verify_issuer(env, signer, self._directory.keys_ever(signer, batch.member_records()))
        # A replicated record may come without its disclosures (its origin erased them);
        # those it carries must match their commitments.
        statement = opened.statement(env.disclosures)
        self._authorize(item, signer, statement, batch)
        batch.statements[item.record_id] = (env.payload_type, statement)
        if isinstance(statement, MemberRecord):
            batch.members[statement.member_id].append((item.record_id, statement))
        elif isinstance(statement, Listing):
            batch.listings[item.record_id] = statement
        return Accepted(env, item.record_id, signer, statement, self._origin)

    def _authorize(self, item: PeerEntry, signer: str, statement: Statement, batch: _Batch) -> None:
        member = MemberId.parse(signer)
        require_configured_gateway(member, self._anchors)
        if isinstance(statement, MemberRecord):
            subject = MemberId.parse(statement.member_id)
            if member.trust_domain != subject.trust_domain:
                raise PermissionError(
                    f"the member record of {statement.member_id} is signed by {signer}, "
                    f"not by the configured gateway of {subject.trust_domain}"
                )
        listing: Listing | None = None
        if isinstance(statement, StatusChange | SanctionConfirmation | GovernmentMeasure):
            listing = batch.listings.get(statement.listing_id) or self._stored_listing(
                statement.listing_id
            )
        if isinstance(statement, StatusChange) and listing is None:
            authorize_without_listing(member, statement)
            return
        record = batch.member(signer, self._directory)
        region = None if record is None else record.region_code
        scope = None if record is None else record.authority_scope
        authorize_statement(
            member, statement, listing=listing, signer_region=region, signer_scope=scope
        )
        if isinstance(statement, Erasure):
            # Against the named records once the whole batch is admitted (``admit``).
            batch.erasures.append((item, signer, statement, region, scope))

    def _stored_listing(self, listing_id: str) -> Listing | None:
        stored = self._store.record_by_id(listing_id)
        if stored is None:
            return None
        listing = decode_statement(stored.payload_type, stored.payload, stored.disclosures)
        if not isinstance(listing, Listing):
            raise RecordError(f"listing_id: record {listing_id} is not a listing")
        return listing


class _Batch:
    """What a batch has admitted so far: later entries may depend on it."""

    def __init__(self) -> None:
        self.members: dict[str, list[tuple[str, MemberRecord]]] = defaultdict(list)
        self.listings: dict[str, Listing] = {}
        # Every admitted record's payload type and statement, and the erasures to
        # authorize against them and the records held.
        self.statements: dict[str, tuple[str, Statement]] = {}
        self.erasures: list[tuple[PeerEntry, str, Erasure, str | None, AuthorityScope | None]] = []

    def member_records(self) -> list[tuple[str, MemberRecord]]:
        return [item for records in self.members.values() for item in records]

    def member(self, member_id: str, directory: Directory) -> MemberRecord | None:
        """The member's newest record of this batch, else its current one."""
        records = self.members.get(member_id)
        if records:
            return max(records, key=lambda item: (item[1].issued_at, item[0]))[1]
        return directory.member(member_id)
