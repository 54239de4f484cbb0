"""The plan `make mutation` follows (pyproject.toml, docs/TESTING.md): every module in
scope is mutated in exactly one group, and every test a group names exists."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]
GROUPS = PYPROJECT["alliance-mutation"]["groups"]


def test_every_module_in_scope_is_in_exactly_one_group() -> None:
    planned = Counter(m for group in GROUPS for m in group["modules"])
    assert sorted(planned) == sorted(PYPROJECT["mutmut"]["only_mutate"])
    assert [m for m, n in planned.items() if n > 1] == []


def test_every_named_test_exists() -> None:
    for group in GROUPS:
        assert group["tests"], group["name"]
        for test in group["tests"]:
            path, _, name = test.partition("::")
            assert (ROOT / path).is_file(), test
            if name:
                assert f"def {name}(" in (ROOT / path).read_text("utf-8"), test
