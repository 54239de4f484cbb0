"""Subject checks: CheckSubjects with 1,000 subjects a call (half listed) against the
echo baseline's messages/s, and single-subject latency at half the maximum rate."""

from __future__ import annotations

from gateway.pb.alliance.v1 import exchange_pb2 as ex

from . import _data
from ._context import CLIENT_THREADS, UNLISTED_SUBJECTS, Context, RunningGateway
from ._load import bidi_stream, closed_loop, open_channel, open_loop, unary_call
from ._results import Figure, Measure, Target, ratio
from .echo import latency_echo, unary_echo
from .ingest import METHOD as SUBMIT_STREAM

NAME = "check"
METHOD = "/alliance.v1.Exchange/CheckSubjects"
BATCH = 1_000


def _ensure_listed(ctx: Context, gateway: RunningGateway) -> None:
    """Make sure the gateway holds the pool of listed subjects (untimed)."""
    missing = ctx.sizes.check_pool - len(gateway.listed)
    if missing <= 0:
        return
    start = ctx.subjects(missing)
    authority = ctx.alliance.authority
    requests = _data.submit_requests(_data.signed_listings(authority, start, missing))
    result = bidi_stream(
        gateway.handle.port,
        authority.credentials(),
        SUBMIT_STREAM,
        requests,
        count=missing,
        seconds=600.0,
        timeout_s=600.0,
    )
    if _data.count_stored(result.responses) != missing:
        raise RuntimeError("check: could not list the subject pool")
    gateway.listed.extend(range(start, start + missing))


def _batch_requests(ctx: Context, listed: list[int], count: int) -> list[bytes]:
    requests = []
    for k in range(count):
        ids = ctx.random.sample(listed, min(BATCH // 2, len(listed)))
        unlisted = UNLISTED_SUBJECTS + k * BATCH
        ids += range(unlisted, unlisted + BATCH - len(ids))
        ctx.random.shuffle(ids)
        requests.append(_data.check_request(ids))
    return requests


def _sanity(ctx: Context, gateway: RunningGateway, request: bytes, listed: int) -> None:
    """One answered call before timing: the listed half must come back listed."""
    channel = open_channel(gateway.handle.port, ctx.alliance.monitor.credentials())
    try:
        raw = unary_call(channel, METHOD)(request, timeout=60)
    finally:
        channel.close()
    reply = ex.CheckSubjectsResponse.FromString(raw)
    found = sum(1 for r in reply.results if r.listed)
    if found != listed:
        raise RuntimeError(f"check: expected {listed} listed subjects in a call, got {found}")


def run(ctx: Context) -> None:
    echo = unary_echo(ctx, "sync")
    monitor = ctx.alliance.monitor
    for backend in ctx.backends:
        gateway = ctx.gateway(backend)
        _ensure_listed(ctx, gateway)
        requests = _batch_requests(ctx, gateway.listed, ctx.sizes.check_requests)
        _sanity(ctx, gateway, requests[0], BATCH // 2)
        with ctx.profiled(f"check-batch-{backend.name}", gateway.handle.pid):
            batch = closed_loop(
                gateway.handle.port,
                monitor.credentials,
                METHOD,
                requests,
                threads=CLIENT_THREADS,
                seconds=ctx.sizes.check_seconds,
                max_calls=1_000_000,
                timeout_s=120.0,
            )
        if batch.errors:
            raise RuntimeError(f"check: {batch.errors} calls failed: {batch.first_error}")
        subjects_per_s = batch.rate * BATCH
        ctx.report.add(
            Figure(
                name=f"check.{backend.name}.batch",
                benchmark=NAME,
                backend=backend.name,
                value=subjects_per_s,
                unit="subjects/s",
                baseline=echo,
                ratio=ratio(subjects_per_s, echo.value),
                ratio_of="subjects checked / echo messages",
                target=Target("ratio", ">=", 20.0),
                note=f"{BATCH} subjects a call, half listed, {CLIENT_THREADS} client threads; "
                f"{len(gateway.listed)} listings in the log",
                detail={
                    "calls": batch.ok,
                    "p50_ms": round(batch.percentile_ms(50), 2),
                    "request_bytes": len(requests[0]),
                },
            )
        )
        _single(ctx, gateway, backend.name, echo)


def _single(ctx: Context, gateway: RunningGateway, backend: str, echo: Measure) -> None:
    monitor = ctx.alliance.monitor
    listed = ctx.random.sample(gateway.listed, min(50, len(gateway.listed)))
    singles = [_data.check_request([i]) for i in listed]
    singles += [_data.check_request([UNLISTED_SUBJECTS + i]) for i in range(len(singles))]
    peak = closed_loop(
        gateway.handle.port,
        monitor.credentials,
        METHOD,
        singles,
        threads=CLIENT_THREADS,
        seconds=ctx.sizes.latency_seconds,
        max_calls=1_000_000,
    )
    if peak.errors:
        raise RuntimeError(f"check: {peak.errors} single calls failed: {peak.first_error}")
    rate = peak.rate / 2
    with ctx.profiled(f"check-single-{backend}", gateway.handle.pid):
        paced = open_loop(
            gateway.handle.port,
            monitor.credentials,
            METHOD,
            singles,
            threads=CLIENT_THREADS,
            rate=rate,
            seconds=ctx.sizes.latency_seconds,
        )
    if paced.errors:
        raise RuntimeError(f"check: {paced.errors} paced calls failed: {paced.first_error}")
    ctx.report.add(
        Figure(
            name=f"check.{backend}.single_max",
            benchmark=NAME,
            backend=backend,
            value=peak.rate,
            unit="calls/s",
            baseline=echo,
            ratio=ratio(peak.rate, echo.value),
            ratio_of="single-subject checks / echo",
            note=f"closed loop, {CLIENT_THREADS} client threads, one subject a call",
        )
    )
    echo_p50, echo_p99 = latency_echo(ctx, singles[0], rate, f"{rate:.0f}/s")
    for q, base in ((50, echo_p50), (99, echo_p99)):
        value = paced.percentile_ms(q)
        ctx.report.add(
            Figure(
                name=f"check.{backend}.single_p{q}",
                benchmark=NAME,
                backend=backend,
                value=value,
                unit="ms",
                baseline=base,
                ratio=ratio(value, base.value),
                ratio_of="gateway latency / echo latency at the same offered rate",
                note=f"open loop at {rate:.0f} calls/s (half the maximum), latency from the "
                "scheduled send time",
                detail={"calls": paced.ok, "offered_rate": round(rate, 1)},
            )
        )
