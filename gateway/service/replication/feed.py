"""Serving replication (DESIGN.md §5): ``ReplicationFeed``, the server side of
``Federation/Replicate`` over our own log (``gateway.transport.federation`` puts it on
the wire), and ``CheckpointBeacon``, which wakes its streams.

A stream sends the newest checkpoint (with its cosignatures and a consistency proof
from the caller's known size), the entries it covers from the caller's index, then each
newer checkpoint and its entries as they are signed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator

from gateway.core import merkle
from gateway.errors import LogIntegrityError, RecordError
from gateway.service.replication.peer import PeerCheckpoint
from gateway.storage import SqlStore, StoredCheckpoint, StoredRecord

__all__ = ["CheckpointBeacon", "ReplicationFeed"]


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
