"""Unary submit: SubmitRecord calls per second at 8 and at 64 concurrent clients, each
beside the echo baseline at the same concurrency."""

from __future__ import annotations

from . import _data
from ._context import CLIENT_THREADS, Context
from ._load import closed_loop
from ._results import Figure, Target, ratio
from .echo import unary_echo

NAME = "unary"
# Client concurrencies (issue 19: 0.4 x echo at 8 and at 64 concurrent clients).
CONCURRENCY = (CLIENT_THREADS, 64)
METHOD = "/alliance.v1.Exchange/SubmitRecord"


def run(ctx: Context) -> None:
    for threads in CONCURRENCY:
        _run(ctx, threads)


def _run(ctx: Context, threads: int) -> None:
    echo = unary_echo(ctx, "sync", threads)
    n = ctx.sizes.unary_records
    authority = ctx.alliance.authority
    suffix = "" if threads == CLIENT_THREADS else f"@{threads}"
    for backend in ctx.backends:
        gateway = ctx.gateway(backend)
        start = ctx.subjects(n)
        requests = _data.submit_requests(_data.signed_listings(authority, start, n))
        with ctx.profiled(f"unary-{backend.name}{suffix}", gateway.handle.pid):
            result = closed_loop(
                gateway.handle.port,
                authority.credentials,
                METHOD,
                requests,
                threads=threads,
                seconds=ctx.sizes.unary_seconds,
                max_calls=n,
            )
        if result.errors:
            raise RuntimeError(f"unary: {result.errors} calls failed, first: {result.first_error}")
        ctx.report.add(
            Figure(
                name=f"unary.{backend.name}.submit{suffix}",
                benchmark=NAME,
                backend=backend.name,
                value=result.rate,
                unit="calls/s",
                baseline=echo,
                ratio=ratio(result.rate, echo.value),
                ratio_of="submit / bare echo",
                target=Target("ratio", ">=", 0.4),
                note=f"{threads} client threads, one channel each; each call a new "
                "signed listing, answered after its batch commits",
                detail={
                    "calls": result.ok,
                    "p50_ms": round(result.percentile_ms(50), 3),
                    "p99_ms": round(result.percentile_ms(99), 3),
                },
            )
        )
