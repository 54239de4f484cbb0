"""Per-client rate limits of the public service: a token bucket per client address.

The table of buckets is bounded (``max_clients``): past it, the bucket idle longest is
dropped, so a flood of addresses costs memory in proportion to the bound, not to the
flood. A dropped client starts again with a full bucket, which is the price of the bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateSettings:
    rate_per_s: float  # 0: no limit
    burst: int
    max_clients: int = 100_000


class ClientRates:
    def __init__(
        self, settings: RateSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        # client -> (tokens, at), least recently used first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Take one token for ``client``: 0.0 when allowed, else the seconds until a
        token is back (the Retry-After)."""
        s = self._settings
        if s.rate_per_s <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (float(s.burst), now))
            tokens = min(float(s.burst), tokens + (now - at) * s.rate_per_s)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, now)
                wait = (1.0 - tokens) / s.rate_per_s
            while len(self._buckets) > s.max_clients:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait_s: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
