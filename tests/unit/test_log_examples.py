"""Every example value in docs/PROTOCOL.md is recomputed here, so the document cannot drift."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from gateway.core import dsse
from gateway.core.crypto import SigningKey
from gateway.core.merkle import (
    CompactRange,
    MemoryNodeStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from gateway.core.notes import (
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    sign_note,
    verify_cosignature,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
_BLOCK = re.compile(r"^```(?:text|hex) example=([\w-]+)\n(.*?)\n```$", re.MULTILINE | re.DOTALL)
LOG_ORIGIN = "gw.example/audit/v1"
WITNESS = "witness.example/w1"
COSIGNED_AT = 1_700_000_000


@pytest.fixture(scope="module")
def ex() -> dict[str, str]:
    blocks = dict(_BLOCK.findall(DOC.read_text(encoding="utf-8")))
    assert len(blocks) >= 18, sorted(blocks)
    return blocks


def _hexes(block: str) -> list[bytes]:
    return [bytes.fromhex(line) for line in block.splitlines()]


def test_pae_record_id_and_leaf(ex: dict[str, str]) -> None:
    pae = dsse.pae(ex["payload-type"], ex["payload"].encode())
    assert pae == ex["pae"].encode()
    assert pae.hex() == ex["pae-hex"]
    assert dsse.record_id(ex["payload-type"], ex["payload"].encode()) == ex["record-id"]
    assert leaf_hash(pae).hex() == ex["leaf-hash"]


def test_envelope_signature(ex: dict[str, str]) -> None:
    key = SigningKey.from_raw(bytes.fromhex(ex["signing-seed"]))
    assert key.public_key().raw.hex() == ex["public-key"]
    env = dsse.sign(ex["payload-type"], ex["payload"].encode(), key)
    (signature,) = env.signatures
    assert signature.keyid == ex["keyid"]
    assert base64.b64encode(signature.sig).decode() == ex["signature"]
    assert env.record_id == ex["record-id"]
    assert dsse.verify(env, [key.public_key()]) == key.public_key()


def test_tree_roots_and_proofs(ex: dict[str, str]) -> None:
    entries = [dsse.pae(ex["payload-type"], p.encode()) for p in ex["tree-payloads"].splitlines()]
    leaves = [leaf_hash(e) for e in entries]
    assert leaves == _hexes(ex["tree-leaves"])
    assert leaves[0].hex() == ex["leaf-hash"]
    tree, store = CompactRange(), MemoryNodeStore()
    for leaf in leaves:
        store.put_many(tree.append(leaf))
    root2, root3 = bytes.fromhex(ex["root-2"]), bytes.fromhex(ex["root-3"])
    assert root_at(2, store) == root2 and tree.root() == root3
    assert inclusion_proof(0, 3, store) == _hexes(ex["inclusion-0-3"])
    assert consistency_proof(2, 3, store) == _hexes(ex["consistency-2-3"])
    verify_inclusion(0, 3, leaves[0], _hexes(ex["inclusion-0-3"]), root3)
    verify_consistency(2, 3, root2, root3, _hexes(ex["consistency-2-3"]))


def test_signed_checkpoint(ex: dict[str, str]) -> None:
    key = SigningKey.from_raw(bytes.fromhex(ex["signing-seed"]))
    signer = NoteSigner(LOG_ORIGIN, key)
    assert signer.verifier().vkey == ex["log-vkey"]
    checkpoint = Checkpoint(LOG_ORIGIN, 3, bytes.fromhex(ex["root-3"]))
    note = ex["signed-checkpoint"] + "\n"
    assert sign_note(checkpoint.body(), [signer]) == note
    opened = open_checkpoint(note, NoteVerifier.from_vkey(ex["log-vkey"]), origin=LOG_ORIGIN)
    assert opened == checkpoint


def test_cosignature(ex: dict[str, str]) -> None:
    cosigner = CosignatureSigner(WITNESS, SigningKey.from_raw(bytes.fromhex(ex["witness-seed"])))
    assert cosigner.verifier().vkey == ex["witness-vkey"]
    body = Checkpoint(LOG_ORIGIN, 3, bytes.fromhex(ex["root-3"])).body()
    line = ex["cosignature"] + "\n"
    assert cosigner.cosign(body, COSIGNED_AT) == line
    verifier = CosignatureVerifier.from_vkey(ex["witness-vkey"])
    assert verify_cosignature(line, body, verifier) == COSIGNED_AT
