"""Batched ingest under two loads the issue names (round three of docs/PERFORMANCE.md):

- ``mixed``: single-subject check latency (p50, p99, open loop) while one member
  bulk-loads over SubmitBatches at about half the gateway's batched maximum, beside the
  same checks on the same gateway idle: what a platform feels while another alliance
  member bulk-loads;
- ``ingest-large``: batched streaming ingest into a gateway whose log already holds the
  large-log size (10^6 entries in a full run), beside one-core Ed25519 verify.
"""

from __future__ import annotations

import threading
import time

from . import _data
from ._context import UNLISTED_SUBJECTS, Context, RunningGateway
from ._load import PacedResult, open_loop, paced_stream
from ._procs import server_process
from ._results import Figure, Measure, Target, ratio
from ._setup import Backend, Member
from .check import METHOD as CHECK
from .echo import ed25519_verify
from .ingest import BATCH, BATCHES, stream_batches
from .scrub import stream_base

# Single-subject checks a second in both phases: enough calls for a p99, far below what
# the gateway answers (check.*.single_max), so the checks themselves load it little.
CHECK_RATE = 100.0
CHECK_THREADS = 4


def run_mixed(ctx: Context) -> None:
    for backend in ctx.backends:
        _mixed(ctx, backend)


def _checks(
    ctx: Context, gateway: RunningGateway, singles: list[bytes], label: str
) -> tuple[float, float, int]:
    """p50 and p99 (ms) and the count of single-subject checks, open loop."""
    with ctx.profiled(label, gateway.handle.pid):
        paced = open_loop(
            gateway.handle.port,
            ctx.alliance.monitor.credentials,
            CHECK,
            singles,
            threads=CHECK_THREADS,
            rate=CHECK_RATE,
            seconds=ctx.sizes.latency_seconds,
        )
    if paced.errors:
        raise RuntimeError(f"mixed: {paced.errors} checks failed: {paced.first_error}")
    return paced.percentile_ms(50), paced.percentile_ms(99), paced.ok


def _load(
    gateway: RunningGateway, member: Member, batches: list[bytes], rate: float, seconds: float
) -> tuple[threading.Thread, list[PacedResult]]:
    """A SubmitBatches stream offering ``rate`` batches/s, on a thread of its own."""
    out: list[PacedResult] = []

    def send() -> None:
        out.append(
            paced_stream(
                gateway.handle.port,
                member.credentials(),
                BATCHES,
                batches,
                rate=rate,
                seconds=seconds,
                timeout_s=max(120.0, 4 * seconds),
            )
        )

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, out


def _mixed(ctx: Context, backend: Backend) -> None:
    authority = ctx.alliance.authority
    seconds = ctx.sizes.latency_seconds
    gateway = ctx.gateway(backend)
    n = ctx.sizes.ingest_records
    peak = stream_batches(ctx, gateway.handle, authority, n, BATCH, f"mixed-peak-{backend.name}")
    gateway.listed.extend(range(peak.start, peak.start + peak.stored))
    listed = ctx.random.sample(gateway.listed, min(50, len(gateway.listed)))
    singles = [_data.check_request([i]) for i in listed]
    singles += [_data.check_request([UNLISTED_SUBJECTS + i]) for i in range(len(singles))]

    idle = _checks(ctx, gateway, singles, f"mixed-idle-{backend.name}")
    # The load: batches at half the peak rate for the checks' duration and a second on
    # either side, so every check runs while records stream in.
    load_rate = peak.rate / 2
    count = int(load_rate * (seconds + 2.0))
    start = ctx.subjects(count)
    records = _data.submit_requests(_data.signed_listings(authority, start, count))
    thread, loaded = _load(
        gateway, authority, _data.batch_requests(records, BATCH), load_rate / BATCH, seconds + 2
    )
    time.sleep(1.0)
    busy = _checks(ctx, gateway, singles, f"mixed-busy-{backend.name}")
    thread.join()
    if not loaded:
        raise RuntimeError("mixed: the bulk load did not finish")
    stored = _data.count_stored_in_batches([raw for _, raw in loaded[0].answers])
    gateway.listed.extend(range(start, start + stored))
    achieved = stored / loaded[0].seconds
    detail = {
        "check_rate": CHECK_RATE,
        "checks_idle": idle[2],
        "checks_busy": busy[2],
        "ingest_offered": round(load_rate, 1),
        "ingest_achieved": round(achieved, 1),
        "ingest_peak": round(peak.rate, 1),
    }
    for q, value, base_value in ((50, busy[0], idle[0]), (99, busy[1], idle[1])):
        name = f"mixed.{backend.name}.idle_p{q}"
        base = ctx.report.add_baseline(
            Measure(name, base_value, "ms", better="lower", detail={"calls": idle[2]})
        )
        ctx.report.add(
            Figure(
                name=f"mixed.{backend.name}.check_p{q}",
                benchmark="mixed",
                backend=backend.name,
                value=value,
                unit="ms",
                baseline=base,
                ratio=ratio(value, base.value),
                ratio_of="check latency while bulk-loading / idle",
                note=(
                    f"single-subject CheckSubjects, open loop at {CHECK_RATE:g} calls/s, "
                    f"while one SubmitBatches stream ({BATCH} records a batch) offers "
                    f"{load_rate:,.0f} records/s (half its measured peak of "
                    f"{peak.rate:,.0f}; {achieved:,.0f} stored/s)"
                ),
                detail=detail,
            )
        )


def run_large(ctx: Context) -> None:
    verify = ed25519_verify(ctx)
    authority = ctx.alliance.authority
    size = ctx.sizes.memory_size
    n = ctx.sizes.ingest_records
    for backend in ctx.backends:
        with backend.fresh("ingest-large") as url:
            config = ctx.alliance.config(url)
            ctx.alliance.prepare(config)
            base = stream_base(ctx, config, size)
            with server_process(f"gateway-large-{backend.name}", config) as handle:
                streamed = stream_batches(
                    ctx, handle, authority, n, BATCH, f"ingest-large-{backend.name}"
                )
        ctx.report.add(
            Figure(
                name=f"ingest.{backend.name}.batched_large",
                benchmark="ingest-large",
                backend=backend.name,
                value=streamed.rate,
                unit="records/s",
                baseline=verify,
                ratio=ratio(streamed.rate, verify.value),
                ratio_of="ingest / one-core Ed25519 verify",
                target=Target("ratio", ">=", 0.6),
                note=(
                    f"{BATCH} records a SubmitBatches message into a log already holding "
                    f"{base:,} entries"
                ),
                detail={"records": streamed.stored, "seconds": round(streamed.seconds, 3)},
            )
        )
