"""Federation as a state machine with no I/O: the receiver's view of one peer's log.

A ``PeerLogView`` holds what a gateway has verified about a peer's log: the peer's
origin and checkpoint key, the newest checkpoint it accepted (size, root, the signed
note) and the compact range of the peer's tree over the entries it has applied. The
replication service feeds it what the peer sends and acts on its decisions; the view
never fetches, stores or sleeps.

Transitions:

- ``on_checkpoint(note, proof)``: the note must verify with the peer's key and name the
  peer's origin. A smaller tree than the last accepted one is a rollback (refused). The
  same size with another root is a fork, and so is a newer tree whose consistency proof
  from the last accepted one fails: both are refused and come with ``Evidence`` (the two
  signed notes and the proof) for the service to keep. A newer consistent tree, or the
  same tree again, is accepted.
- ``on_entries(entries, start=…, proof=…)``: entries (the PAE bytes, in the peer's log
  order from the cursor) extend the compact range. They may not run past the accepted
  checkpoint. Once the range reaches the checkpoint's size its root must equal the
  checkpoint's root; before that, a consistency proof from the range to the checkpoint
  shows the entries so far are a prefix of the signed tree. Either way the decision says
  ``VERIFIED``: the entries are the peer's signed log and may be stored. Without either,
  the decision is ``PENDING`` (keep them, fetch more). Anything else is ``REFUSED``.

A view is cheap to ``copy()``: the service works on a copy and keeps it only once the
records it verified are committed, so a refused or failed batch leaves no trace.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.core import merkle
from gateway.core.identifiers import MemberId
from gateway.core.notes import NoteVerifier, open_checkpoint
from gateway.core.policy import GATEWAY_STEPS, STATEMENT_SIGNERS
from gateway.core.statements import LifecycleStep, Role, StatusChange
from gateway.errors import GatewayError, LogIntegrityError, PermissionError

__all__ = [
    "CheckpointDecision",
    "CheckpointOutcome",
    "EntriesDecision",
    "EntriesOutcome",
    "Evidence",
    "PeerLogView",
    "VerifiedCheckpoint",
    "authorize_without_listing",
    "backoff_delay",
]


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    """A peer checkpoint whose signature and consistency were checked."""

    size: int
    root_hash: bytes
    # The signed note as received (the peer's signature and any cosignatures).
    note: str
    # The checkpoint text alone: what a cosignature signs.
    body: str


class CheckpointOutcome(enum.Enum):
    ACCEPTED = "accepted"  # a newer tree, consistent with the last one
    UNCHANGED = "unchanged"  # the tree accepted last time, again
    ROLLBACK = "rollback"  # a smaller tree than one already accepted: refused
    FORK = "fork"  # inconsistent with an accepted tree: refused, with evidence
    INVALID = "invalid"  # bad signature, wrong origin, malformed: refused


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two signed checkpoints of one log that cannot both be honest (and the proof)."""

    origin: str
    kind: str  # "fork" (same size, two roots) or "inconsistent" (the proof fails)
    accepted_note: str
    conflicting_note: str
    proof: tuple[bytes, ...]
    detail: str


@dataclass(frozen=True, slots=True)
class CheckpointDecision:
    outcome: CheckpointOutcome
    reason: str
    checkpoint: VerifiedCheckpoint | None = None
    evidence: Evidence | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome in (CheckpointOutcome.ACCEPTED, CheckpointOutcome.UNCHANGED)


class EntriesOutcome(enum.Enum):
    VERIFIED = "verified"  # the range is proven part of the signed tree: store
    PENDING = "pending"  # not provable yet: keep the entries, read on
    REFUSED = "refused"  # not the peer's signed log: store nothing


@dataclass(frozen=True, slots=True)
class EntriesDecision:
    outcome: EntriesOutcome
    size: int  # the range's size after the entries
    reason: str = ""

    @property
    def refused(self) -> bool:
        return self.outcome is EntriesOutcome.REFUSED


