"""Audit use cases: serve checkpoints with their cosignatures, proofs and entries."""

from __future__ import annotations

from datetime import timedelta

from gateway.core import merkle
from gateway.core.crypto import VerifyingKey
from gateway.core.intake import DEFAULT_CLOCK_SKEW
from gateway.core.notes import Checkpoint, CosignatureVerifier, verify_cosignature
from gateway.errors import NotFoundError, RecordError, VerificationError
from gateway.service.directory import Directory
from gateway.service.ledger import Clock, utc_now
from gateway.storage import SqlStore, StoredCheckpoint, StoredRecord

MAX_ENTRIES_PER_CALL = 100_000


class AuditService:
    def __init__(
        self,
        store: SqlStore,
        directory: Directory,
        *,
        clock: Clock = utc_now,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    ) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._clock_skew = clock_skew

    def latest(self) -> StoredCheckpoint:
        latest = self._store.latest_checkpoint()
        if latest is None:
            raise NotFoundError("the log has not signed a checkpoint yet; retry in a second")
        return latest

    def checkpoint_note(self) -> str:
        """The newest checkpoint as a signed note, with every cosignature it holds."""
        latest = self.latest()
        return latest.note + "".join(self._store.cosignatures(latest.tree_size))

    def index_of(self, record_id: str) -> int:
        record = self._store.record_by_id(record_id)
        if record is None:
            raise NotFoundError(f"record_id: no record {record_id} in this log")
        return record.log_index

    def inclusion_proof(self, index: int, tree_size: int) -> tuple[int, list[bytes]]:
        size = tree_size or self.latest().tree_size
        self._check_size(size, "tree_size")
        if index >= size:
            raise RecordError(
                f"leaf_index: {index} is not in a tree of size {size}",
                advice="ask for a tree_size covering the leaf, or wait for the next checkpoint",
            )
        return size, merkle.inclusion_proof(index, size, self._store)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        if not 0 < first <= second:
            raise RecordError(
                f"first_size, second_size: need 0 < first <= second, got {first}, {second}"
            )
        self._check_size(second, "second_size")
        return merkle.consistency_proof(first, second, self._store)

    def entry_range(self, start: int, end: int) -> tuple[int, int]:
        end = end or self.latest().tree_size
        self._check_size(end, "end")
        if start > end:
            raise RecordError(f"start: {start} is past end {end}")
        if end - start > MAX_ENTRIES_PER_CALL:
            raise RecordError(f"end: at most {MAX_ENTRIES_PER_CALL} entries a call")
        return start, end

    def entries(self, start: int, end: int, *, limit: int) -> list[StoredRecord]:
        return self._store.records_range(start, end, limit=limit)

    def add_cosignature(self, cosigner: str, checkpoint_body: str, line: str) -> None:
        """Keep a member's cosignature on one of our checkpoints, once verified.

        The cosigner's name in the signature line is its member id, and the key is one
        registered for it (a peer gateway's configured key, or a monitor's member key).
        """
        cp = Checkpoint.parse(checkpoint_body)
        stored = self._store.checkpoint_at(cp.size)
        if stored is None or not stored.note.startswith(checkpoint_body):
            raise NotFoundError(
                f"checkpoint: this log signed no checkpoint {cp.size} with that body"
            )
        errors: list[str] = []
        for key in self._directory.keys_at(cosigner, self._clock()):
            try:
                timestamp = verify_cosignature(
                    line,
                    checkpoint_body,
                    CosignatureVerifier(cosigner, VerifyingKey.from_raw(key.raw)),
                )
            except VerificationError as e:
                errors.append(str(e))
                continue
            self._check_time(timestamp, stored)
            held = self._store.put_cosignature(
                cp.size, cosigner, line if line.endswith("\n") else line + "\n", timestamp
            )
            if held != timestamp:
                raise RecordError(
                    f"signature_line: timestamp {timestamp} is older than the cosignature "
                    f"of checkpoint {cp.size} already held from {cosigner} ({held}); "
                    "cosignature times never move backwards",
                    advice="cosign with the current time",
                )
            return
        raise VerificationError(
            f"signature_line: no key registered for {cosigner} verifies it"
            + (f" ({errors[-1]})" if errors else ""),
            advice="cosign with the Ed25519 key of your member record, named by your member id",
        )

    def _check_time(self, timestamp: int, checkpoint: StoredCheckpoint) -> None:
        """A cosignature is made after the checkpoint was signed and not in the future:
        ``[signed_at - skew, now + skew]`` (POSIX seconds)."""
        skew = self._clock_skew.total_seconds()
        latest = self._clock().timestamp() + skew
        earliest = checkpoint.signed_at.timestamp() - skew
        if timestamp > latest:
            raise RecordError(
                f"signature_line: timestamp {timestamp} is in the future (the gateway's "
                f"clock reads {int(latest - skew)}, allowed skew {skew:g} s)",
                advice="cosign with the current time; check the cosigner's clock",
            )
        if timestamp < earliest:
            raise RecordError(
                f"signature_line: timestamp {timestamp} is before checkpoint "
                f"{checkpoint.tree_size} was signed ({int(earliest + skew)})",
                advice="cosign with the current time; check the cosigner's clock",
            )

    def _check_size(self, size: int, field: str) -> None:
        current = self._store.log_size()
        if size > current:
            raise RecordError(f"{field}: {size} is larger than the log ({current} entries)")
