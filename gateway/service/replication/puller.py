"""Pull replication between regional gateways (DESIGN.md §5).

Receiving (``PeerPuller``, one thread per peer we pull from): open the peer's
``Replicate`` stream from our cursor, feed its checkpoints and entries to the
``PeerLogView`` state machine (``gateway.core.federation``), and once a run of entries is
proven to be the peer's signed log, check every new record and append the batch with
``origin`` = the peer's log origin. The cursor (next index, verified checkpoint,
compact range) is saved in the same transaction as the records, so a crash neither
loses nor repeats entries. Records already stored (by record id) are skipped, so relays
and cycles are harmless. A batch with one bad record is refused whole: nothing of it is
stored, the session ends, and the puller retries with capped exponential backoff and
jitter (a misbehaving peer then shows as consecutive failures). Forks go to the
evidence table with both signed notes. After the entries of a checkpoint are verified,
we cosign it (C2SP tlog-cosignature, named by our gateway's member id) and hand the
cosignature to the peer (``AuditLog.AddCosignature``).

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

Serving (``ReplicationFeed``): the newest checkpoint (with its cosignatures and a
consistency proof from the caller's known size), the entries it covers from the
caller's index, then each newer checkpoint and its entries as they are signed.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from gateway.codec import decode_statement, open_payload
from gateway.core import dsse, merkle
from gateway.core.federation import (
    EntriesDecision,
    EntriesOutcome,
    PeerLogView,
    VerifiedCheckpoint,
    authorize_without_listing,
    backoff_delay,
)
from gateway.core.identifiers import MemberId
from gateway.core.notes import Checkpoint, CosignatureSigner, NoteVerifier, parse_signed_note
from gateway.core.policy import authorize_statement, require_configured_gateway
from gateway.core.statements import (
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
from gateway.service.ledger import Accepted, Clock, Ledger, utc_now
from gateway.storage import PeerCursor, SqlStore, StoredCheckpoint, StoredEvidence, StoredRecord

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointBeacon",
    "PeerCheckpoint",
    "PeerClient",
    "PeerEntry",
    "PeerItem",
    "PeerLog",
    "PeerPuller",
    "PeerStatus",
    "Replication",
    "ReplicationFeed",
    "ReplicationSettings",
    "ReplicationStream",
]


# -- what travels ------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerCheckpoint:
    """A signed checkpoint note and the consistency proof from ``first_size`` to it.

    ``size`` is what the sender says the tree size is; only the verified note counts.
    """

    note: str
    size: int
    first_size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class PeerEntry:
    log_index: int
    record_id: str
    envelope: dsse.Envelope


PeerItem = PeerCheckpoint | PeerEntry


class ReplicationStream(Protocol):
    def __iter__(self) -> Iterator[PeerItem]: ...

    def cancel(self) -> None: ...


class PeerClient(Protocol):
    """A connection to one peer gateway (``gateway.transport.peer_client``)."""

    def replicate(self, from_index: int, known_tree_size: int) -> ReplicationStream: ...

    def consistency_proof(self, first_size: int, second_size: int) -> list[bytes]: ...

    def add_cosignature(self, checkpoint_body: str, signature_line: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PeerLog:
    """A peer log we pull: whose it is and how to check its checkpoints."""

    member_id: str  # the peer gateway's member id
    origin: str
    verifier: NoteVerifier


@dataclass(frozen=True)
class ReplicationSettings:
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # Entries held before asking the peer for a prefix proof (bounds memory in catch-up).
    batch_max_entries: int = 1000


@dataclass(frozen=True)
class PeerStatus:
    peer: str
    origin: str
    next_index: int
    peer_size: int  # size of the newest verified checkpoint
    since: datetime  # when we started pulling (or first recorded this peer)
    caught_up_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str
    connected: bool = False

    @property
    def entries_behind(self) -> int:
        return max(0, self.peer_size - self.next_index)

    def seconds_behind(self, now: datetime) -> float:
        """0 while connected (or last seen) with every entry of the newest checkpoint;
        otherwise the time since our copy of the peer's log was last complete."""
        if self.entries_behind == 0 and self.consecutive_failures == 0:
            return 0.0
        return max(0.0, (now - (self.caught_up_at or self.since)).total_seconds())


