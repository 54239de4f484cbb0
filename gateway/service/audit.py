"""Audit use cases: serve checkpoints with their cosignatures, proofs and entries.

Nothing leaves unverified: a proof is checked against the root the log signed for its
tree size (or, for a size no checkpoint has, against a root that a consistency proof
ties to the next signed checkpoint) before it is served, so a damaged stored node is
answered with ``DATA_LOSS``, never with a proof that fails at the client. Entries come
from ``SqlStore``'s guarded reads (contiguous, each hashing to its record id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from gateway.core import merkle
from gateway.core.crypto import VerifyingKey
from gateway.core.intake import DEFAULT_CLOCK_SKEW
from gateway.core.notes import Checkpoint, CosignatureVerifier, verify_cosignature
from gateway.errors import (
    LogDamageError,
    LogIntegrityError,
    NotFoundError,
    RecordError,
    VerificationError,
)
from gateway.service.directory import Directory
from gateway.service.integrity import signed_root
from gateway.service.ledger import Clock, utc_now
from gateway.storage import SqlStore, StoredCheckpoint, StoredRecord

logger = logging.getLogger(__name__)

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

    def checkpoint(self, tree_size: int = 0) -> StoredCheckpoint:
        """The checkpoint the log signed for ``tree_size`` (0: the newest)."""
        newest = self.latest()
        if not tree_size or tree_size == newest.tree_size:
            return newest
        # Sizes past the newest are not looked up (nor bound as a database integer).
        stored = None if tree_size > newest.tree_size else self._store.checkpoint_at(tree_size)
        if stored is None:
            raise NotFoundError(
                f"tree_size: this log signed no checkpoint of size {tree_size} "
                f"(its newest is {newest.tree_size})",
                advice="ask for the size of a checkpoint you saw, or 0 for the newest; "
                "every checkpoint the log signed is kept as long as the log",
            )
        return stored

    def checkpoint_note(self, tree_size: int = 0) -> str:
        """A signed checkpoint (the newest for 0), with every cosignature it holds."""
        cp = self.checkpoint(tree_size)
        return cp.note + "".join(self._store.cosignatures(cp.tree_size))

    def index_of(self, record_id: str) -> int:
        record = self._store.record_by_id(record_id)
        if record is None:
            raise NotFoundError(f"record_id: no record {record_id} in this log")
        return record.log_index

    def inclusion_proof(
        self, index: int, tree_size: int, *, entry_read: bool = False
    ) -> tuple[int, list[bytes]]:
        """The verified proof of leaf ``index`` at ``tree_size`` (0: the newest
        checkpoint); ``entry_read`` when the caller already read the entry intact."""
        newest = self.latest()
        size = tree_size or newest.tree_size
        self._check_size(size, "tree_size")
        if index >= size:
            raise RecordError(
                f"leaf_index: {index} is not in a tree of size {size}",
                advice="ask for a tree_size covering the leaf, or wait for the next checkpoint",
            )
        if not entry_read:
            # A proof of an entry the log cannot serve would prove what nobody can read.
            self._store.require_entry(index)
        leaf, proof = merkle.leaf_and_inclusion_proof(index, size, self._store)
        root = self._root(size, newest)
        _verified(
            lambda: merkle.verify_inclusion(index, size, leaf, proof, root),
            f"the inclusion proof of leaf {index} in the tree of size {size}",
        )
        return size, proof

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 proof between two tree sizes; empty from size 0 (and between equal
        sizes), as C2SP tlog-witness answers: the RFC defines it for 0 < first < second."""
        if first > second:
            raise RecordError(
                f"first_size, second_size: need first <= second, got {first}, {second}"
            )
        self._check_size(second, "second_size")
        if first in (0, second):
            return []
        proof = merkle.consistency_proof(first, second, self._store)
        newest = self.latest()
        root_first, root_second = self._root(first, newest), self._root(second, newest)
        _verified(
            lambda: merkle.verify_consistency(first, second, root_first, root_second, proof),
            f"the consistency proof from {first} to {second}",
        )
        return proof

    def _root(self, size: int, newest: StoredCheckpoint) -> bytes:
        """The root of the tree of ``size`` as the log signed it; for a size no
        checkpoint has, the stored nodes' root, tied by a consistency proof to the next
        signed checkpoint (past the newest checkpoint nothing signed covers it yet)."""
        cp = newest if size == newest.tree_size else self._store.checkpoint_at(size)
        if cp is not None:
            return signed_root(cp)
        root = merkle.root_at(size, self._store)
        anchor = self._store.checkpoint_after(size)
        if anchor is not None:
            proof = merkle.consistency_proof(size, anchor.tree_size, self._store)
            anchored = signed_root(anchor)
            _verified(
                lambda: merkle.verify_consistency(size, anchor.tree_size, root, anchored, proof),
                f"the stored tree of size {size}",
            )
        return root

    def entry_range(self, start: int, end: int) -> tuple[int, int]:
        end = end or self.latest().tree_size
        self._check_size(end, "end")
        if start > end:
            raise RecordError(f"start: {start} is past end {end}")
        if end - start > MAX_ENTRIES_PER_CALL:
            raise RecordError(f"end: at most {MAX_ENTRIES_PER_CALL} entries a call")
        return start, end

    def entries(self, start: int, end: int, *, limit: int) -> list[StoredRecord]:
        """Entries ``[start, end)``, at most ``limit``: all there, each intact, or
        ``LogDamageError``."""
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


def _verified(check: Callable[[], None], what: str) -> None:
    """Run a proof verification; a failure means the stored log is damaged."""
    try:
        check()
    except LogIntegrityError as e:
        logger.error("refused to serve %s: %s", what, e)
        raise LogDamageError(
            f"{what} does not verify against the log's signed checkpoints: a stored log "
            "node is damaged"
        ) from e
