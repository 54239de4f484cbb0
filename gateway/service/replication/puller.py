"""Pull replication between regional gateways (DESIGN.md §5): the receiving side.

``PeerPuller``, one thread per peer we pull from: open the peer's ``Replicate`` stream
from our cursor, feed its checkpoints and entries to the ``PeerLogView`` state machine
(``gateway.core.federation``), and once a run of entries is proven to be the peer's
signed log, check every new record and append the batch with ``origin`` = the peer's
log origin. The checks themselves are in ``gateway.service.replication.verify``. The
cursor (next index, verified checkpoint, compact range) is saved in the same
transaction as the records, so a crash neither loses nor repeats entries. Records
already stored (by record id) are skipped, so relays and cycles are harmless. A batch
with one bad record is refused whole: nothing of it is stored, the session ends, and
the puller retries with capped exponential backoff and jitter (a misbehaving peer then
shows as consecutive failures). Forks go to the evidence table with both signed notes.
After the entries of a checkpoint are verified, we cosign it (C2SP tlog-cosignature,
named by our gateway's member id) and hand the cosignature to the peer
(``AuditLog.AddCosignature``).

``Replication``: every puller of a gateway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime

from gateway.core import merkle
from gateway.core.federation import (
    EntriesOutcome,
    Evidence,
    PeerLogView,
    VerifiedCheckpoint,
    backoff_delay,
)
from gateway.core.notes import Checkpoint, CosignatureSigner, parse_signed_note
from gateway.errors import GatewayError
from gateway.service.directory import Directory
from gateway.service.ledger import Clock, Ledger, utc_now
from gateway.service.replication.peer import (
    PeerCheckpoint,
    PeerClient,
    PeerEntry,
    PeerLog,
    PeerStatus,
    ReplicationSettings,
    ReplicationStream,
)
from gateway.service.replication.verify import (
    Admission,
    check_checkpoint,
    check_entries,
    check_entry,
)
from gateway.storage import PeerCursor, SqlStore, StoredEvidence

logger = logging.getLogger(__name__)

__all__ = ["PeerPuller", "Replication"]

_DEFAULT_SETTINGS = ReplicationSettings()


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
        settings: ReplicationSettings = _DEFAULT_SETTINGS,
        clock: Clock = utc_now,
    ) -> None:
        self.peer = peer
        self._connect = connect
        self._ledger = ledger
        self._store = store
        self._admission = Admission(peer.origin, directory=directory, store=store, anchors=anchors)
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
                # The operator reads this in the peer status and the log: the advice says
                # what to do (check the peer list, alert the peer, keep the evidence).
                error = e.hinted
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
        decision = check_checkpoint(self.peer.origin, view, item, self._keep_evidence)
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
        entry = check_entry(self.peer.origin, item)
        buffer.append(item)
        decision = view.on_entries([entry], start=item.log_index)
        if (
            decision.outcome is EntriesOutcome.PENDING
            and len(buffer) >= self._settings.batch_max_entries
        ):
            proof = client.consistency_proof(view.next_index, view.known_size)
            decision = view.on_entries([], proof=proof)
        check_entries(self.peer.origin, decision)
        if decision.outcome is EntriesOutcome.VERIFIED:
            self._commit(view, buffer)
            buffer.clear()
            if view.complete:
                self._cosign(view, client)
        return view

    def _keep_evidence(self, ev: Evidence) -> None:
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

    # -- committing a verified batch -----------------------------------------------------

    def _commit(self, view: PeerLogView, buffer: Sequence[PeerEntry]) -> None:
        accepted = self._admission.admit(buffer)
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
