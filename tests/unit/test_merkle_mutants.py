"""Proof-verifier rejections found by mutation testing (docs/TESTING.md).

A monitor that is handed a proof for an impossible index or size must be told that,
not a later, misleading reason; and an empty tree whose root is not SHA-256("") is a
forged checkpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from gateway.core.merkle import EMPTY_ROOT, verify_consistency, verify_inclusion
from gateway.errors import LogIntegrityError

LEAF = hashlib.sha256(b"leaf").digest()
ROOT = hashlib.sha256(b"root").digest()


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [
        (-1, 4, "invalid index -1 or size 4"),
        (True, 4, "invalid index True or size 4"),
        (0, -1, "invalid index 0 or size -1"),
        (0, 0, "leaf index 0 is not below tree size 0"),
    ],
)
def test_an_impossible_inclusion_position_is_named(index: int, size: int, message: str) -> None:
    with pytest.raises(LogIntegrityError) as caught:
        verify_inclusion(index, size, LEAF, [], ROOT)
    assert str(caught.value) == message


@pytest.mark.parametrize(("m", "n"), [(-1, 4), (4, -1), (-2, -1)])
def test_negative_tree_sizes_are_named(m: int, n: int) -> None:
    with pytest.raises(LogIntegrityError) as caught:
        verify_consistency(m, n, ROOT, ROOT, [])
    assert str(caught.value) == f"invalid tree sizes {m} and {n}"


def test_a_forged_empty_tree_root_is_refused_as_such() -> None:
    with pytest.raises(LogIntegrityError) as caught:
        verify_consistency(0, 3, ROOT, ROOT, [])
    assert str(caught.value) == "root hash of the empty tree is not SHA-256 of nothing"
    verify_consistency(0, 3, EMPTY_ROOT, ROOT, [])


def test_a_short_hash_is_named_by_its_role() -> None:
    """Which of the hashes a monitor was given is malformed: leaf, first or second root."""
    short = b"\x00" * 3
    cases: list[tuple[Callable[[], None], str]] = [
        (lambda: verify_inclusion(0, 1, short, [], ROOT), "leaf hash is 3 bytes, not 32"),
        (lambda: verify_consistency(1, 2, short, ROOT, []), "first root hash is 3 bytes, not 32"),
        (
            lambda: verify_consistency(1, 2, ROOT, short, []),
            "second root hash is 3 bytes, not 32",
        ),
    ]
    for call, message in cases:
        with pytest.raises(LogIntegrityError) as caught:
            call()
        assert str(caught.value) == message
