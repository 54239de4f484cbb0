"""``make soak`` in small: five seconds of the mixed load must run clean and report sanely."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from gateway.ops.soak import MIX, STREAM_RECORDS, percentile


def test_soak_runs_clean_for_five_seconds(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.ops.soak",
            "--duration-s",
            "5",
            "--rate",
            "30",
            "--seed",
            "7",
            "--json",
            str(out),
            "--dir",
            str(tmp_path / "alliances"),
        ],
        capture_output=True,
        text=True,
        timeout=120,  # subprocess.run kills the child when this passes
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    print(done.stdout)

    assert report["errors"] == 0 and report["error_samples"] == []
    # How many operations a machine gets through in five seconds depends on how busy it
    # is: what is asserted is the accounting, not a throughput. Every planned operation
    # was issued or counted as skipped for running behind its schedule.
    done_ops = sum(report["ops"].values())
    assert report["ops_planned"] == 150 and 0 < done_ops <= 150
    assert report["ops_skipped"] == 150 - done_ops and report["max_behind_schedule_s"] >= 0
    assert set(report["ops"]) == {op for op, _ in MIX}
    assert report["ops"]["submit"] > 0 and report["ops"]["check"] > 0
    assert report["duration_s"] >= 4.5  # the load ran its whole duration
    assert 0 < report["rss_start_mb"] < 4096 and 0 < report["rss_end_mb"] < 4096
    assert report["cpu_percent"] > 0 and len(report["load_average_1m"]) == 2
    federation = report["federation"]
    assert federation["converged_after_s"] is not None
    size = federation["log_sizes"][0]
    assert federation["log_sizes"] == [size, size]
    # Each submitted listing is a distinct record, and both logs hold all of them.
    assert size >= report["ops"]["submit"] + STREAM_RECORDS * report["ops"]["submit_stream"]
    assert report["watch"] == {"zj": size, "gd": size}
    for op, row in report["latency"].items():
        assert row["count"] == report["ops"][op]
        for edge in ("first", "last"):
            p50, p99 = row[edge]["p50_ms"], row[edge]["p99_ms"]
            if row[edge]["n"]:
                assert 0 < p50 <= p99, (op, edge, row)
    assert "errors 0" in done.stdout and "drift" in done.stdout


def test_percentile_is_nearest_rank() -> None:
    assert math.isnan(percentile([], 50))
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 99) == 99.0
    assert percentile([5.0], 99) == 5.0
