"""RFC 9162 Merkle tree: RFC vectors, a recursive reference, tampering, node-read budget."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeStore,
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from gateway.errors import LogIntegrityError, RecordError

# -- a straightforward recursive reference (RFC 6962 §2.1, RFC 9162 §2.1) ---------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self._memo: dict[tuple[int, int], bytes] = {}

    def mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return self.leaves[start]
        if (start, end) not in self._memo:
            k = _split(n)
            self._memo[start, end] = node_hash(self.mth(start, start + k), self.mth(start + k, end))
        return self._memo[start, end]

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = _split(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)


def _entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def _build(n: int) -> tuple[CompactRange, MemoryNodeStore, Reference]:
    leaves = [leaf_hash(e) for e in _entries(n)]
    tree = CompactRange()
    store = MemoryNodeStore()
    for leaf in leaves:
        store.put_many(tree.append(leaf))
    return tree, store, Reference(leaves)


TREE64, STORE64, REF64 = _build(64)
TREE200, STORE200, REF200 = _build(200)


class CountingReader:
    def __init__(self, store: MemoryNodeStore) -> None:
        self.store = store
        self.calls = 0
        self.ids = 0

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        self.calls += 1
        self.ids += len(ids)
        return self.store.get_nodes(ids)


# -- hashing and the RFC's seven-leaf example --------------------------------------------


def test_prefixes_and_empty_root() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert CompactRange().root() == EMPTY_ROOT


def test_rfc6962_seven_leaf_example() -> None:
    d = [f"d{i}".encode() for i in range(7)]
    a, b, c, dd, e, f, j = (leaf_hash(x) for x in d)
    g, h, i = node_hash(a, b), node_hash(c, dd), node_hash(e, f)
    k, l = node_hash(g, h), node_hash(i, j)  # noqa: E741  (the RFC's names)
    root = node_hash(k, l)

    tree, store = CompactRange(), MemoryNodeStore()
    for x in d:
        store.put_many(tree.append(leaf_hash(x)))
    assert tree.root() == root == root_at(7, store)

    assert inclusion_proof(0, 7, store) == [b, h, l]
    assert consistency_proof(3, 7, store) == [c, dd, g, l]
    assert consistency_proof(4, 7, store) == [l]
    assert consistency_proof(6, 7, store) == [i, j, k]

    verify_inclusion(0, 7, a, [b, h, l], root)
    verify_consistency(3, 7, root_at(3, store), root, [c, dd, g, l])
    verify_consistency(4, 7, k, root, [l])
    verify_consistency(6, 7, node_hash(k, i), root, [i, j, k])


# -- exhaustive agreement with the reference --------------------------------------------


def test_every_inclusion_proof_up_to_64() -> None:
    for size in range(1, 65):
        root = REF64.mth(0, size)
        assert root_at(size, STORE64) == root
        for index in range(size):
            proof = inclusion_proof(index, size, STORE64)
            assert proof == REF64.path(index, 0, size), (index, size)
            verify_inclusion(index, size, REF64.leaves[index], proof, root)


def test_every_consistency_proof_up_to_64() -> None:
    for n in range(1, 65):
        root_n = REF64.mth(0, n)
        for m in range(1, n):
            proof = consistency_proof(m, n, STORE64)
            assert proof == REF64.proof(m, n), (m, n)
            verify_consistency(m, n, REF64.mth(0, m), root_n, proof)


def test_out_of_domain_consistency() -> None:
    root5 = REF64.mth(0, 5)
    assert consistency_proof(5, 5, STORE64) == []
    assert consistency_proof(0, 5, STORE64) == []
    verify_consistency(5, 5, root5, root5, [])
    verify_consistency(0, 5, EMPTY_ROOT, root5, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(LogIntegrityError, match="fork"):
        verify_consistency(5, 5, root5, REF64.mth(0, 6), [])
    with pytest.raises(LogIntegrityError, match="must be empty"):
        verify_consistency(5, 5, root5, root5, [root5])
    with pytest.raises(LogIntegrityError, match="must be empty"):
        verify_consistency(0, 5, EMPTY_ROOT, root5, [root5])
    with pytest.raises(LogIntegrityError, match="empty tree"):
        verify_consistency(0, 5, root5, root5, [])
    with pytest.raises(LogIntegrityError, match="backwards"):
        verify_consistency(6, 5, REF64.mth(0, 6), root5, consistency_proof(5, 6, STORE64))


def test_generation_rejects_bad_arguments() -> None:
    with pytest.raises(RecordError):
        inclusion_proof(5, 5, STORE64)
    with pytest.raises(RecordError):
        inclusion_proof(-1, 5, STORE64)
    with pytest.raises(RecordError):
        consistency_proof(6, 5, STORE64)


def test_missing_node_is_an_integrity_error() -> None:
    with pytest.raises(LogIntegrityError, match="not stored"):
        inclusion_proof(0, 65, STORE64)


# -- tampering ---------------------------------------------------------------------------


def _flip(h: bytes, at: int = 0) -> bytes:
    return h[:at] + bytes([h[at] ^ 1]) + h[at + 1 :]


@pytest.mark.parametrize(("index", "size"), [(0, 7), (3, 7), (6, 7), (5, 8), (12, 13), (31, 64)])
def test_tampered_inclusion_proofs_fail(index: int, size: int) -> None:
    leaf, root = REF64.leaves[index], REF64.mth(0, size)
    proof = inclusion_proof(index, size, STORE64)
    for position in range(len(proof)):
        bad = list(proof)
        bad[position] = _flip(bad[position], position % 32)
        with pytest.raises(LogIntegrityError, match="does not lead to the root"):
            verify_inclusion(index, size, leaf, bad, root)
        bad[position] = proof[position][:31]
        with pytest.raises(LogIntegrityError, match="31 bytes"):
            verify_inclusion(index, size, leaf, bad, root)
    with pytest.raises(LogIntegrityError, match="expected"):
        verify_inclusion(index, size, leaf, [*proof, root], root)
    with pytest.raises(LogIntegrityError, match="expected"):
        verify_inclusion(index, size, leaf, proof[:-1], root)
    with pytest.raises(LogIntegrityError):
        verify_inclusion(index ^ 1, size, leaf, proof, root)
    # A size with the same path shape is indistinguishable (the signed checkpoint
    # authenticates the size); a size with another shape must fail.
    with pytest.raises(LogIntegrityError, match="expected"):
        verify_inclusion(index, size * 2, leaf, proof, root)
    with pytest.raises(LogIntegrityError, match="not below"):
        verify_inclusion(size, size, leaf, proof, root)
    with pytest.raises(LogIntegrityError):
        verify_inclusion(index, size, _flip(leaf), proof, root)
    with pytest.raises(LogIntegrityError):
        verify_inclusion(index, size, leaf, proof, _flip(root))
    with pytest.raises(LogIntegrityError, match="root hash is 31 bytes"):
        verify_inclusion(index, size, leaf, proof, root[:31])


@pytest.mark.parametrize(("m", "n"), [(3, 7), (4, 7), (6, 7), (1, 2), (7, 13), (32, 64), (33, 63)])
def test_tampered_consistency_proofs_fail(m: int, n: int) -> None:
    root_m, root_n = REF64.mth(0, m), REF64.mth(0, n)
    proof = consistency_proof(m, n, STORE64)
    verify_consistency(m, n, root_m, root_n, proof)
    for position in range(len(proof)):
        bad = list(proof)
        bad[position] = _flip(bad[position], 31 - position % 32)
        with pytest.raises(LogIntegrityError, match="does not reproduce"):
            verify_consistency(m, n, root_m, root_n, bad)
        bad[position] = proof[position] + b"\x00"
        with pytest.raises(LogIntegrityError, match="33 bytes"):
            verify_consistency(m, n, root_m, root_n, bad)
    with pytest.raises(LogIntegrityError, match="expected"):
        verify_consistency(m, n, root_m, root_n, [*proof, root_n])
    with pytest.raises(LogIntegrityError, match="expected"):
        verify_consistency(m, n, root_m, root_n, proof[1:])
    with pytest.raises(LogIntegrityError):
        verify_consistency(m, n, root_n, root_m, proof)
    with pytest.raises(LogIntegrityError):
        verify_consistency(m, n, _flip(root_m), root_n, proof)
    with pytest.raises(LogIntegrityError):
        verify_consistency(m, n, root_m, _flip(root_n), proof)
    with pytest.raises(LogIntegrityError):
        verify_consistency(m - 1 or m + 1, n, root_m, root_n, proof)
    with pytest.raises(LogIntegrityError, match="expected"):
        verify_consistency(m, n * 2, root_m, root_n, proof)


def test_interior_node_presented_as_leaf_does_not_verify() -> None:
    # Tree of 4: root = H(g, h) with g = H(a, b). The bytes a ‖ b hash to g as a node,
    # but as a leaf entry they get the 0x00 prefix and must not prove inclusion.
    a, b, c, d = REF64.leaves[:4]
    g, h = node_hash(a, b), node_hash(c, d)
    root = REF64.mth(0, 4)
    assert node_hash(g, h) == root
    forged_leaf = leaf_hash(a + b)
    assert forged_leaf != g
    with pytest.raises(LogIntegrityError):
        verify_inclusion(0, 2, forged_leaf, [h], root)
    # nor can the root's children pass as the single entry of a one-leaf tree
    with pytest.raises(LogIntegrityError):
        verify_inclusion(0, 1, leaf_hash(g + h), [], root)


# -- compact range -------------------------------------------------------------------------


def test_compact_range_root_matches_reference_for_every_size() -> None:
    tree = CompactRange()
    assert tree.root() == REF200.mth(0, 0)
    for size in range(1, 201):
        tree.append(REF200.leaves[size - 1])
        assert tree.size == size
        assert tree.root() == REF200.mth(0, size), size


def test_append_writes_every_perfect_subtree_once() -> None:
    tree, store = CompactRange(), MemoryNodeStore()
    written: list[NodeId] = []
    for leaf in REF200.leaves:
        nodes = tree.append(leaf)
        assert nodes[0] == ((0, tree.size - 1), leaf)
        assert len(nodes) <= 1 + math.ceil(math.log2(tree.size + 1))
        written.extend(node_id for node_id, _ in nodes)
        store.put_many(nodes)
    expected = {(lvl, i) for lvl in range(8) for i in range(200 >> lvl)}
    assert sorted(written) == sorted(expected)
    for (level, index), h in zip(written, store.get_nodes(written), strict=True):
        assert h == REF200.mth(index << level, (index + 1) << level)


def test_from_reader_restores_the_same_state() -> None:
    for size in range(201):
        reader = CountingReader(STORE200)
        restored = CompactRange.from_reader(size, reader)
        assert reader.calls <= 1
        assert reader.ids == size.bit_count()
        assert restored.root() == REF200.mth(0, size)
        live = CompactRange()
        live.extend(REF200.leaves[:size])
        assert restored == live
    a = CompactRange.from_reader(100, STORE200)
    b = a.copy()
    assert a.append(REF200.leaves[100]) == b.append(REF200.leaves[100])
    assert a == b
    b.append(REF200.leaves[101])
    assert a != b and a.size == 101


def test_compact_range_rejects_bad_input() -> None:
    with pytest.raises(LogIntegrityError):
        CompactRange().append(b"short")
    with pytest.raises(LogIntegrityError):
        CompactRange(3, [b"\x00" * 32])


# -- the O(log n) read budget ----------------------------------------------------------------


@pytest.fixture(scope="module")
def big_store() -> tuple[int, MemoryNodeStore, CompactRange]:
    n = 100_000
    tree, store = CompactRange(), MemoryNodeStore()
    for i in range(n):
        store.put_many(tree.append(leaf_hash(i.to_bytes(8, "big"))))
    return n, store, tree


def test_proofs_read_o_log_n_nodes_in_one_batch(
    big_store: tuple[int, MemoryNodeStore, CompactRange],
) -> None:
    n, store, tree = big_store
    rng = random.Random(9162)
    root_n = tree.root()
    budget = 2 * math.ceil(math.log2(n)) + 2
    for _ in range(300):
        index = rng.randrange(n)
        reader = CountingReader(store)
        proof = inclusion_proof(index, n, reader)
        assert reader.calls == 1 and reader.ids <= budget, (index, reader.ids)
        verify_inclusion(index, n, leaf_hash(index.to_bytes(8, "big")), proof, root_n)

        m = rng.randrange(1, n)
        reader = CountingReader(store)
        proof = consistency_proof(m, n, reader)
        assert reader.calls == 1 and reader.ids <= budget, (m, reader.ids)
        reader = CountingReader(store)
        root_m = root_at(m, reader)
        assert reader.calls == 1 and reader.ids <= math.ceil(math.log2(n))
        verify_consistency(m, n, root_m, root_n, proof)
    # worst cases for the ephemeral right edge: sizes just past a power of two
    for size in (n, 2**16 + 1, 2**16 - 1, 65_535 + 2**14):
        for index in (0, size // 2, size - 2, size - 1):
            reader = CountingReader(store)
            inclusion_proof(index, size, reader)
            assert reader.ids <= 2 * math.ceil(math.log2(size)) + 2


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_proofs_in_a_larger_tree_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 200))
    index = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(0, n))
    verify_inclusion(
        index, n, REF200.leaves[index], inclusion_proof(index, n, STORE200), root_at(n, STORE200)
    )
    verify_consistency(
        m, n, root_at(m, STORE200), root_at(n, STORE200), consistency_proof(m, n, STORE200)
    )