# -- receiving ---------------------------------------------------------------------------


class PeerPuller:
    """Replicates one peer's log into ours, in a thread, until stopped."""

    def __init__(
        self,
        peer: PeerLog,
        connect: Callable[[], PeerClient],
        *,
        ledger: Ledger,
        directory: Directory,
        store: SqlStore,
        anchors: Collection[str],
        cosigner: CosignatureSigner,
        settings: ReplicationSettings = ReplicationSettings(),
        clock: Clock = utc_now,
    ) -> None:
        self.peer = peer
        self._connect = connect
        self._ledger = ledger
        self._directory = directory
        self._store = store
        self._anchors = frozenset(anchors)
        self._cosigner = cosigner
        self._settings = settings
        self._clock = clock
        self._stop = threading.Event()
        self._stream: ReplicationStream | None = None
        self._stream_lock = threading.Lock()
        self._cosigned = -1
        self._thread = threading.Thread(target=self._run, name=f"pull-{peer.origin}", daemon=True)
        self._view, self._status = self._load()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.cancel()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def status(self) -> PeerStatus:
        return self._status

    @property
    def view(self) -> PeerLogView:
        """The committed view (a copy)."""
        return self._view.copy()

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
                error = "the peer ended the replication stream"
            except GatewayError as e:
                error = str(e)
            except Exception as e:  # keep pulling whatever went wrong; log it fully
                logger.exception("replication from %s failed unexpectedly", self.peer.origin)
                error = f"internal error: {type(e).__name__}"
            if self._stop.is_set():
                break
            self._failed(error)
            delay = backoff_delay(
                self._status.consecutive_failures,
                initial_s=self._settings.backoff_initial_s,
                max_s=self._settings.backoff_max_s,
            )
            self._stop.wait(delay)
        self._set_status(connected=False)

    def _session(self) -> None:
        client = self._connect()
        try:
            view = self._view.copy()
            stream = client.replicate(view.next_index, view.known_size)
            with self._stream_lock:
                if self._stop.is_set():
                    stream.cancel()
                    return
                self._stream = stream
            buffer: list[PeerEntry] = []
            live = False  # after the session's first checkpoint
            for item in stream:
                if self._stop.is_set():
                    return
                if not self._status.connected:
                    self._set_status(connected=True)
                if isinstance(item, PeerCheckpoint):
                    view = self._on_checkpoint(view, item, client, live=live)
                    live = True
                else:
                    view = self._on_entry(view, item, buffer, client)
        finally:
            with self._stream_lock:
                if self._stream is not None:
                    self._stream.cancel()
                self._stream = None
            self._set_status(connected=False)
            client.close()

    def _on_checkpoint(
        self,
        view: PeerLogView,
        item: PeerCheckpoint,
        client: PeerClient,
        *,
        live: bool,
    ) -> PeerLogView:
        if item.first_size != view.known_size:
            raise FederationError(
                f"{self.peer.origin}: consistency proof from size {item.first_size}, "
                f"but our last verified checkpoint is {view.known_size}"
            )
        decision = view.on_checkpoint(item.note, item.proof)
        if decision.evidence is not None:
            ev = decision.evidence
            self._store.add_evidence(
                StoredEvidence(
                    peer=self.peer.member_id,
                    origin=ev.origin,
                    kind=ev.kind,
                    accepted_note=ev.accepted_note,
                    conflicting_note=ev.conflicting_note,
                    proof=ev.proof,
                    detail=ev.detail,
                    recorded_at=self._clock(),
                )
            )
            logger.error("peer %s: %s; evidence kept", self.peer.origin, decision.reason)
            raise LogIntegrityError(f"{self.peer.origin}: {decision.reason}")
        if not decision.accepted:
            raise FederationError(f"{self.peer.origin}: {decision.reason}")
        # Remember the newest tree at once (a rollback after a restart is caught), with
        # the entries committed so far.
        committed = PeerLogView(
            self.peer.origin,
            self.peer.verifier,
            checkpoint=decision.checkpoint,
            applied=self._view.applied,
        )
        now = self._clock()
        # Within a live session, being complete up to the previous checkpoint means we
        # were caught up until this one arrived; after a reconnect we know only now.
        caught_up = (
            now
            if committed.complete or (live and self._view.complete)
            else self._status.caught_up_at
        )
        status = replace(self._status, peer_size=committed.known_size, caught_up_at=caught_up)
        if committed.complete:
            # Nothing left to fetch: that is a success. Otherwise only progress is, so a
            # peer whose batches are refused keeps counting failures.
            status = replace(status, last_success_at=now, consecutive_failures=0, last_error="")
        self._view, self._status = committed, status
        self._store.put_peer_cursor(self._cursor(committed, status, now))
        if view.complete:
            self._cosign(view, client)
        return view

    def _on_entry(
        self,
        view: PeerLogView,
        item: PeerEntry,
        buffer: list[PeerEntry],
        client: PeerClient,
    ) -> PeerLogView:
        entry = item.envelope.pae()
        if dsse.record_id(item.envelope.payload_type, item.envelope.payload) != item.record_id:
            raise FederationError(
                f"{self.peer.origin}: entry {item.log_index} is labelled {item.record_id}, "
                "which is not the SHA-256 of its PAE bytes"
            )
        buffer.append(item)
        decision = view.on_entries([entry], start=item.log_index)
        if (
            decision.outcome is EntriesOutcome.PENDING
            and len(buffer) >= self._settings.batch_max_entries
        ):
            proof = client.consistency_proof(view.next_index, view.known_size)
            decision = view.on_entries([], proof=proof)
        self._check(decision)
        if decision.outcome is EntriesOutcome.VERIFIED:
            self._commit(view, buffer)
            buffer.clear()
            if view.complete:
                self._cosign(view, client)
        return view

    def _check(self, decision: EntriesDecision) -> None:
        if decision.refused:
            raise FederationError(f"{self.peer.origin}: refused: {decision.reason}")

    # -- committing a verified batch -----------------------------------------------------

    def _commit(self, view: PeerLogView, buffer: Sequence[PeerEntry]) -> None:
        accepted = self._admit(buffer)
        now = self._clock()
        status = replace(
            self._status,
            next_index=view.next_index,
            peer_size=view.known_size,
            last_success_at=now,
            consecutive_failures=0,
            caught_up_at=now if view.complete else self._status.caught_up_at,
            last_error="",
        )
        cursor = self._cursor(view, status, now)
        self._ledger.append(accepted, in_transaction=lambda uow: uow.put_peer_cursor(cursor))
        self._view, self._status = view.copy(), status
        if accepted:
            logger.debug(
                "replicated %s new record(s) from %s (cursor %s of %s)",
                len(accepted),
                self.peer.origin,
                view.next_index,
                view.known_size,
            )

    def _admit(self, buffer: Sequence[PeerEntry]) -> list[Accepted]:
        """Check every new record of a verified batch; any failure refuses the batch."""
        stored = self._store.known_record_ids([e.record_id for e in buffer])
        batch = _Batch()
        accepted: list[Accepted] = []
        for item in buffer:
            if item.record_id in stored or item.record_id in batch.seen:
                continue
            batch.seen.add(item.record_id)
            try:
                accepted.append(self._admit_one(item, batch))
            except GatewayError as e:
                raise FederationError(
                    f"{self.peer.origin}: entry {item.log_index} (record {item.record_id[:16]}…) "
                    f"refused, so is its batch: {e}",
                    advice="the peer serves a record this gateway does not accept; "
                    "check the peer list (every region must be configured) and alert the peer",
                ) from e
        return accepted

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
        self._authorize(signer, statement, batch)
        if isinstance(statement, MemberRecord):
            batch.members[statement.member_id].append((item.record_id, statement))
        elif isinstance(statement, Listing):
            batch.listings[item.record_id] = statement
        return Accepted(env, item.record_id, signer, statement, self.peer.origin)

    def _authorize(self, signer: str, statement: Statement, batch: _Batch) -> None:
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
            # Checked against the named records held here; one of this same batch is
            # not held yet and is erased by the projection when both land together.
            authorize_held(
                self._store,
                signer,
                statement,
                signer_region=region,
                signer_scope=scope,
                require_all=False,
            )

    def _stored_listing(self, listing_id: str) -> Listing | None:
        stored = self._store.record_by_id(listing_id)
        if stored is None:
            return None
        listing = decode_statement(stored.payload_type, stored.payload, stored.disclosures)
        if not isinstance(listing, Listing):
            raise RecordError(f"listing_id: record {listing_id} is not a listing")
        return listing

    # -- cosigning -----------------------------------------------------------------------

    def _cosign(self, view: PeerLogView, client: PeerClient) -> None:
        cp = view.checkpoint
        if cp is None or cp.size == self._cosigned:
            return
        line = self._cosigner.cosign(cp.body, int(self._clock().timestamp()))
        try:
            client.add_cosignature(cp.body, line)
        except GatewayError as e:
            logger.warning("peer %s did not take our cosignature: %s", self.peer.origin, e)
            return
        self._cosigned = cp.size

    # -- state ---------------------------------------------------------------------------

    def _load(self) -> tuple[PeerLogView, PeerStatus]:
        now = self._clock()
        fresh = PeerLogView(self.peer.origin, self.peer.verifier)
        stored = self._store.peer_cursor(self.peer.member_id)
        status = PeerStatus(
            peer=self.peer.member_id,
            origin=self.peer.origin,
            next_index=0,
            peer_size=0,
            since=now,
            caught_up_at=None,
            last_success_at=None,
            consecutive_failures=0,
            last_error="",
        )
        if stored is None:
            return fresh, status
        if stored.origin != self.peer.origin:
            logger.warning(
                "peer %s now serves log %s (was %s): replicating the new log from 0",
                self.peer.member_id,
                self.peer.origin,
                stored.origin,
            )
            return fresh, status
        checkpoint = None
        if stored.checkpoint_note is not None and stored.checkpoint_root is not None:
            text, _ = parse_signed_note(stored.checkpoint_note)
            cp = Checkpoint.parse(text)
            checkpoint = VerifiedCheckpoint(
                stored.checkpoint_size, stored.checkpoint_root, stored.checkpoint_note, cp.body()
            )
        view = PeerLogView(
            self.peer.origin,
            self.peer.verifier,
            checkpoint=checkpoint,
            applied=merkle.CompactRange(stored.next_index, stored.range_hashes),
        )
        return view, replace(
            status,
            next_index=view.next_index,
            peer_size=view.known_size,
            since=stored.updated_at,
            caught_up_at=stored.caught_up_at,
            last_success_at=stored.last_success_at,
            consecutive_failures=stored.consecutive_failures,
            last_error=stored.last_error,
        )

    def _cursor(self, view: PeerLogView, status: PeerStatus, now: datetime) -> PeerCursor:
        cp = view.checkpoint
        applied = view.applied
        return PeerCursor(
            peer=self.peer.member_id,
            origin=self.peer.origin,
            next_index=applied.size,
            range_hashes=applied.hashes,
            checkpoint_size=0 if cp is None else cp.size,
            checkpoint_root=None if cp is None else cp.root_hash,
            checkpoint_note=None if cp is None else cp.note,
            caught_up_at=status.caught_up_at,
            last_success_at=status.last_success_at,
            consecutive_failures=status.consecutive_failures,
            last_error=status.last_error[:2000],
            updated_at=now,
        )

    def _failed(self, error: str) -> None:
        failures = self._status.consecutive_failures + 1
        self._set_status(consecutive_failures=failures, last_error=error, connected=False)
        log = logger.warning if failures > 1 else logger.info
        log("replication from %s failed (%s in a row): %s", self.peer.origin, failures, error)
        try:
            self._store.put_peer_cursor(self._cursor(self._view, self._status, self._clock()))
        except GatewayError as e:
            logger.warning("cannot record the failure of %s: %s", self.peer.origin, e)

    def _set_status(self, **changes: object) -> None:
        self._status = replace(self._status, **changes)  # type: ignore[arg-type]


