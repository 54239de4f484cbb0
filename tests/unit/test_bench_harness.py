"""The benchmark harness keeps working: a tiny run writes every figure with the
baseline it was measured against in the same run, and their ratio."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _run_bench(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_quick_merkle_run_reports_every_figure_with_baseline_and_ratio(tmp_path: Path) -> None:
    result = _run_bench("--only", "merkle", out=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    report: dict[str, Any] = json.loads((tmp_path / "latest.json").read_text())
    figures = {f["name"]: f for f in report["figures"]}
    expected = {
        f"merkle.sqlite.{what}@{size}"
        for size in ("1e3", "1e4")
        for what in ("append", "log_append", "proof_mean", "proof_p99")
    } | {"merkle.sqlite.append_cost_growth"}
    assert expected <= set(figures), sorted(expected - set(figures))
    for name, f in figures.items():
        baseline = f["baseline"]
        assert baseline["name"] and baseline["unit"], name
        assert isinstance(baseline["value"], float) and baseline["value"] > 0, name
        assert isinstance(f["value"], float) and f["value"] > 0, name
        assert math.isfinite(f["ratio"]) and f["ratio"] > 0, name
        assert f["ratio_of"], name
        assert math.isclose(
            f["ratio"], f["value"] / baseline["value"], rel_tol=1e-9
        ) or math.isclose(f["ratio"], baseline["value"] / f["value"], rel_tol=1e-9), name
        if f["target"] is not None:
            assert isinstance(f["met"], bool), name
    assert figures["merkle.sqlite.proof_mean@1e4"]["target"] == {
        "on": "value",
        "op": "<",
        "threshold": 1.0,
    }
    assert report["meta"]["mode"] == "quick"
    assert "| merkle.sqlite.append_cost_growth |" in (tmp_path / "latest.md").read_text()


def test_unknown_benchmark_is_refused_with_the_known_names(tmp_path: Path) -> None:
    result = _run_bench("--only", "nonesuch", out=tmp_path)
    assert result.returncode == 2
    assert "merkle" in result.stderr and "nonesuch" in result.stderr
    assert not (tmp_path / "latest.json").exists()
