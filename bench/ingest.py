"""Streaming ingest: SubmitRecords with distinct signed listings from one client;
records/s verified, appended and durable, against raw Ed25519 verification."""

from __future__ import annotations

from dataclasses import dataclass

from . import _data
from ._context import Context
from ._load import bidi_stream
from ._procs import ServerHandle
from ._results import Figure, Target, ratio
from ._setup import Member
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
        streamed = stream_listings(ctx, gateway.handle, authority, n, f"ingest-{backend.name}")
        gateway.listed.extend(range(streamed.start, streamed.start + streamed.stored))
        stored = streamed.stored
        rate = streamed.rate
        detail = {"records": stored, "seconds": round(streamed.seconds, 3)}
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


@dataclass(frozen=True)
class Streamed:
    start: int  # the first subject number of the listings
    stored: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.stored / self.seconds


def stream_listings(
    ctx: Context, gateway: ServerHandle, member: Member, count: int, label: str
) -> Streamed:
    """One SubmitRecords stream of ``count`` fresh listings signed by ``member`` (the
    gateway sampled by --profile as ``label``); every record must be stored."""
    start = ctx.subjects(count)
    requests = _data.submit_requests(_data.signed_listings(member, start, count))
    with ctx.profiled(label, gateway.pid):
        result = bidi_stream(
            gateway.port,
            member.credentials(),
            METHOD,
            requests,
            count=count,
            seconds=max(30.0, count / 100),
            timeout_s=max(60.0, count / 50),
        )
    stored = _data.count_stored(result.responses)
    if stored != count:
        raise RuntimeError(
            f"{label}: {count} records to send, {result.sent} sent, {stored} stored "
            f"({result.responses[:1]})"
        )
    return Streamed(start, stored, result.seconds)
