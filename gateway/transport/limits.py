"""Per-member limits at the edge: a request rate, concurrent streams, idle streams.

The gRPC server runs each call on a worker thread until the call ends, so a member
that opens streams and then sends nothing (or one message now and then) could pin
every worker, and a member that floods calls could starve everyone else. Hence, per
authenticated member id:

- a token bucket (``rate_per_s`` refilled, ``burst`` deep): every call takes a token
  when it is admitted, and every record of a SubmitRecords stream one more. An empty
  bucket answers RESOURCE_EXHAUSTED with the wait until the next token, in the message
  and in the standard ``grpc-retry-pushback-ms`` trailer that gRPC retry policies honour;
- at most ``max_streams`` streaming calls at once (RESOURCE_EXHAUSTED beyond), and at
  most ``max_streams_total`` of all members together (gateways excepted: configured
  peers and our own replicas are few and bounded by the configuration), so the stream
  pool (``gateway.transport.server``) always has a thread for each admitted stream;
- a SubmitRecords stream that receives no request for ``stream_idle_timeout_s`` ends
  with DEADLINE_EXCEEDED (``IdleClock``; the servicer watches it).

The interceptor applies the first two after authentication and authorization, so
buckets and counters exist only for admitted members.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gateway.errors import GatewayError

__all__ = [
    "IdleClock",
    "LimitError",
    "LimitSettings",
    "Limits",
    "StreamIdleError",
]

# Buckets refilled to the brim are forgotten once there are this many members' buckets.
_PRUNE_AT = 4096


class LimitError(GatewayError):
    """A member is over its request rate or its concurrent streams (RESOURCE_EXHAUSTED)."""

    advice = "slow down and retry later"
    reason = "rate-limited"

    def __init__(
        self,
        message: str,
        *,
        advice: str | None = None,
        retry_after_s: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, advice=advice, reason=reason)
        self.retry_after_s = retry_after_s


class StreamIdleError(GatewayError):
    """A client stream sent nothing for too long (DEADLINE_EXCEEDED)."""

    advice = "the results sent so far stand; open a new stream when you have records to send"
    reason = "stream-idle"


@dataclass(frozen=True)
class LimitSettings:
    rate_per_s: float = 0.0  # 0: no rate limit
    burst: int = 1
    max_streams: int = 4
    stream_idle_timeout_s: float = 30.0
    max_streams_total: int = 64

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or self.burst < 1:
            raise ValueError("rate_per_s must be 0 (off) or more, burst at least 1")
        if self.max_streams < 1 or self.stream_idle_timeout_s <= 0:
            raise ValueError("max_streams must be at least 1, stream_idle_timeout_s positive")
        if self.max_streams_total < 1:
            raise ValueError("max_streams_total must be at least 1")


@dataclass
class _Bucket:
    tokens: float
    at: float


class Limits:
    """The limits of one server, shared by its interceptor and its servicers."""

    def __init__(
        self,
        settings: LimitSettings,
        *,
        on_limited: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_limited(method)`` counts each call or record refused for its rate."""
        self.settings = settings
        self._on_limited = on_limited
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._streams: dict[str, int] = {}
        self._total = 0  # streams counted against max_streams_total

    def take(self, member_id: str, method: str) -> None:
        """Spend one of the member's tokens; LimitError (with the wait) if it has none."""
        rate, burst = self.settings.rate_per_s, self.settings.burst
        if rate <= 0:
            return
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(member_id)
            if bucket is None:
                if len(self._buckets) >= _PRUNE_AT:
                    self._prune(now)
                bucket = self._buckets[member_id] = _Bucket(float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / rate
        if self._on_limited is not None:
            self._on_limited(method)
        raise LimitError(
            f"{member_id} is over its rate limit of {rate:g} requests/s (burst {burst})",
            advice=f"retry in {wait:.3f} s, and stay below {rate:g} requests/s",
            retry_after_s=wait,
        )

    def _prune(self, now: float) -> None:
        rate, burst = self.settings.rate_per_s, self.settings.burst
        full = [m for m, b in self._buckets.items() if b.tokens + (now - b.at) * rate >= burst]
        for member_id in full:
            del self._buckets[member_id]

    @contextmanager
    def stream(self, member_id: str, *, counted: bool = True) -> Iterator[None]:
        """Hold one of the member's stream slots for the duration of a streaming call,
        and (``counted``) one of the gateway's ``max_streams_total``."""
        cap, total_cap = self.settings.max_streams, self.settings.max_streams_total
        with self._lock:
            open_now = self._streams.get(member_id, 0)
            refused = None
            if open_now >= cap:
                refused = f"{member_id} already has {cap} streams open, the most a member may"
            elif counted and self._total >= total_cap:
                refused = f"the gateway already serves {total_cap} streams, the most it may"
            else:
                self._streams[member_id] = open_now + 1
                self._total += counted
        if refused is not None:
            raise LimitError(
                refused, advice="end a stream before opening another one", reason="too-many-streams"
            )
        try:
            yield
        finally:
            with self._lock:
                self._total -= counted
                left = self._streams[member_id] - 1
                if left:
                    self._streams[member_id] = left
                else:
                    del self._streams[member_id]

    def open_streams_total(self) -> int:
        """Streams counted against ``max_streams_total`` now."""
        with self._lock:
            return self._total

    def open_streams(self, member_id: str) -> int:
        with self._lock:
            return self._streams.get(member_id, 0)

    def idle_clock(self) -> IdleClock:
        return IdleClock(self.settings.stream_idle_timeout_s, self._clock)


class IdleClock:
    """How long a stream may still wait for its next request before it is cut."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._last = clock()

    def touch(self) -> None:
        """A request arrived (or was just dealt with): the wait starts again."""
        self._last = self._clock()

    def remaining_s(self) -> float:
        return self.timeout_s - (self._clock() - self._last)

    def expired(self) -> StreamIdleError:
        return StreamIdleError(
            f"no request on this stream for {self.timeout_s:g} s (stream_idle_timeout_s)"
        )
