"""RFC 9162 Merkle tree: hashing, the compact range, proofs from stored nodes, verification.

Hashing always uses the RFC prefixes: 0x00 for a leaf, 0x01 for an interior node. They
keep a leaf from ever being confused with an interior node (second preimages).

Storage model: the log stores the hash of every *perfect* subtree once it is complete,
addressed ``(level, index)`` = hash of leaves ``[index·2^level, (index+1)·2^level)``.
An RFC 9162 tree of any size is that aligned binary tree with a missing right child
promoted, so every node of the RFC tree is either a stored perfect subtree or an
"ephemeral" right-edge node folded from O(log n) stored perfect subtrees. Proof
generation plans the node ids it needs, reads them in one ``get_nodes`` call and
combines them; it never reads leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final, Protocol, TypeAlias

from gateway.errors import LogIntegrityError, RecordError

__all__ = [
    "EMPTY_ROOT",
    "HASH_BYTES",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "CompactRange",
    "MemoryNodeStore",
    "NodeId",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_and_inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_at",
    "verify_consistency",
    "verify_inclusion",
]

LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
HASH_BYTES: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

NodeId: TypeAlias = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class NodeReader(Protocol):
    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """Hashes of the stored perfect subtrees ``ids``, in order, in one read."""
        ...


def _read(reader: NodeReader, ids: Sequence[NodeId]) -> list[bytes]:
    if not ids:
        return []
    hashes = reader.get_nodes(ids)
    if len(hashes) != len(ids):
        raise LogIntegrityError(f"node store returned {len(hashes)} hashes for {len(ids)} ids")
    for node_id, h in zip(ids, hashes, strict=True):
        if len(h) != HASH_BYTES:
            raise LogIntegrityError(f"stored node {node_id} is {len(h)} bytes, not {HASH_BYTES}")
    return hashes


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """MTH of consecutive perfect subtrees given left to right, decreasing in size."""
    root = hashes[-1]
    for h in reversed(hashes[:-1]):
        root = node_hash(h, root)
    return root


def _range_ids(begin: int, end: int) -> list[NodeId]:
    """Perfect subtrees covering ``[begin, end)``, left to right; ``begin`` aligned as in RFC."""
    ids: list[NodeId] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        ids.append((level, begin >> level))
        begin += 1 << level
    return ids


def _edge_ids(size: int) -> list[NodeId]:
    """The compact range of a tree of ``size`` leaves: its perfect subtrees, largest first."""
    return [
        (level, (size >> level) - 1)
        for level in range(size.bit_length() - 1, -1, -1)
        if size >> level & 1
    ]


# A path step is a stored perfect node, or an ephemeral node folded from several.
_Step: TypeAlias = NodeId | list[NodeId]


def _path_plan(level: int, index: int, size: int) -> list[_Step]:
    """Siblings, bottom up, on the path from node ``(level, index)`` to the root of ``size``."""
    plan: list[_Step] = []
    while (size - 1) >> level:  # the node at this level is not yet the root
        sibling = index ^ 1
        start, end = sibling << level, (sibling + 1) << level
        if end <= size:
            plan.append((level, sibling))
        elif start < size:
            plan.append(_range_ids(start, size))
        # else: no right sibling; the node is promoted unchanged.
        level += 1
        index >>= 1
    return plan


def _resolve(plan: list[_Step], reader: NodeReader, prefix: Sequence[NodeId] = ()) -> list[bytes]:
    ids: list[NodeId] = list(prefix)
    for step in plan:
        if isinstance(step, list):
            ids.extend(step)
        else:
            ids.append(step)
    hashes = iter(_read(reader, ids))
    proof = [next(hashes) for _ in prefix]
    for step in plan:
        if isinstance(step, list):
            proof.append(_fold_right([next(hashes) for _ in step]))
        else:
            proof.append(next(hashes))
    return proof


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(f"{name} must be a non-negative integer, got {value!r}")


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion path of leaf ``index`` in the tree of ``size`` leaves."""
    _check_size("index", index)
    _check_size("size", size)
    if index >= size:
        raise RecordError(f"leaf index {index} is outside a tree of size {size}")
    return _resolve(_path_plan(0, index, size), reader)


def leaf_and_inclusion_proof(
    index: int, size: int, reader: NodeReader
) -> tuple[bytes, list[bytes]]:
    """The stored leaf hash ``(0, index)`` and its inclusion path, in one read."""
    _check_size("index", index)
    _check_size("size", size)
    if index >= size:
        raise RecordError(f"leaf index {index} is outside a tree of size {size}")
    leaf, *path = _resolve(_path_plan(0, index, size), reader, [(0, index)])
    return leaf, path


