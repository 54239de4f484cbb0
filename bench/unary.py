"""Unary submit: SubmitRecord calls per second at the echo baseline's concurrency."""

from __future__ import annotations

from . import _data
from ._context import CLIENT_THREADS, Context
from ._load import closed_loop
from ._results import Figure, Target, ratio
from .echo import unary_echo

NAME = "unary"
METHOD = "/alliance.v1.Exchange/SubmitRecord"


def run(ctx: Context) -> None:
    echo = unary_echo(ctx, "sync")
    n = ctx.sizes.unary_records
    authority = ctx.alliance.authority
    for backend in ctx.backends:
        gateway = ctx.gateway(backend)
        start = ctx.subjects(n)
        requests = _data.submit_requests(_data.signed_listings(authority, start, n))
        with ctx.profiled(f"unary-{backend.name}", gateway.handle.pid):
            result = closed_loop(
                gateway.handle.port,
                authority.credentials,
                METHOD,
                requests,
                threads=CLIENT_THREADS,
                seconds=ctx.sizes.unary_seconds,
                max_calls=n,
            )
        if result.errors:
            raise RuntimeError(f"unary: {result.errors} calls failed, first: {result.first_error}")
        ctx.report.add(
            Figure(
                name=f"unary.{backend.name}.submit",
                benchmark=NAME,
                backend=backend.name,
                value=result.rate,
                unit="calls/s",
                baseline=echo,
                ratio=ratio(result.rate, echo.value),
                ratio_of="submit / bare echo",
                target=Target("ratio", ">=", 0.4),
                note=f"{CLIENT_THREADS} client threads, one channel each; each call a new "
                "signed listing, answered after its batch commits",
                detail={
                    "calls": result.ok,
                    "p50_ms": round(result.percentile_ms(50), 3),
                    "p99_ms": round(result.percentile_ms(99), 3),
                },
            )
        )
