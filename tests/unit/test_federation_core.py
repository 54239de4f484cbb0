"""The federation state machine: each transition, evidence, and honest runs (property)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import merkle
from gateway.core.crypto import SigningKey
from gateway.core.federation import (
    CheckpointOutcome,
    EntriesOutcome,
    PeerLogView,
    authorize_without_listing,
    backoff_delay,
)
from gateway.core.identifiers import MemberId
from gateway.core.notes import Checkpoint, NoteSigner, sign_note
from gateway.core.statements import LifecycleStep, StatusChange
from gateway.errors import LogIntegrityError, PermissionError

ORIGIN = "peer.alliance.test/alliance-log/v1"
KEY = SigningKey.from_raw(bytes(range(32)))
SIGNER = NoteSigner(ORIGIN, KEY)


class Log:
    """An honest peer log kept in memory: entries, stored nodes, signed checkpoints."""

    def __init__(self, signer: NoteSigner = SIGNER, prefix: bytes = b"entry") -> None:
        self.signer = signer
        self.prefix = prefix
        self.entries: list[bytes] = []
        self.nodes = merkle.MemoryNodeStore()
        self.range = merkle.CompactRange()

    def grow(self, n: int) -> list[bytes]:
        new = [self.prefix + b" %d" % (len(self.entries) + i) for i in range(n)]
        for entry in new:
            self.nodes.put_many(self.range.append(merkle.leaf_hash(entry)))
        self.entries.extend(new)
        return new

    def root(self, size: int) -> bytes:
        return merkle.root_at(size, self.nodes) if size else merkle.EMPTY_ROOT

    def note(self, size: int, *, origin: str | None = None, root: bytes | None = None) -> str:
        cp = Checkpoint(origin or self.signer.name, size, root or self.root(size))
        return sign_note(cp.body(), [self.signer])

    def proof(self, m: int, n: int) -> list[bytes]:
        return merkle.consistency_proof(m, n, self.nodes) if 0 < m < n else []


def view() -> PeerLogView:
    return PeerLogView(ORIGIN, SIGNER.verifier())


def synced(log: Log, size: int) -> PeerLogView:
    v = view()
    assert v.on_checkpoint(log.note(size)).outcome is CheckpointOutcome.ACCEPTED
    assert v.on_entries(log.entries[:size], start=0).outcome is EntriesOutcome.VERIFIED
    return v


# -- checkpoints ---------------------------------------------------------------------------


def test_first_checkpoint_then_entries_verify_at_its_size() -> None:
    log = Log()
    log.grow(5)
    v = view()
    decision = v.on_checkpoint(log.note(5))
    assert decision.accepted and decision.outcome is CheckpointOutcome.ACCEPTED
    assert decision.checkpoint is not None and decision.checkpoint.size == 5
    assert decision.checkpoint.body == Checkpoint(ORIGIN, 5, log.root(5)).body()
    assert (v.next_index, v.known_size, v.entries_behind, v.complete) == (0, 5, 5, False)
    assert v.on_entries(log.entries[:3], start=0).outcome is EntriesOutcome.PENDING
    done = v.on_entries(log.entries[3:], start=3)
    assert (done.outcome, done.size) == (EntriesOutcome.VERIFIED, 5)
    assert v.complete and v.entries_behind == 0


def test_newer_consistent_checkpoint_is_accepted() -> None:
    log = Log()
    log.grow(3)
    v = synced(log, 3)
    log.grow(6)
    decision = v.on_checkpoint(log.note(9), log.proof(3, 9))
    assert decision.outcome is CheckpointOutcome.ACCEPTED
    assert v.on_entries(log.entries[3:], start=3).outcome is EntriesOutcome.VERIFIED


def test_rollback_is_refused_and_changes_nothing() -> None:
    log = Log()
    log.grow(4)
    v = synced(log, 4)
    decision = v.on_checkpoint(log.note(2))
    assert decision.outcome is CheckpointOutcome.ROLLBACK and not decision.accepted
    assert decision.evidence is None
    assert v.known_size == 4


def test_same_tree_again_is_unchanged_and_keeps_the_newer_note() -> None:
    log = Log()
    log.grow(4)
    v = synced(log, 4)
    cosigned = log.note(4) + "\u2014 monitor AAAAAAAA\n"
    decision = v.on_checkpoint(cosigned)
    assert decision.outcome is CheckpointOutcome.UNCHANGED and decision.accepted
    assert v.checkpoint is not None and v.checkpoint.note == cosigned


def test_same_size_other_root_is_a_fork_with_evidence() -> None:
    log, other = Log(), Log(prefix=b"forged")
    log.grow(4)
    other.grow(4)
    v = synced(log, 4)
    decision = v.on_checkpoint(other.note(4))
    assert decision.outcome is CheckpointOutcome.FORK and not decision.accepted
    ev = decision.evidence
    assert ev is not None and ev.kind == "fork" and ev.origin == ORIGIN
    assert (ev.accepted_note, ev.conflicting_note) == (log.note(4), other.note(4))
    assert v.checkpoint is not None and v.checkpoint.note == log.note(4)


def test_failing_consistency_proof_is_a_fork_with_evidence() -> None:
    log, other = Log(), Log(prefix=b"forged")
    log.grow(3)
    other.grow(8)
    v = synced(log, 3)
    decision = v.on_checkpoint(other.note(8), other.proof(3, 8))
    assert decision.outcome is CheckpointOutcome.FORK
    assert decision.evidence is not None and decision.evidence.kind == "inconsistent"
    assert decision.evidence.proof == tuple(other.proof(3, 8))
    assert v.known_size == 3


def test_missing_consistency_proof_is_refused_as_inconsistent() -> None:
    log = Log()
    log.grow(3)
    v = synced(log, 3)
    log.grow(2)
    decision = v.on_checkpoint(log.note(5), [])
    assert decision.outcome is CheckpointOutcome.FORK
    assert v.known_size == 3


def test_bad_signature_is_invalid() -> None:
    log = Log(NoteSigner(ORIGIN, SigningKey.generate()))
    log.grow(2)
    decision = view().on_checkpoint(log.note(2))
    assert decision.outcome is CheckpointOutcome.INVALID and decision.evidence is None


def test_tampered_root_under_the_original_signature_is_invalid() -> None:
    log = Log()
    log.grow(2)
    note = log.note(2)
    _, _, sigs = note.partition("\n\n")
    forged = Checkpoint(ORIGIN, 2, bytes(32)).body()
    assert view().on_checkpoint(forged + "\n" + sigs).outcome is CheckpointOutcome.INVALID


def test_wrong_origin_is_invalid() -> None:
    other = "other.alliance.test/alliance-log/v1"
    log = Log(NoteSigner(other, KEY))
    log.grow(1)
    assert view().on_checkpoint(log.note(1)).outcome is CheckpointOutcome.INVALID


@pytest.mark.parametrize("note", ["", "no blank line\n", "peer\n1\n\n\u2014 x AAAA\n"])
def test_malformed_note_is_invalid(note: str) -> None:
    assert view().on_checkpoint(note).outcome is CheckpointOutcome.INVALID


def test_proofs_where_none_belong_are_invalid() -> None:
    log = Log()
    log.grow(2)
    fake = [bytes(32)]
    assert view().on_checkpoint(log.note(2), fake).outcome is CheckpointOutcome.INVALID
    v = synced(log, 2)
    assert v.on_checkpoint(log.note(2), fake).outcome is CheckpointOutcome.INVALID


def test_empty_first_checkpoint_must_have_the_empty_root() -> None:
    log = Log()
    assert view().on_checkpoint(log.note(0)).outcome is CheckpointOutcome.ACCEPTED
    bad = log.note(0, root=b"\x01" * 32)
    assert view().on_checkpoint(bad).outcome is CheckpointOutcome.INVALID


# -- entries -------------------------------------------------------------------------------


def test_entries_that_do_not_match_the_root_are_refused() -> None:
    log = Log()
    log.grow(4)
    v = view()
    v.on_checkpoint(log.note(4))
    served = [*log.entries[:3], b"not the signed entry"]
    decision = v.on_entries(served, start=0)
    assert decision.refused and "root" in decision.reason


def test_entries_out_of_order_are_refused() -> None:
    log = Log()
    log.grow(4)
    v = view()
    v.on_checkpoint(log.note(4))
    served = [log.entries[1], log.entries[0], *log.entries[2:]]
    assert v.on_entries(served, start=0).refused


def test_entries_before_any_checkpoint_are_refused() -> None:
    assert view().on_entries([b"x"], start=0).refused


def test_entries_past_the_checkpoint_are_refused() -> None:
    log = Log()
    log.grow(3)
    v = view()
    v.on_checkpoint(log.note(2))
    decision = v.on_entries(log.entries, start=0)
    assert decision.refused and "not covered" in decision.reason


def test_entry_at_the_wrong_index_is_refused() -> None:
    log = Log()
    log.grow(3)
    v = view()
    v.on_checkpoint(log.note(3))
    assert v.on_entries(log.entries[1:], start=1).refused


def test_prefix_proof_verifies_entries_before_the_checkpoint_size() -> None:
    log = Log()
    log.grow(10)
    v = view()
    v.on_checkpoint(log.note(10))
    assert v.on_entries(log.entries[:6], start=0).outcome is EntriesOutcome.PENDING
    decision = v.on_entries([], proof=log.proof(6, 10))
    assert decision.outcome is EntriesOutcome.VERIFIED and decision.size == 6
    bad = view()
    bad.on_checkpoint(log.note(10))
    bad.on_entries([*log.entries[:5], b"swapped"], start=0)
    assert bad.on_entries([], proof=log.proof(6, 10)).refused


def test_copy_is_independent_so_a_refused_batch_leaves_no_trace() -> None:
    log = Log()
    log.grow(4)
    committed = view()
    committed.on_checkpoint(log.note(4))
    work = committed.copy()
    assert work.on_entries([b"junk", *log.entries[1:]], start=0).refused
    assert committed.next_index == 0
    assert committed.copy().on_entries(log.entries, start=0).outcome is EntriesOutcome.VERIFIED


def test_restored_view_continues_from_its_cursor() -> None:
    log = Log()
    log.grow(6)
    v = view()
    v.on_checkpoint(log.note(6))
    v.on_entries(log.entries[:6], start=0)
    restored = PeerLogView(ORIGIN, SIGNER.verifier(), checkpoint=v.checkpoint, applied=v.applied)
    log.grow(3)
    assert restored.on_checkpoint(log.note(9), log.proof(6, 9)).accepted
    assert restored.on_entries(log.entries[6:], start=6).outcome is EntriesOutcome.VERIFIED


def test_view_invariants() -> None:
    log = Log()
    log.grow(3)
    rng = merkle.CompactRange()
    rng.extend(merkle.leaf_hash(e) for e in log.entries)
    with pytest.raises(LogIntegrityError):
        PeerLogView(ORIGIN, SIGNER.verifier(), applied=rng)
    v = view()
    v.on_checkpoint(log.note(2))
    with pytest.raises(LogIntegrityError):
        PeerLogView(ORIGIN, SIGNER.verifier(), checkpoint=v.checkpoint, applied=rng)


# -- honest runs always accept ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 9), st.integers(1, 4), st.booleans()), min_size=1, max_size=12
    ),
    batch=st.integers(1, 6),
)
def test_honest_sequences_always_accept(steps: list[tuple[int, int, bool]], batch: int) -> None:
    """Whatever the growth, the chunking and the prefix proofs, an honest log is taken
    whole, and the receiver's range ends equal to the peer's tree."""
    log = Log()
    v = view()
    sent = 0  # what the honest server last sent as a checkpoint
    for grow, chunk, prove in steps:
        log.grow(grow)
        size = len(log.entries)
        decision = v.on_checkpoint(log.note(size), log.proof(sent, size))
        assert decision.accepted, decision.reason
        sent = size
        while v.next_index < size:
            start = v.next_index
            part = log.entries[start : min(size, start + min(chunk, batch))]
            result = v.on_entries(part, start=start)
            assert not result.refused, result.reason
            if result.outcome is EntriesOutcome.PENDING and prove:
                proven = v.on_entries([], proof=log.proof(v.next_index, size))
                assert proven.outcome is EntriesOutcome.VERIFIED, proven.reason
        assert v.complete
    assert v.applied.root() == log.root(len(log.entries))


# -- helpers -----------------------------------------------------------------------------


def test_backoff_is_capped_exponential_with_jitter() -> None:
    rng = random.Random(7)
    assert backoff_delay(0, initial_s=1, max_s=30, rng=rng) == 0
    for failures, ceiling in ((1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (100, 30)):
        delays = {backoff_delay(failures, initial_s=1, max_s=30, rng=rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter


def _change(issuer: str, step: LifecycleStep) -> StatusChange:
    return StatusChange(
        issuer=issuer,
        listing_id="ab" * 32,
        step=step,
        effective_at=datetime(2026, 10, 5, tzinfo=UTC),
    )


def test_authorize_without_listing_checks_what_it_can() -> None:
    platform = MemberId.parse("spiffe://gd.alliance.test/platform/shop")
    gateway = MemberId.parse("spiffe://gd.alliance.test/gateway/gw")
    monitor = MemberId.parse("spiffe://gd.alliance.test/monitor/ndrc")
    authorize_without_listing(platform, _change(str(platform), LifecycleStep.NOTICE_SERVED))
    authorize_without_listing(gateway, _change(str(gateway), LifecycleStep.ESCALATED))
    with pytest.raises(PermissionError):
        authorize_without_listing(platform, _change(str(gateway), LifecycleStep.NOTICE_SERVED))
    with pytest.raises(PermissionError):
        authorize_without_listing(gateway, _change(str(gateway), LifecycleStep.NOTICE_SERVED))
    with pytest.raises(PermissionError):
        authorize_without_listing(monitor, _change(str(monitor), LifecycleStep.NOTICE_SERVED))
