"""Streaming ingest: SubmitRecords with distinct signed listings from one client;
records/s verified, appended and durable, against raw Ed25519 verification."""

from __future__ import annotations

from . import _data
from ._context import Context
from ._load import bidi_stream
from ._results import Figure, Target, ratio
from .echo import ed25519_verify, stream_echo

NAME = "ingest"
METHOD = "/alliance.v1.Exchange/SubmitRecords"


def run(ctx: Context) -> None:
    verify = ed25519_verify(ctx)
    echo = stream_echo(ctx, "sync")
    n = ctx.sizes.ingest_records
    authority = ctx.alliance.authority
    for backend in ctx.backends:
        gateway = ctx.gateway(backend)
        start = ctx.subjects(n)
        requests = _data.submit_requests(_data.signed_listings(authority, start, n))
        with ctx.profiled(f"ingest-{backend.name}", gateway.handle.pid):
            result = bidi_stream(
                gateway.handle.port,
                authority.credentials(),
                METHOD,
                requests,
                count=n,
                seconds=max(30.0, n / 200),
                timeout_s=max(60.0, n / 100),
            )
        stored = _data.count_stored(result.responses)
        if stored != result.sent:
            raise RuntimeError(
                f"ingest: {result.sent} sent, {stored} stored ({result.responses[:1]})"
            )
        gateway.listed.extend(range(start, start + stored))
        rate = stored / result.seconds
        detail = {"records": stored, "seconds": round(result.seconds, 3)}
        durability = (
            "SQLite WAL, synchronous=FULL"
            if backend.is_sqlite
            else "PostgreSQL, synchronous_commit=on"
        )
        ctx.report.add(
            Figure(
                name=f"ingest.{backend.name}.stream",
                benchmark=NAME,
                backend=backend.name,
                value=rate,
                unit="records/s",
                baseline=verify,
                ratio=ratio(rate, verify.value),
                ratio_of="ingest / one-core Ed25519 verify",
                target=Target("ratio", ">=", 0.5),
                note=f"signature verified, appended, durable ({durability}); one stream",
                detail=detail,
            )
        )
        ctx.report.add(
            Figure(
                name=f"ingest.{backend.name}.vs_stream_echo",
                benchmark=NAME,
                backend=backend.name,
                value=rate,
                unit="records/s",
                baseline=echo,
                ratio=ratio(rate, echo.value),
                ratio_of="ingest / bidi echo messages",
                detail=detail,
            )
        )