class PeerLogView:
    """What this gateway verified about one peer's log (see the module docstring)."""

    __slots__ = ("_checkpoint", "_range", "origin", "verifier")

    def __init__(
        self,
        origin: str,
        verifier: NoteVerifier,
        *,
        checkpoint: VerifiedCheckpoint | None = None,
        applied: merkle.CompactRange | None = None,
    ) -> None:
        self.origin = origin
        self.verifier = verifier
        self._checkpoint = checkpoint
        self._range = applied.copy() if applied is not None else merkle.CompactRange()
        if checkpoint is None and self._range.size:
            raise LogIntegrityError("a peer view with applied entries needs their checkpoint")
        if checkpoint is not None and self._range.size > checkpoint.size:
            raise LogIntegrityError(
                f"applied range {self._range.size} runs past checkpoint {checkpoint.size}"
            )

    # -- state ---------------------------------------------------------------------------

    @property
    def checkpoint(self) -> VerifiedCheckpoint | None:
        return self._checkpoint

    @property
    def applied(self) -> merkle.CompactRange:
        """The compact range over the entries applied (a copy)."""
        return self._range.copy()

    @property
    def next_index(self) -> int:
        """The cursor: the peer log index of the next entry to apply."""
        return self._range.size

    @property
    def known_size(self) -> int:
        """The size of the newest accepted checkpoint (0 before the first)."""
        return 0 if self._checkpoint is None else self._checkpoint.size

    @property
    def entries_behind(self) -> int:
        return self.known_size - self._range.size

    @property
    def complete(self) -> bool:
        """True when every entry of the accepted checkpoint is applied and verified."""
        return self._checkpoint is not None and self._range.size == self._checkpoint.size

    def copy(self) -> PeerLogView:
        return PeerLogView(
            self.origin, self.verifier, checkpoint=self._checkpoint, applied=self._range
        )

    # -- transitions ---------------------------------------------------------------------

    def on_checkpoint(self, note: str, proof: Sequence[bytes] = ()) -> CheckpointDecision:
        """A signed checkpoint and the consistency proof from the last accepted one."""
        try:
            cp = open_checkpoint(note, self.verifier, origin=self.origin)
        except GatewayError as e:
            return CheckpointDecision(CheckpointOutcome.INVALID, f"checkpoint refused: {e}")
        new = VerifiedCheckpoint(cp.size, cp.root_hash, note, cp.body())
        old = self._checkpoint
        proof = tuple(proof)
        if old is None:
            if proof:
                return CheckpointDecision(
                    CheckpointOutcome.INVALID,
                    "a first checkpoint comes without a consistency proof",
                )
            return self._accept(new)
        if new.size < old.size:
            return CheckpointDecision(
                CheckpointOutcome.ROLLBACK,
                f"rollback: checkpoint {new.size} is older than the accepted {old.size}",
            )
        if new.size == old.size:
            if new.root_hash != old.root_hash:
                return self._fork("fork", new, proof, f"two roots for tree size {new.size}")
            if proof:
                return CheckpointDecision(
                    CheckpointOutcome.INVALID,
                    f"a consistency proof between equal sizes {new.size} must be empty",
                )
            # The same tree: keep the newer note, it may carry more cosignatures.
            self._checkpoint = new
            return CheckpointDecision(CheckpointOutcome.UNCHANGED, "same tree", new)
        try:
            merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        except LogIntegrityError as e:
            return self._fork("inconsistent", new, proof, str(e))
        return self._accept(new)

    def on_entries(
        self,
        entries: Iterable[bytes],
        *,
        start: int | None = None,
        proof: Sequence[bytes] | None = None,
    ) -> EntriesDecision:
        """Apply entries (PAE bytes) in log order from the cursor.

        ``start`` is the peer's index of the first entry (checked against the cursor);
        ``proof`` a consistency proof from the range after the entries to the accepted
        checkpoint, which proves a prefix before the checkpoint's size is reached.
        On ``REFUSED`` the view is unusable: discard it and keep the last copy.
        """
        cp = self._checkpoint
        if cp is None:
            return self._refuse("entries arrived before any checkpoint")
        if start is not None and start != self._range.size:
            return self._refuse(f"entry index {start} where {self._range.size} was expected")
        for entry in entries:
            if self._range.size >= cp.size:
                return self._refuse(
                    f"entry {self._range.size} is not covered by checkpoint {cp.size}"
                )
            self._range.append(merkle.leaf_hash(entry))
        size = self._range.size
        if size == cp.size:
            if self._range.root() != cp.root_hash:
                return self._refuse(
                    f"entries up to {size} do not hash to the root of the peer's checkpoint"
                )
            return EntriesDecision(EntriesOutcome.VERIFIED, size)
        if proof is None:
            return EntriesDecision(EntriesOutcome.PENDING, size)
        try:
            merkle.verify_consistency(size, cp.size, self._range.root(), cp.root_hash, proof)
        except LogIntegrityError as e:
            return self._refuse(
                f"entries up to {size} are not a prefix of checkpoint {cp.size}: {e}"
            )
        return EntriesDecision(EntriesOutcome.VERIFIED, size)

    # -- helpers -------------------------------------------------------------------------

    def _accept(self, new: VerifiedCheckpoint) -> CheckpointDecision:
        if self._range.size == new.size and self._range.root() != new.root_hash:
            # Only reachable for the first checkpoint of an empty range: the empty tree.
            return CheckpointDecision(
                CheckpointOutcome.INVALID,
                f"checkpoint {new.size} does not match the entries already applied",
            )
        self._checkpoint = new
        return CheckpointDecision(CheckpointOutcome.ACCEPTED, f"checkpoint {new.size}", new)

    def _fork(
        self, kind: str, new: VerifiedCheckpoint, proof: tuple[bytes, ...], detail: str
    ) -> CheckpointDecision:
        old = self._checkpoint
        assert old is not None
        evidence = Evidence(
            origin=self.origin,
            kind=kind,
            accepted_note=old.note,
            conflicting_note=new.note,
            proof=proof,
            detail=detail,
        )
        return CheckpointDecision(
            CheckpointOutcome.FORK,
            f"{kind}: checkpoint {new.size} contradicts the accepted {old.size} ({detail})",
            evidence=evidence,
        )

    def _refuse(self, reason: str) -> EntriesDecision:
        return EntriesDecision(EntriesOutcome.REFUSED, self._range.size, reason)

    def __repr__(self) -> str:
        return (
            f"PeerLogView(origin={self.origin!r}, applied={self._range.size}, "
            f"checkpoint={self.known_size})"
        )


