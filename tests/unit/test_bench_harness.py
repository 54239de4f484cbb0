"""The benchmark harness keeps working: a tiny run writes every figure with the
baseline it was measured against in the same run, and their ratio."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def test_quick_federation_run_measures_catch_up_and_lag_between_two_gateways(
    tmp_path: Path,
) -> None:
    result = _run_bench("--only", "federation", out=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    report: dict[str, Any] = json.loads((tmp_path / "latest.json").read_text())
    figures = {f["name"]: f for f in report["figures"]}
    catch_up = figures["federation.sqlite.catch_up"]
    assert catch_up["baseline"]["name"] == "federation.sqlite.source_ingest"
    assert catch_up["target"] == {"on": "ratio", "op": ">=", "threshold": 0.4}
    # Every entry of the source's log (its member records and 2,000 listings) arrived.
    assert catch_up["detail"]["entries"] >= 2_000
    assert math.isclose(
        catch_up["ratio"], catch_up["value"] / catch_up["baseline"]["value"], rel_tol=1e-9
    )
    lag = figures["federation.sqlite.lag_p99"]
    assert lag["unit"] == "ms" and lag["value"] >= lag["detail"]["p50_ms"] > 0
    assert lag["detail"]["records"] > 0


def test_replication_lag_counts_from_acknowledgement_to_the_first_cursor_past_the_index() -> None:
    from bench.federation import _Sampler

    sampler = _Sampler(lambda: 0)
    sampler.samples = [(10.0, 0), (10.5, 3), (11.0, 3), (12.0, 5)]
    # Index 0 and 2 are past at 10.5; index 3 and 4 only at 12.0; an ack after the
    # cursor passed counts as no lag.
    lags = sampler.lags([(10.1, 0), (10.2, 2), (11.5, 3), (11.9, 4), (10.6, 1)])
    assert sorted(lags) == pytest.approx(sorted([0.4, 0.3, 0.5, 0.1, 0.0]))


def test_replication_lag_refuses_an_index_the_replica_never_reached() -> None:
    from bench.federation import _Sampler

    sampler = _Sampler(lambda: 0)
    sampler.samples = [(1.0, 2)]
    with pytest.raises(RuntimeError, match="index 2 never reached"):
        sampler.lags([(0.5, 2)])


def test_the_append_growth_leaves_out_the_warm_up_batches() -> None:
    from bench.merkle_bench import WARM_BATCHES, Appends

    appends = Appends()
    for n, seconds in ((512, 1.0), (512, 1.0), (512, 0.5), (256, 0.25)):
        appends.add(n, seconds)
    assert WARM_BATCHES == 2
    assert appends.steady_us_per_record == pytest.approx(1e6 * 0.75 / 768)
    assert appends.us_per_record == pytest.approx(1e6 * 2.75 / 1792)
    few = Appends()
    few.add(512, 1.0)  # no batch past the warm-up: every batch counts
    assert few.steady_us_per_record == pytest.approx(1e6 / 512)


def test_the_stage_profile_counts_every_record_after_its_warm_up(tmp_path: Path) -> None:
    """``python -m bench.stages``: 64 records in batches of 16, the first batch warms up;
    the other 48 are accepted and each stage took some CPU. Then 20 counted check calls
    of 1,000 subjects (the run itself refuses a call whose listed half is not listed)."""
    from bench.stages import CHECK_BATCH, run_once

    stages, checks, verify_us = run_once(tmp_path, records=64, batch=16)
    assert stages.refused == []
    assert stages.records == 48
    assert min(stages.parse, stages.check, stages.admit, stages.append) > 0
    assert verify_us > 0
    assert "µs a record of CPU" in stages.line(verify_us)
    assert checks.subjects == 20 * CHECK_BATCH
    assert min(checks.request, checks.validate, checks.lookup, checks.reply) > 0
    assert "µs a subject of CPU" in checks.line()
