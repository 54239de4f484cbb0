"""Load generators: closed-loop unary (N client threads, one channel each), open-loop
unary at a fixed rate (latency without coordinated omission), and one bidi stream.

Requests and responses are raw bytes: the client never encodes or decodes during a
measurement, so the same client drives the gateway and the echo baselines alike.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_READY_TIMEOUT_S = 30.0


@dataclass
class LoadResult:
    ok: int
    errors: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000.0


@dataclass
class StreamResult:
    sent: int
    responses: list[bytes]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.responses) / self.seconds if self.seconds > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def open_channel(port: int, credentials: grpc.ChannelCredentials) -> grpc.Channel:
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}",
        credentials,
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            # One connection per channel, never shared between the client threads.
            ("grpc.use_local_subchannel_pool", 1),
        ],
    )
    grpc.channel_ready_future(channel).result(timeout=_READY_TIMEOUT_S)
    return channel


def unary_call(channel: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    """A unary method taking and returning raw bytes (no client-side (de)serialization)."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
    return call


def closed_loop(
    port: int,
    credentials: Callable[[], grpc.ChannelCredentials],
    method: str,
    requests: Sequence[bytes],
    *,
    threads: int,
    seconds: float,
    max_calls: int,
    timeout_s: float = 30.0,
) -> LoadResult:
    """``threads`` clients each call as fast as answers come back, until ``seconds``
    pass or ``max_calls`` are made (request ``i`` is ``requests[i % len]``)."""
    channels = [open_channel(port, credentials()) for _ in range(threads)]
    counter = itertools.count()
    barrier = threading.Barrier(threads + 1)
    results = [LoadResult(0, 0, 0.0) for _ in range(threads)]
    deadline = [0.0]

    def worker(k: int) -> None:
        call = unary_call(channels[k], method)
        mine = results[k]
        barrier.wait()
        end = deadline[0]
        while True:
            i = next(counter)
            start = time.perf_counter()
            if i >= max_calls or start >= end:
                return
            try:
                call(requests[i % len(requests)], timeout=timeout_s)
            except grpc.RpcError as e:
                mine.errors += 1
                mine.first_error = mine.first_error or f"{e.code()}: {e.details()}"
                continue
            mine.latencies_s.append(time.perf_counter() - start)
            mine.ok += 1

    workers = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    deadline[0] = time.perf_counter() + seconds
    barrier.wait()
    began = time.perf_counter()
    for w in workers:
        w.join(seconds + timeout_s + 10)
    elapsed = time.perf_counter() - began
    for ch in channels:
        ch.close()
    return _merge(results, elapsed)


def open_loop(
    port: int,
    credentials: Callable[[], grpc.ChannelCredentials],
    method: str,
    requests: Sequence[bytes],
    *,
    threads: int,
    rate: float,
    seconds: float,
    timeout_s: float = 30.0,
) -> LoadResult:
    """Calls scheduled at a fixed ``rate``; latency counts from the scheduled time, so
    a slow answer that delays later calls is charged to them too."""
    channels = [open_channel(port, credentials()) for _ in range(threads)]
    total = max(1, int(rate * seconds))
    interval = 1.0 / rate
    counter = itertools.count()
    barrier = threading.Barrier(threads + 1)
    results = [LoadResult(0, 0, 0.0) for _ in range(threads)]
    origin = [0.0]

    def worker(k: int) -> None:
        call = unary_call(channels[k], method)
        mine = results[k]
        barrier.wait()
        t0 = origin[0]
        while (i := next(counter)) < total:
            scheduled = t0 + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                call(requests[i % len(requests)], timeout=timeout_s)
            except grpc.RpcError as e:
                mine.errors += 1
                mine.first_error = mine.first_error or f"{e.code()}: {e.details()}"
                continue
            mine.latencies_s.append(time.perf_counter() - scheduled)
            mine.ok += 1

    workers = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    origin[0] = time.perf_counter() + 0.05
    barrier.wait()
    for w in workers:
        w.join(seconds * 3 + timeout_s + 10)
    elapsed = time.perf_counter() - origin[0]
    for ch in channels:
        ch.close()
    return _merge(results, elapsed)


def bidi_stream(
    port: int,
    credentials: grpc.ChannelCredentials,
    method: str,
    requests: Sequence[bytes],
    *,
    count: int,
    seconds: float,
    timeout_s: float,
) -> StreamResult:
    """One bidi call: send up to ``count`` requests (no more after ``seconds``), read
    every answer; the rate is answers per second until the last answer."""
    channel = open_channel(port, credentials)
    sent = [0]
    deadline = [0.0]

    def outgoing() -> Iterator[bytes]:
        for i in range(count):
            if time.perf_counter() >= deadline[0]:
                return
            sent[0] += 1
            yield requests[i % len(requests)]

    call: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(method)
    responses: list[bytes] = []
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    for response in call(outgoing(), timeout=timeout_s):
        responses.append(response)
    elapsed = time.perf_counter() - began
    channel.close()
    return StreamResult(sent[0], responses, elapsed)


@dataclass
class PacedResult:
    sent: int
    # (when the answer arrived, perf_counter seconds; the raw answer), in arrival order
    answers: list[tuple[float, bytes]]
    seconds: float


def paced_stream(
    port: int,
    credentials: grpc.ChannelCredentials,
    method: str,
    requests: Sequence[bytes],
    *,
    rate: float,
    seconds: float,
    timeout_s: float,
) -> PacedResult:
    """One bidi call sending ``requests`` at a fixed ``rate`` (open loop) for at most
    ``seconds``; every answer is kept with its arrival time."""
    channel = open_channel(port, credentials)
    total = min(len(requests), max(1, int(rate * seconds)))
    sent = [0]
    origin = [0.0]

    def outgoing() -> Iterator[bytes]:
        for i in range(total):
            delay = origin[0] + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[0] += 1
            yield requests[i]

    call: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(method)
    answers: list[tuple[float, bytes]] = []
    origin[0] = time.perf_counter()
    for response in call(outgoing(), timeout=timeout_s):
        answers.append((time.perf_counter(), response))
    elapsed = time.perf_counter() - origin[0]
    channel.close()
    return PacedResult(sent[0], answers, elapsed)


def _merge(results: Sequence[LoadResult], elapsed: float) -> LoadResult:
    return LoadResult(
        ok=sum(r.ok for r in results),
        errors=sum(r.errors for r in results),
        seconds=elapsed,
        latencies_s=[x for r in results for x in r.latencies_s],
        first_error=next((r.first_error for r in results if r.first_error), ""),
    )
