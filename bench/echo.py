"""Baselines: raw Ed25519 verification, and bare gRPC echo servers (sync and asyncio)
with the gateway's TLS settings, thread pool and client concurrency."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal, TypeAlias

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import _data
from ._context import CLIENT_THREADS, Context
from ._load import bidi_stream, closed_loop, open_loop
from ._procs import ECHO_STREAM, ECHO_UNARY, EchoSpec, server_process
from ._results import Figure, Measure, ratio

NAME = "echo"
Flavor: TypeAlias = Literal["sync", "aio"]
# Baselines are the best of a few trials, so a stray load spike on the machine cannot
# lower a baseline and flatter the ratio of a figure measured against it.
_TRIALS = 2


def ed25519_verify(ctx: Context) -> Measure:
    """Verifications per second on one core, over the PAE of a bench listing."""

    def measure() -> Measure:
        env = _data.signed_listings(ctx.alliance.authority, 0, 1)[0]
        message = env.pae()
        key = Ed25519PrivateKey.generate()
        signature = key.sign(message)
        public = key.public_key()
        n = ctx.sizes.verify_count
        for _ in range(min(1_000, n)):
            public.verify(signature, message)
        seconds = []
        for _ in range(_TRIALS):
            began = time.perf_counter()
            for _ in range(n):
                public.verify(signature, message)
            seconds.append(time.perf_counter() - began)
        return Measure(
            "ed25519.verify",
            n / min(seconds),
            "verifies/s",
            detail={
                "count": n,
                "trials": _TRIALS,
                "pae_bytes": len(message),
                "signature_bytes": len(signature),
            },
        )

    return ctx.baseline("ed25519.verify", measure)


def _spec(ctx: Context, flavor: Flavor) -> EchoSpec:
    return EchoSpec(
        flavor,
        ctx.alliance.server_tls,
        ctx.worker_threads,
        ctx.max_message_bytes,
    )


def _submit_sized_requests(ctx: Context) -> list[bytes]:
    """Bytes of the size of the SubmitRecordRequests the gateway benchmarks send."""
    return _data.submit_requests(_data.signed_listings(ctx.alliance.authority, 0, 64))


def unary_echo(ctx: Context, flavor: Flavor = "sync", threads: int = CLIENT_THREADS) -> Measure:
    """Unary echo calls per second at the gateway benchmarks' concurrency (or at
    ``threads`` concurrent clients, named ``echo.<flavor>.unary@<threads>``)."""
    name = f"echo.{flavor}.unary" + ("" if threads == CLIENT_THREADS else f"@{threads}")

    def measure() -> Measure:
        requests = _submit_sized_requests(ctx)
        with server_process(f"echo-{flavor}", _spec(ctx, flavor)) as server:
            trials = [
                closed_loop(
                    server.port,
                    ctx.alliance.authority.credentials,
                    ECHO_UNARY,
                    requests,
                    threads=threads,
                    seconds=ctx.sizes.echo_seconds,
                    max_calls=10_000_000,
                )
                for _ in range(_TRIALS)
            ]
        for t in trials:
            _require_clean(t.errors, t.first_error, f"echo-{flavor}")
        result = max(trials, key=lambda t: t.rate)
        return Measure(
            name,
            result.rate,
            "calls/s",
            detail={
                "client_threads": threads,
                "server_threads": ctx.worker_threads,
                "request_bytes": len(requests[0]),
                "calls": result.ok,
                "trials": _TRIALS,
                "p50_ms": round(result.percentile_ms(50), 3),
            },
        )

    return ctx.baseline(name, measure)


def stream_echo(ctx: Context, flavor: Flavor = "sync") -> Measure:
    """Messages per second through one bidi echo stream."""

    def measure() -> Measure:
        requests = _submit_sized_requests(ctx)
        with server_process(f"echo-{flavor}", _spec(ctx, flavor)) as server:
            trials = [
                bidi_stream(
                    server.port,
                    ctx.alliance.authority.credentials(),
                    ECHO_STREAM,
                    requests,
                    count=ctx.sizes.stream_messages,
                    seconds=ctx.sizes.stream_seconds,
                    timeout_s=ctx.sizes.stream_seconds * 6 + 30,
                )
                for _ in range(_TRIALS)
            ]
        for t in trials:
            if len(t.responses) != t.sent:
                raise RuntimeError(f"echo-{flavor}: {t.sent} sent, {len(t.responses)} back")
        result = max(trials, key=lambda t: t.rate)
        return Measure(
            f"echo.{flavor}.stream",
            result.rate,
            "messages/s",
            detail={
                "messages": result.sent,
                "trials": _TRIALS,
                "message_bytes": len(requests[0]),
            },
        )

    return ctx.baseline(f"echo.{flavor}.stream", measure)


def latency_echo(ctx: Context, request: bytes, rate: float, label: str) -> tuple[Measure, Measure]:
    """p50 and p99 of echo calls of ``request``'s size, offered at ``rate`` calls/s."""
    p99: list[Measure] = []

    def measure() -> Measure:
        with server_process("echo-sync", _spec(ctx, "sync")) as server:
            result = open_loop(
                server.port,
                ctx.alliance.authority.credentials,
                ECHO_UNARY,
                [request],
                threads=CLIENT_THREADS,
                rate=rate,
                seconds=ctx.sizes.latency_seconds,
            )
        _require_clean(result.errors, result.first_error, "echo-sync")
        detail = {"offered_rate": round(rate, 1), "calls": result.ok, "bytes": len(request)}
        p99.append(
            Measure(f"echo.sync.p99@{label}", result.percentile_ms(99), "ms", "lower", detail)
        )
        return Measure(f"echo.sync.p50@{label}", result.percentile_ms(50), "ms", "lower", detail)

    p50 = ctx.baseline(f"echo.sync.p50@{label}", measure)
    return p50, ctx.baseline(f"echo.sync.p99@{label}", lambda: p99[0])


def _require_clean(errors: int, first: str, what: str) -> None:
    if errors:
        raise RuntimeError(f"{what}: {errors} calls failed, first: {first}")


def run(ctx: Context) -> None:
    """Sync versus asyncio echo servers, so the docs can say why sync was chosen."""
    ed25519_verify(ctx)
    pairs: Sequence[tuple[Measure, Measure]] = (
        (unary_echo(ctx, "sync"), unary_echo(ctx, "aio")),
        (stream_echo(ctx, "sync"), stream_echo(ctx, "aio")),
    )
    for sync, aio in pairs:
        kind = sync.name.rsplit(".", 1)[1]
        ctx.report.add(
            Figure(
                name=f"echo.aio_vs_sync.{kind}",
                benchmark=NAME,
                backend=None,
                value=aio.value,
                unit=aio.unit,
                baseline=sync,
                ratio=ratio(aio.value, sync.value),
                ratio_of="aio / sync",
                note="grpc.aio server vs grpc.server(ThreadPoolExecutor), same TLS and load",
            )
        )
