"""Streaming ingest: one stream of distinct signed listings from one client, one record
a message (SubmitRecords) and in batches (SubmitBatches); records/s verified, appended
and durable, against raw Ed25519 verification and a bare bidi echo of the same run."""

from __future__ import annotations

from dataclasses import dataclass

from . import _data
from ._context import Context
from ._load import bidi_stream
from ._procs import ServerHandle
from ._results import Figure, Measure, Target, ratio
from ._setup import Member
from .echo import ed25519_verify, stream_echo

NAME = "ingest"
METHOD = "/alliance.v1.Exchange/SubmitRecords"
BATCHES = "/alliance.v1.Exchange/SubmitBatches"
# Records per SubmitBatches message: the client's default (clients.client.BATCH_RECORDS),
# and the sizes the sweep compares (docs/PERFORMANCE.md, "Batch size").
BATCH = 256
SWEEP = (1, 16, 64, 256, 1000)


def run(ctx: Context) -> None:
    verify = ed25519_verify(ctx)
    echo = stream_echo(ctx, "sync")
    n = ctx.sizes.ingest_records
    authority = ctx.alliance.authority
    for backend in ctx.backends:
        gateway = ctx.gateway(backend)
        durability = (
            "SQLite WAL, synchronous=FULL"
            if backend.is_sqlite
            else "PostgreSQL, synchronous_commit=on"
        )
        streamed = stream_listings(ctx, gateway.handle, authority, n, f"ingest-{backend.name}")
        gateway.listed.extend(range(streamed.start, streamed.start + streamed.stored))
        single = _figures(
            ctx,
            backend.name,
            "stream",
            streamed,
            verify,
            echo,
            Target("ratio", ">=", 0.5),
            f"one record a SubmitRecords message; signature verified, appended, durable "
            f"({durability}); one stream",
        )
        batched = stream_batches(
            ctx, gateway.handle, authority, n, BATCH, f"ingest-batched-{backend.name}"
        )
        gateway.listed.extend(range(batched.start, batched.start + batched.stored))
        rate = _figures(
            ctx,
            backend.name,
            "batched",
            batched,
            verify,
            echo,
            Target("ratio", ">=", 0.8),
            f"{BATCH} records a SubmitBatches message; otherwise as the one-record stream",
        )
        ctx.report.add(
            Figure(
                name=f"ingest.{backend.name}.batched_vs_stream",
                benchmark=NAME,
                backend=backend.name,
                value=rate,
                unit="records/s",
                baseline=Measure(f"ingest.{backend.name}.stream", single, "records/s"),
                ratio=ratio(rate, single),
                ratio_of="batched ingest / one-record-message ingest, same gateway",
            )
        )


def _figures(
    ctx: Context,
    backend: str,
    kind: str,
    streamed: Streamed,
    verify: Measure,
    echo: Measure,
    target: Target,
    note: str,
) -> float:
    detail = {
        "records": streamed.stored,
        "seconds": round(streamed.seconds, 3),
        "gateway_cpu_us_per_record": round(streamed.cpu_us_per_record, 1),
        "gateway_cores_busy": round(streamed.cpu_seconds / streamed.seconds, 2),
    }
    ctx.report.add(
        Figure(
            name=f"ingest.{backend}.{kind}",
            benchmark=NAME,
            backend=backend,
            value=streamed.rate,
            unit="records/s",
            baseline=verify,
            ratio=ratio(streamed.rate, verify.value),
            ratio_of="ingest / one-core Ed25519 verify",
            target=target,
            note=note,
            detail=detail,
        )
    )
    ctx.report.add(
        Figure(
            name=f"ingest.{backend}.{kind}_vs_stream_echo",
            benchmark=NAME,
            backend=backend,
            value=streamed.rate,
            unit="records/s",
            baseline=echo,
            ratio=ratio(streamed.rate, echo.value),
            ratio_of="ingest / bidi echo messages",
            detail=detail,
        )
    )
    return streamed.rate


def sweep(ctx: Context) -> None:
    """``batch-size``: records/s by records a SubmitBatches message, one after another on
    one SQLite gateway (how BATCH was chosen)."""
    verify = ed25519_verify(ctx)
    backend = next(b for b in ctx.backends if b.is_sqlite)
    gateway = ctx.gateway(backend)
    n = max(1_000, ctx.sizes.ingest_records // 2)
    for size in SWEEP:
        streamed = stream_batches(
            ctx, gateway.handle, ctx.alliance.authority, n, size, f"ingest-sweep-{size}"
        )
        gateway.listed.extend(range(streamed.start, streamed.start + streamed.stored))
        ctx.report.add(
            Figure(
                name=f"ingest.sqlite.batch_{size}",
                benchmark="batch-size",
                backend="sqlite",
                value=streamed.rate,
                unit="records/s",
                baseline=verify,
                ratio=ratio(streamed.rate, verify.value),
                ratio_of="ingest / one-core Ed25519 verify",
                note=f"batch-size sweep: {size} records a SubmitBatches message",
                detail={
                    "records": streamed.stored,
                    "seconds": round(streamed.seconds, 3),
                    "gateway_cpu_us_per_record": round(streamed.cpu_us_per_record, 1),
                },
            )
        )


@dataclass(frozen=True)
class Streamed:
    start: int  # the first subject number of the listings
    stored: int
    seconds: float
    cpu_seconds: float = 0.0  # the gateway process's CPU time meanwhile (all threads)

    @property
    def rate(self) -> float:
        return self.stored / self.seconds

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu_seconds / self.stored * 1e6 if self.stored else 0.0


def stream_listings(
    ctx: Context, gateway: ServerHandle, member: Member, count: int, label: str
) -> Streamed:
    """One SubmitRecords stream of ``count`` fresh listings signed by ``member`` (the
    gateway sampled by --profile as ``label``); every record must be stored."""
    start = ctx.subjects(count)
    requests = _data.submit_requests(_data.signed_listings(member, start, count))
    cpu = gateway.cpu_seconds()
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
    return Streamed(start, stored, result.seconds, gateway.cpu_seconds() - cpu)


def stream_batches(
    ctx: Context, gateway: ServerHandle, member: Member, count: int, batch: int, label: str
) -> Streamed:
    """One SubmitBatches stream of ``count`` fresh listings in batches of ``batch``;
    every record must be stored."""
    start = ctx.subjects(count)
    records = _data.submit_requests(_data.signed_listings(member, start, count))
    requests = _data.batch_requests(records, batch)
    cpu = gateway.cpu_seconds()
    with ctx.profiled(label, gateway.pid):
        result = bidi_stream(
            gateway.port,
            member.credentials(),
            BATCHES,
            requests,
            count=len(requests),
            seconds=max(30.0, count / 100),
            timeout_s=max(60.0, count / 50),
        )
    stored = _data.count_stored_in_batches(result.responses)
    if stored != count:
        raise RuntimeError(
            f"{label}: {count} records in {len(requests)} batches, {result.sent} batches sent, "
            f"{stored} stored"
        )
    return Streamed(start, stored, result.seconds, gateway.cpu_seconds() - cpu)