class _Batch:
    """What a batch has admitted so far: later entries may depend on it."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.members: dict[str, list[tuple[str, MemberRecord]]] = defaultdict(list)
        self.listings: dict[str, Listing] = {}

    def member_records(self) -> list[tuple[str, MemberRecord]]:
        return [item for records in self.members.values() for item in records]

    def member(self, member_id: str, directory: Directory) -> MemberRecord | None:
        """The member's newest record of this batch, else its current one."""
        records = self.members.get(member_id)
        if records:
            return max(records, key=lambda item: (item[1].issued_at, item[0]))[1]
        return directory.member(member_id)


class Replication:
    """Every puller of a gateway: start, stop, status."""

    def __init__(self, pullers: Sequence[PeerPuller]) -> None:
        self.pullers = tuple(pullers)

    def start(self) -> None:
        for puller in self.pullers:
            puller.start()

    def stop(self) -> None:
        for puller in self.pullers:
            puller.stop()

    def status(self) -> list[PeerStatus]:
        return [p.status() for p in self.pullers]


# -- serving -----------------------------------------------------------------------------


class CheckpointBeacon:
    """Wakes replication streams when a checkpoint may have been signed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, timeout_s: float) -> None:
        with self._cond:
            seen = self._generation
            self._cond.wait_for(lambda: self._generation != seen, timeout=timeout_s)


class ReplicationFeed:
    """The server side of Replicate, over our own log."""

    def __init__(
        self,
        store: SqlStore,
        beacon: CheckpointBeacon,
        *,
        page_entries: int = 500,
        poll_s: float = 0.5,
    ) -> None:
        self._store = store
        self._beacon = beacon
        self._page = page_entries
        self._poll_s = poll_s

    def stream(
        self, from_index: int, known_tree_size: int, active: Callable[[], bool]
    ) -> Generator[PeerCheckpoint | StoredRecord, None, None]:
        """Checkpoint, its entries from ``from_index``, then newer ones until inactive."""
        sent = self._first_checkpoint(active)
        if sent is None:
            return
        size = sent.tree_size
        if from_index > size:
            raise RecordError(
                f"from_index: {from_index} is beyond this log's checkpoint size {size}",
                advice="replicate from your cursor; it can never pass our checkpoint",
            )
        if known_tree_size > size:
            raise RecordError(
                f"known_tree_size: {known_tree_size} is larger than this log's checkpoint "
                f"size {size}",
                advice="keep your verified checkpoint as evidence: this log went backwards",
            )
        yield self._update(sent, known_tree_size)
        next_index = yield from self._entries(from_index, size)
        while active():
            self._beacon.wait(self._poll_s)
            latest = self._store.latest_checkpoint()
            if latest is None or latest.tree_size <= sent.tree_size:
                continue
            yield self._update(latest, sent.tree_size)
            sent = latest
            next_index = yield from self._entries(next_index, sent.tree_size)

    def _first_checkpoint(self, active: Callable[[], bool]) -> StoredCheckpoint | None:
        while active():
            latest = self._store.latest_checkpoint()
            if latest is not None:
                return latest
            self._beacon.wait(self._poll_s)
        return None

    def _update(self, cp: StoredCheckpoint, first_size: int) -> PeerCheckpoint:
        note = cp.note + "".join(self._store.cosignatures(cp.tree_size))
        proof = (
            merkle.consistency_proof(first_size, cp.tree_size, self._store)
            if 0 < first_size < cp.tree_size
            else []
        )
        return PeerCheckpoint(
            note=note, size=cp.tree_size, first_size=first_size, proof=tuple(proof)
        )

    def _entries(self, start: int, end: int) -> Generator[StoredRecord, None, int]:
        """Entries [start, end) in log order; returns the next index."""
        while start < end:
            records = self._store.records_range(start, end, limit=self._page)
            if not records:
                raise LogIntegrityError(f"log entry {start} is missing from storage")
            for record in records:
                if record.log_index != start:
                    raise LogIntegrityError(f"log entry {start} is missing from storage")
                yield record
                start += 1
        return start
