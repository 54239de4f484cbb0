"""The sequencer: appends verified records to the Merkle log and keeps the projections
(listings, steps, sanctions, members) in step, in one transaction per batch.

A batch first takes the sequencer lock in the database (``UnitOfWork.lock_log``), so
several processes on one database never interleave appends; a process that finds the
log grew behind its back reloads its compact range (O(log n) stored nodes) first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.core import merkle
from gateway.core.dsse import Envelope
from gateway.core.notes import Checkpoint, NoteSigner, sign_note
from gateway.core.statements import AlliancePolicy, Erasure, Listing, MemberRecord, Statement
from gateway.errors import LogDamageError, LogIntegrityError
from gateway.service.projection import project_batch
from gateway.storage import SqlStore, StoredCheckpoint, StoredRecord, UnitOfWork

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Accepted:
    """A record that passed verification and authorization, ready to append."""

    envelope: Envelope
    record_id: str
    signer: str
    statement: Statement
    origin: str


@dataclass(frozen=True)
class Appended:
    record_id: str
    log_index: int
    duplicate: bool


class Ledger:
    """One log: append batches, sign checkpoints, answer size and root."""

    def __init__(
        self,
        store: SqlStore,
        *,
        on_members: Callable[[Sequence[tuple[str, MemberRecord]]], None] | None = None,
        on_resync: Callable[[], None] | None = None,
        on_policies: Callable[[Sequence[tuple[str, AlliancePolicy]]], None] | None = None,
        on_erasures: Callable[[Sequence[tuple[str, Erasure]]], None] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """The ``on_*`` callbacks see the new records of each kind after their batch
        committed (the directory, the policies, the erasure metrics)."""
        self._store = store
        self._on_policies = on_policies
        self._on_erasures = on_erasures
        self._clock = clock
        self._on_members = on_members
        self._on_resync = on_resync
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        self._range = merkle.CompactRange.from_reader(store.log_size(), store)

    @property
    def size(self) -> int:
        with self._lock:
            return self._range.size

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            return self._range.size, self._range.root()

    def wait_for_size(self, size: int, timeout_s: float) -> int:
        """Block until the log holds more than ``size`` entries or the timeout passes."""
        with self._appended:
            self._appended.wait_for(lambda: self._range.size > size, timeout=timeout_s)
            return self._range.size

    def refresh(self) -> bool:
        """Catch up with appends made by other processes; True when the log had grown."""
        with self._lock:
            size = self._store.log_size()
            if size == self._range.size:
                return False
            self._range = merkle.CompactRange.from_reader(size, self._store)
            self._appended.notify_all()
        logger.info("log grew to %s outside this process; reloaded its edge", size)
        if self._on_resync is not None:
            self._on_resync()
        return True

    def append(
        self,
        batch: Sequence[Accepted],
        *,
        in_transaction: Callable[[UnitOfWork], None] | None = None,
    ) -> list[Appended]:
        """Append the new records of ``batch`` durably; duplicates keep their index.

        ``in_transaction`` runs inside the same unit of work after the records are
        written (replication saves its cursor there), so both commit or neither does.
        """
        with self._lock:
            resynced = False
            with self._store.unit_of_work() as uow:
                size = uow.lock_log()
                rng = self._range
                if size != rng.size:
                    rng = merkle.CompactRange.from_reader(size, self._store)
                    resynced = True
                    logger.info("log grew to %s outside this process; reloaded its edge", size)
                else:
                    rng = rng.copy()
                existing = uow.existing_indexes([a.record_id for a in batch])
                results: list[Appended] = []
                fresh: list[tuple[Accepted, int]] = []
                nodes: list[tuple[tuple[int, int], bytes]] = []
                now = self._clock()
                for item in batch:
                    index = existing.get(item.record_id)
                    if index is not None:
                        results.append(Appended(item.record_id, index, duplicate=True))
                        continue
                    index = rng.size
                    # The entry is the PAE the signature was verified over.
                    nodes.extend(rng.append(merkle.leaf_hash(item.envelope.pae())))
                    existing[item.record_id] = index
                    fresh.append((item, index))
                    results.append(Appended(item.record_id, index, duplicate=False))
                uow.insert_records([_stored(a, i, now) for a, i in fresh])
                uow.insert_nodes(nodes)
                project_batch(
                    uow,
                    [(a.record_id, i, a.statement) for a, i in fresh],
                    {
                        a.record_id: b"".join(d.value for d in a.envelope.disclosures)
                        for a, _ in fresh
                        if a.envelope.disclosures and isinstance(a.statement, Listing)
                    },
                )
                uow.set_log_size(rng.size)
                if in_transaction is not None:
                    in_transaction(uow)
            self._range = rng
            self._appended.notify_all()
        if resynced and self._on_resync is not None:
            self._on_resync()
        members = [(a.record_id, a.statement) for a, _ in fresh]
        member_updates = [(r, s) for r, s in members if isinstance(s, MemberRecord)]
        if member_updates and self._on_members is not None:
            self._on_members(member_updates)
        policy_updates = [(r, s) for r, s in members if isinstance(s, AlliancePolicy)]
        if policy_updates and self._on_policies is not None:
            self._on_policies(policy_updates)
        erasures = [(r, s) for r, s in members if isinstance(s, Erasure)]
        if erasures:
            if self._on_erasures is not None:
                self._on_erasures(erasures)
            # The erased values are gone from the tables; on SQLite, from the WAL too.
            self._store.truncate_wal()
        return results

    def checkpoint(self, signer: NoteSigner, origin: str) -> StoredCheckpoint | None:
        """Sign a checkpoint for the current size if it is newer than the last one.

        Runs under the sequencer lock and computes the root from stored nodes, so a
        checkpoint always describes what is committed, whichever process signs it.
        """
        with self._lock, self._store.unit_of_work() as uow:
            size = uow.lock_log()
            last = uow.latest_checkpoint_size()
            if last is not None and last >= size:
                return None
            # Never sign over entries the log cannot serve: the new ones must all be there.
            first = last or 0
            held = uow.count_records(first, size)
            if held != size - first:
                raise LogDamageError(
                    f"only {held} of the entries [{first}, {size}) are stored: no checkpoint "
                    "is signed over entries the log cannot serve"
                )
            root = merkle.root_at(size, self._store)
            body = Checkpoint(origin=origin, size=size, root_hash=root).body()
            stored = StoredCheckpoint(
                tree_size=size,
                root_hash=root,
                note=sign_note(body, [signer]),
                signed_at=self._clock(),
            )
            uow.insert_checkpoint(stored)
        return stored

    def verify_against_checkpoint(self) -> None:
        """Start-up check: the stored log must match the newest checkpoint we signed."""
        latest = self._store.latest_checkpoint()
        if latest is None:
            return
        size = self.size
        if latest.tree_size > size:
            raise LogIntegrityError(
                f"the log holds {size} entries but checkpoint {latest.tree_size} was signed",
                advice="the database was rolled back or truncated; restore it from backup",
            )
        root = merkle.root_at(latest.tree_size, self._store)
        if root != latest.root_hash:
            raise LogIntegrityError(
                f"stored log nodes do not match the signed checkpoint at size {latest.tree_size}",
                advice="the database was modified; restore it from backup and alert the regulator",
            )


def _stored(item: Accepted, index: int, now: datetime) -> StoredRecord:
    env = item.envelope
    return StoredRecord(
        log_index=index,
        record_id=item.record_id,
        payload_type=env.payload_type,
        payload=env.payload,
        signatures=tuple((s.keyid, s.sig) for s in env.signatures),
        signer=item.signer,
        origin=item.origin,
        received_at=now,
        disclosures=env.disclosures,
    )