def consistency_proof(m: int, n: int, reader: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 proof that the tree of size ``m`` is a prefix of the one of ``n``.

    It is the inclusion path, in the tree of ``n``, of the last perfect subtree of the
    ``m`` tree, preceded by that subtree's own hash unless ``m`` is a power of two.
    """
    _check_size("first size", m)
    _check_size("second size", n)
    if m > n:
        raise RecordError(f"first size {m} is larger than second size {n}")
    if m in (0, n):
        return []
    level = (m & -m).bit_length() - 1
    index = (m - 1) >> level
    prefix = [(level, index)] if index else []
    return _resolve(_path_plan(level, index, n), reader, prefix)


def root_at(size: int, reader: NodeReader) -> bytes:
    """Root hash of the tree of ``size`` leaves, from its O(log n) edge nodes."""
    return CompactRange.from_reader(size, reader).root()


class CompactRange:
    """The right edge of a tree: the roots of its perfect subtrees, largest first.

    ``append`` is amortised O(1), worst case O(log n); ``root`` is O(log n).
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        _check_size("size", size)
        self._size = size
        self._hashes = list(hashes)
        if len(self._hashes) != size.bit_count():
            raise LogIntegrityError(
                f"a compact range of size {size} has {size.bit_count()} hashes, "
                f"got {len(self._hashes)}"
            )
        for h in self._hashes:
            if len(h) != HASH_BYTES:
                raise LogIntegrityError(f"compact range hash is {len(h)} bytes, not {HASH_BYTES}")

    @classmethod
    def from_reader(cls, size: int, reader: NodeReader) -> CompactRange:
        """Restore the range of a stored tree, reading its ``popcount(size)`` edge nodes."""
        _check_size("size", size)
        return cls(size, _read(reader, _edge_ids(size)))

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._hashes)

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        """Add a leaf hash; return every node it completes, the leaf itself first."""
        if len(leaf) != HASH_BYTES:
            raise LogIntegrityError(f"leaf hash is {len(leaf)} bytes, not {HASH_BYTES}")
        index = self._size
        h = bytes(leaf)
        level = 0
        completed: list[tuple[NodeId, bytes]] = [((0, index), h)]
        while index & 1:  # the left sibling at this level is the last edge node
            h = node_hash(self._hashes.pop(), h)
            level += 1
            index >>= 1
            completed.append(((level, index), h))
        self._hashes.append(h)
        self._size += 1
        return completed

    def extend(self, leaves: Iterable[bytes]) -> list[tuple[NodeId, bytes]]:
        completed: list[tuple[NodeId, bytes]] = []
        for leaf in leaves:
            completed.extend(self.append(leaf))
        return completed

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        return _fold_right(self._hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


class MemoryNodeStore:
    """A dict of perfect-subtree hashes implementing ``NodeReader`` (tests, replay tools)."""

    __slots__ = ("_nodes",)

    def __init__(self) -> None:
        self._nodes: dict[NodeId, bytes] = {}

    def put(self, node_id: NodeId, h: bytes) -> None:
        self._nodes[node_id] = h

    def put_many(self, nodes: Iterable[tuple[NodeId, bytes]]) -> None:
        self._nodes.update(nodes)

    def get_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        try:
            return [self._nodes[i] for i in ids]
        except KeyError as e:
            raise LogIntegrityError(f"node {e.args[0]} is not stored") from e

    def __len__(self) -> int:
        return len(self._nodes)


def _check_hash(what: str, h: bytes) -> None:
    if len(h) != HASH_BYTES:
        raise LogIntegrityError(f"{what} is {len(h)} bytes, not {HASH_BYTES}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, h in enumerate(proof):
        _check_hash(f"proof hash {position}", h)


def _inclusion_length(index: int, size: int) -> int:
    """Exact RFC 9162 path length of leaf ``index`` in a tree of ``size`` leaves."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2. Raise ``LogIntegrityError`` unless ``leaf`` is at ``index``."""
    if isinstance(index, bool) or index < 0 or size < 0:
        raise LogIntegrityError(f"invalid index {index} or size {size}")
    if index >= size:
        raise LogIntegrityError(f"leaf index {index} is not below tree size {size}")
    _check_hash("leaf hash", leaf)
    _check_hash("root hash", root)
    expected = _inclusion_length(index, size)
    if len(proof) != expected:
        raise LogIntegrityError(
            f"inclusion proof for leaf {index} of {size} has {len(proof)} hashes, "
            f"expected {expected}"
        )
    _check_proof_hashes(proof)

    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise LogIntegrityError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogIntegrityError("inclusion proof is shorter than the path to the root")
    if r != root:
        raise LogIntegrityError(
            f"inclusion proof for leaf {index} does not lead to the root of tree size {size}"
        )


def _consistency_length(m: int, n: int) -> int:
    level = (m & -m).bit_length() - 1
    index = (m - 1) >> level
    return (1 if index else 0) + _inclusion_length(index, ((n - 1) >> level) + 1)


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2, plus the out-of-domain cases m == n and m == 0.

    Raise ``LogIntegrityError`` unless the tree (``m``, ``root_m``) is a prefix of the
    tree (``n``, ``root_n``).
    """
    if m < 0 or n < 0:
        raise LogIntegrityError(f"invalid tree sizes {m} and {n}")
    if m > n:
        raise LogIntegrityError(f"tree size went backwards: {m} then {n}")
    _check_hash("first root hash", root_m)
    _check_hash("second root hash", root_n)
    if m == n:
        if proof:
            raise LogIntegrityError(
                f"consistency proof between equal sizes must be empty, has {len(proof)} hashes"
            )
        if root_m != root_n:
            raise LogIntegrityError(f"two different root hashes for tree size {m}: a fork")
        return
    if m == 0:
        if proof:
            raise LogIntegrityError(
                f"consistency proof from the empty tree must be empty, has {len(proof)} hashes"
            )
        if root_m != EMPTY_ROOT:
            raise LogIntegrityError("root hash of the empty tree is not SHA-256 of nothing")
        return
    expected = _consistency_length(m, n)
    if len(proof) != expected:
        raise LogIntegrityError(
            f"consistency proof from {m} to {n} has {len(proof)} hashes, expected {expected}"
        )
    _check_proof_hashes(proof)

    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: the old root is the first node
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise LogIntegrityError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogIntegrityError("consistency proof is shorter than the path to the root")
    if fr != root_m:
        raise LogIntegrityError(f"consistency proof does not reproduce the root of size {m}")
    if sr != root_n:
        raise LogIntegrityError(f"consistency proof does not reproduce the root of size {n}")