def backoff_delay(
    failures: int, *, initial_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Capped exponential backoff with jitter: a delay in [d/2, d], d = initial·2^(n-1).

    Half of the delay is fixed so retries never come back to back; the other half is
    random so peers that failed together do not retry together.
    """
    if failures <= 0:
        return 0.0
    ceiling = min(max_s, initial_s * 2.0 ** min(failures - 1, 62))
    # Jitter, not cryptography: the module-level generator is fine here.
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def authorize_without_listing(signer: MemberId, change: StatusChange) -> None:
    """The part of ``authorize_statement`` that does not need the listing.

    For a replicated status change whose listing has not arrived: the signer signs as
    itself, its role may sign status changes at all, and a gateway only escalates. The
    rest (issuer, authority region, gateway trust domain) is checked when the listing
    arrives (``gateway.service.projection``).
    """
    if change.issuer != str(signer):
        raise PermissionError(
            f"issuer {change.issuer} is not the signer {signer}: members sign only as themselves"
        )
    allowed = STATEMENT_SIGNERS[StatusChange]
    if signer.role not in allowed:
        raise PermissionError(f"a {signer.role.name.lower()} may not sign a StatusChange")
    if change.step is LifecycleStep.RETIRED and signer.role is not Role.GATEWAY:
        raise PermissionError(
            f"a {signer.role.name.lower()} may not record RETIRED: only the gateway of the "
            "issuing trust domain retires a listing"
        )
    if signer.role is Role.GATEWAY and change.step not in GATEWAY_STEPS:
        raise PermissionError(
            "a gateway may only ESCALATE an overdue listing or RETIRE one whose publication "
            f"ended, not record {change.step.name}"
        )
