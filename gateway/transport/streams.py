"""What keeps a long-lived call honest: its guard, and request reading with a bound.

A streaming call can outlive the reasons it was admitted: its member may be suspended
or its certificate revoked while it runs, and a client may simply stop sending or
reading. The interceptor gives every stream a ``StreamGuard``; handlers call
``guard.check()`` whenever they wake up (and never sleep longer than
``guard.poll_s``), and the interceptor calls it between response messages. ``check``

- admits the caller again (certificate revocation, member status, trust domain) at
  most every ``recheck_interval_s``, so a revoked or suspended member's open streams end
  with PERMISSION_DENIED within about a second of the gateway learning of it;
- ends a read stream older than ``max_age_s`` with UNAVAILABLE (the client resumes
  from its cursor), so no read stream is held for ever.

``guarded_requests`` gives a request-streaming servicer that reads its requests
itself (reflection) the same bound, plus an idle timeout: its requests are read on a
helper thread and handed over through a queue, so the servicer's wait can be cut.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from gateway.errors import GatewayError
from gateway.transport.limits import IdleClock

__all__ = [
    "StreamAgeError",
    "StreamGuard",
    "attach_guard",
    "guard_of",
    "guarded_requests",
    "put_unless",
]

_GUARD = "_alliance_stream_guard"
_T = TypeVar("_T")
_END = object()


class StreamAgeError(GatewayError):
    """A read stream reached its maximum age (UNAVAILABLE: resume from the cursor)."""

    advice = "open a new stream from the next index you need; nothing was lost"
    reason = "stream-too-old"


class StreamGuard:
    """The checks one open stream repeats while it runs."""

    def __init__(
        self,
        recheck: Callable[[], None],
        *,
        recheck_interval_s: float,
        max_age_s: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``recheck`` raises (a PermissionError) when the caller is no longer admitted;
        ``max_age_s`` None: the stream may live as long as its connection."""
        self._recheck = recheck
        self._interval = recheck_interval_s
        self._max_age = max_age_s
        self._clock = clock
        self._opened = self._last = clock()
        # How long a handler may block before it must call check() again.
        self.poll_s = min(recheck_interval_s, max_age_s or recheck_interval_s)

    def check(self) -> None:
        """Raise when the stream must end now; cheap enough to call per message."""
        now = self._clock()
        if now - self._last < self._interval:
            return
        self._last = now
        self._recheck()
        if self._max_age is not None and now - self._opened >= self._max_age:
            raise StreamAgeError(
                f"this stream reached its maximum age of {self._max_age:g} s (stream_max_age_s)"
            )

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        """Wait for ``event`` at most ``timeout_s``, checking on the way; its state."""
        deadline = self._clock() + timeout_s
        while not event.is_set():
            left = deadline - self._clock()
            if left <= 0:
                return False
            event.wait(min(left, self.poll_s))
            self.check()
        return True


class _Unguarded(StreamGuard):
    """For handlers run without the interceptor (unit tests): never ends a stream."""

    def __init__(self) -> None:
        super().__init__(lambda: None, recheck_interval_s=1.0, max_age_s=None)


def attach_guard(context: grpc.ServicerContext, guard: StreamGuard) -> None:
    setattr(context, _GUARD, guard)


def guard_of(context: grpc.ServicerContext) -> StreamGuard:
    """The guard the interceptor gave this call (a no-op one if it gave none)."""
    guard = getattr(context, _GUARD, None)
    return guard if isinstance(guard, StreamGuard) else _Unguarded()


def put_unless(inbox: queue.Queue[Any], item: object, stopped: threading.Event) -> bool:
    """Put ``item`` in the bounded ``inbox``, waiting for room, unless ``stopped`` is set
    first (the thread that takes from it has gone, and would leave this one blocked for
    ever). Whether it was put."""
    while not stopped.is_set():
        try:
            inbox.put(item, timeout=0.5)
        except queue.Full:
            continue
        return True
    return False


def guarded_requests(requests: Iterator[_T], guard: StreamGuard, idle: IdleClock) -> Iterator[_T]:
    """``requests``, read on a helper thread; the consumer's wait for the next one ends
    with StreamIdleError after ``idle.timeout_s`` or with whatever ``guard`` raises."""
    inbox: queue.Queue[Any] = queue.Queue(maxsize=16)
    done = threading.Event()  # the consumer stopped: the reader must not block on put

    def hand_over(item: object) -> bool:
        return put_unless(inbox, item, done)

    def read() -> None:
        try:
            for request in requests:
                if not hand_over(request):
                    return
        except grpc.RpcError:
            pass  # the client went away
        except Exception as e:  # handed to the consumer, which raises it
            hand_over(_Failed(e))
        hand_over(_END)

    threading.Thread(target=read, name="stream-request-reader", daemon=True).start()
    try:
        while True:
            try:
                item = inbox.get(timeout=max(0.0, min(guard.poll_s, idle.remaining_s())))
            except queue.Empty:
                guard.check()
                if idle.remaining_s() <= 0:
                    raise idle.expired() from None
                continue
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            idle.touch()
            guard.check()
            yield item
    finally:
        done.set()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error
