"""Signed-note and checkpoint limits found by mutation testing (docs/TESTING.md).

Every limit is inclusive: a note, checkpoint or cosignature exactly at the limit that a
peer or witness produced must open here too, or gateways and witnesses would disagree
about the same log.
"""

from __future__ import annotations

import hashlib

from gateway.core.crypto import SigningKey
from gateway.core.notes import (
    MAX_NOTE_BYTES,
    MAX_NOTE_SIGNATURES,
    MAX_TIMESTAMP,
    MAX_TREE_SIZE,
    Checkpoint,
    CosignatureSigner,
    NoteSigner,
    open_checkpoint,
    open_note,
    sign_note,
    verify_cosignature,
)

ROOT = hashlib.sha256(b"root").digest()


def _signer(name: str) -> NoteSigner:
    return NoteSigner(name, SigningKey.generate())


def test_a_checkpoint_of_the_largest_tree_size_signs_and_opens() -> None:
    signer = _signer("gw.example/audit/v1")
    body = Checkpoint("gw.example/audit/v1", MAX_TREE_SIZE, ROOT).body()
    opened = open_checkpoint(sign_note(body, [signer]), signer.verifier())
    assert opened.size == MAX_TREE_SIZE


def test_a_note_of_exactly_the_maximum_length_opens() -> None:
    signer = _signer("gw.example")
    block = len(sign_note("x\n", [signer])) - len("x\n")
    text = "a" * (MAX_NOTE_BYTES - block - 1) + "\n"
    note = sign_note(text, [signer])
    assert len(note) == MAX_NOTE_BYTES
    assert open_note(note, [signer.verifier()]) == text


def test_a_note_with_the_maximum_number_of_signatures_opens() -> None:
    signers = [_signer(f"s{i}.example") for i in range(MAX_NOTE_SIGNATURES)]
    note = sign_note("many\n", signers)
    assert open_note(note, [signers[0].verifier()]) == "many\n"


def test_cosignatures_at_both_ends_of_the_timestamp_range_verify() -> None:
    cosigner = CosignatureSigner("witness.example/w1", SigningKey.generate())
    body = Checkpoint("gw.example/audit/v1", 7, ROOT).body()
    for timestamp in (0, 1, MAX_TIMESTAMP):
        line = cosigner.cosign(body, timestamp)
        assert verify_cosignature(line, body, cosigner.verifier()) == timestamp
