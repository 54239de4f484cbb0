"""One server interceptor: authenticate, authorize, limit, map errors, observe.

grpc's ServerInterceptor sees only the method name, so it wraps the handler's
behaviour; the wrapper reads the verified peer certificate from the call context.
Requests that do not parse reach the handler as ``Undecodable`` (grpc itself would
answer INTERNAL); ``decoded`` turns them into INVALID_ARGUMENT.

Every call goes through here, the standard services included:

- health ``Check`` is open to any caller that passed TLS and runs on its own small
  pool, so neither streams nor slow calls can starve the probe;
- health ``Watch`` and reflection are admitted like any RPC (an active member, a
  configured peer) and are capped streams;
- every handler is served in a request-streaming shape, so the caller is checked
  before the server waits for its request message: a caller that is refused never
  holds a thread by sending a call's headers and nothing else;
- streaming calls run on the stream pool (``Pools``), hold a slot of the member's and
  of the gateway's stream caps, and carry a ``StreamGuard`` that ends them when the
  member is suspended or revoked, or (read streams) when they reach their maximum age.

Refused calls (PERMISSION_DENIED) are logged with the caller, the RPC and the code, at
most ``_REFUSAL_LOG_BURST`` lines at once and ``_REFUSAL_LOG_RATE`` a second after that.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc

from gateway.core.policy import rpc_allowed
from gateway.core.statements import Role
from gateway.errors import GatewayError, PermissionError, RecordError
from gateway.transport.errors import reason_metadata, status_for
from gateway.transport.identity import Caller, authenticated, caller_of
from gateway.transport.limits import Limits
from gateway.transport.streams import StreamGuard, attach_guard, guarded_requests

logger = logging.getLogger(__name__)

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
REFLECTION = (
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
)
# Standard services every admitted caller may use, whatever its role.
_ANY_ROLE = frozenset({HEALTH_WATCH, *REFLECTION})
# Streams that read their own requests under their own idle bound (exchange.py).
_READS_OWN_REQUESTS = frozenset(
    {"/alliance.v1.Exchange/SubmitRecords", "/alliance.v1.Exchange/SubmitBatches"}
)
# Streams with no maximum age: uploads are bounded by their idle timeout and record
# count, replication to configured peers by the connection's age.
_AGELESS = frozenset(
    {
        "/alliance.v1.Exchange/SubmitRecords",
        "/alliance.v1.Exchange/SubmitBatches",
        "/alliance.v1.Federation/Replicate",
    }
)
# The standard trailer with which a server tells gRPC retry policies when to retry.
_PUSHBACK = "grpc-retry-pushback-ms"
_REFUSAL_LOG_RATE = 2.0
_REFUSAL_LOG_BURST = 20
_T = TypeVar("_T")


@dataclass(frozen=True)
class Undecodable:
    """A request message whose bytes did not parse."""

    error: str


def decoded(request: _T) -> _T:
    """``request`` itself, or a RecordError when its bytes did not parse."""
    if isinstance(request, Undecodable):
        raise RecordError(f"the request is not a valid message: {request.error}")
    return request


def _lenient(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def run(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception as e:  # any parser failure: the client sent bad bytes
            return Undecodable(f"{type(e).__name__}: {e}")

    return run


class Admission(Protocol):
    """Decides whether an authenticated caller is a member in good standing."""

    def admit(self, caller: Caller) -> None: ...


class RpcObserver(Protocol):
    def observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None: ...


@dataclass(frozen=True)
class Pools:
    """Where calls run besides the server's own pool (unary calls): streams on
    ``streams``, health checks on ``health``."""

    streams: ThreadPoolExecutor
    health: ThreadPoolExecutor


@dataclass(frozen=True)
class StreamRules:
    """How open streams are watched (``gateway.transport.streams``)."""

    recheck_interval_s: float = 0.25
    max_age_s: float = 600.0
    # Callers whose streams do not count against the gateway's total (configured peer
    # gateways and our own): few, and fixed by the configuration.
    uncounted: frozenset[str] = frozenset()


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(
        self,
        admission: Admission,
        observer: RpcObserver | None = None,
        limits: Limits | None = None,
        *,
        pools: Pools | None = None,
        rules: StreamRules | None = None,
    ) -> None:
        self._admission = admission
        self._observer = observer
        self._limits = limits
        self._pools = pools
        self._rules = rules or StreamRules()
        self._refusals = _RefusalLog()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(details)
        method: str = details.method
        if handler is None:
            return _unserved(method, self._check)
        if method == HEALTH_CHECK:
            return _open(handler, self._pools.health if self._pools else None)
        return _Wrapper(self, handler, method).handler()

    def _check(self, method: str, context: grpc.ServicerContext) -> Caller:
        caller = caller_of(context)
        role = caller.member.role
        if method not in _ANY_ROLE and not rpc_allowed(method, role):
            raise PermissionError(
                f"role {Role(role).name.lower()} may not call {method}",
                advice="see the authorization table in docs/PROTOCOL.md",
                reason="role-may-not-call",
            )
        self._admission.admit(caller)
        authenticated(context, caller)
        return caller

    def _finish(
        self,
        method: str,
        context: grpc.ServicerContext,
        start: float,
        exc: BaseException | None,
    ) -> None:
        code = grpc.StatusCode.OK
        if exc is not None:
            code, message = status_for(exc)
            trailers = reason_metadata(exc)
            retry_after_s = getattr(exc, "retry_after_s", None)
            if code is grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after_s is not None:
                wait_ms = max(1, math.ceil(retry_after_s * 1000))
                trailers += ((_PUSHBACK, str(wait_ms)),)
            context.set_trailing_metadata(trailers)
            if code is grpc.StatusCode.PERMISSION_DENIED:
                self._refusals.note(_identify(context), context.peer(), method, code, message)
        if self._observer is not None:
            self._observer.observe(method, code, time.perf_counter() - start)
        if exc is not None:
            context.abort(code, message)


class _Wrapper:
    """The checked, limited and observed version of one method's handler."""

    def __init__(
        self, interceptor: AuthInterceptor, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> None:
        self._i = interceptor
        self._handler = handler
        self._method = method

    def handler(self) -> grpc.RpcMethodHandler[Any, Any]:
        h = self._handler
        deserialize = _lenient(h.request_deserializer)
        if h.response_streaming:
            streaming = h.unary_stream or h.stream_stream
            assert streaming is not None
            run = self._streaming(streaming)
            if self._i._pools is not None:
                _run_on(run, self._i._pools.streams)
            return grpc.stream_stream_rpc_method_handler(run, deserialize, h.response_serializer)
        unary = h.unary_unary or h.stream_unary
        assert unary is not None
        return grpc.stream_unary_rpc_method_handler(
            self._unary(unary), deserialize, h.response_serializer
        )

    def _admit(self, context: grpc.ServicerContext) -> Caller:
        """Check the caller (before its request is read) and spend its token."""
        caller = self._i._check(self._method, context)
        if self._i._limits is not None:
            self._i._limits.take(caller.member_id, self._method)
        return caller

    def _request(self, requests: Iterator[Any]) -> Any:
        """The one request of a call whose client sends one, once the caller passed."""
        if self._handler.request_streaming:
            return requests
        for request in requests:
            return decoded(request)
        raise RecordError(f"{self._method} expects one request message, the client sent none")

    def _unary(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            try:
                self._admit(context)
                response = behavior(self._request(requests), context)
            except Exception as e:
                self._i._finish(self._method, context, start, e)
                raise  # unreachable: abort raises
            self._i._finish(self._method, context, start, None)
            return response

        return run

    def _streaming(self, behavior: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
        method, limits, rules = self._method, self._i._limits, self._i._rules
        non_blocking = bool(getattr(behavior, "experimental_non_blocking", False))

        def run(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            try:
                caller = self._admit(context)
                slot = (
                    limits.stream(caller.member_id, counted=caller.member_id not in rules.uncounted)
                    if limits is not None
                    else contextlib.nullcontext()
                )
                with slot:
                    guard = StreamGuard(
                        lambda: self._i._admission.admit(caller),
                        recheck_interval_s=rules.recheck_interval_s,
                        max_age_s=None if method in _AGELESS else rules.max_age_s,
                    )
                    attach_guard(context, guard)
                    request = self._request(requests)
                    if self._handler.request_streaming and method not in _READS_OWN_REQUESTS:
                        idle = limits.idle_clock() if limits is not None else None
                        if idle is not None:
                            request = guarded_requests(request, guard, idle)
                    if non_blocking:
                        responses = _callback_stream(behavior, request, context, guard)
                    else:
                        responses = behavior(request, context)
                    for response in responses:
                        guard.check()
                        yield response
            except Exception as e:
                self._i._finish(method, context, start, e)
                raise
            self._i._finish(method, context, start, None)

        return run


def _run_on(behavior: Callable[..., Any], pool: ThreadPoolExecutor) -> None:
    """grpc runs a behavior carrying ``experimental_thread_pool`` on that pool instead of
    the server's (grpc/_server.py ``_select_thread_pool_for_behavior``; the reference
    health servicer uses the same hook for its Watch)."""
    behavior.experimental_thread_pool = pool  # type: ignore[attr-defined]


def _open(
    handler: grpc.RpcMethodHandler[Any, Any], pool: ThreadPoolExecutor | None
) -> grpc.RpcMethodHandler[Any, Any]:
    """Health Check: served to any caller that passed TLS, on its own pool."""
    assert handler.unary_unary is not None
    inner = handler.unary_unary

    def run(request: Any, context: grpc.ServicerContext) -> Any:
        return inner(request, context)

    if pool is not None:
        _run_on(run, pool)
    return grpc.unary_unary_rpc_method_handler(
        run, handler.request_deserializer, handler.response_serializer
    )


def _callback_stream(
    behavior: Callable[..., Any], request: Any, context: grpc.ServicerContext, guard: StreamGuard
) -> Iterator[Any]:
    """Run a servicer written for grpc's non-blocking streams (the reference health
    Watch: it registers a callback and returns) as a guarded iterator."""
    sent: queue.Queue[Any] = queue.Queue()
    behavior(request, context, sent.put)
    while True:
        try:
            response = sent.get(timeout=guard.poll_s)
        except queue.Empty:
            guard.check()
            continue
        if response is None:  # the servicer closed the stream
            return
        yield response


def _unserved(
    method: str, check: Callable[[str, grpc.ServicerContext], Caller]
) -> grpc.RpcMethodHandler[Any, Any]:
    """A method this server does not serve is still denied by default: only a caller
    the policy lets call it learns that it is UNIMPLEMENTED here. Not observed, so
    arbitrary method names cannot grow the metrics' label sets."""

    def run(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        try:
            check(method, context)
        except Exception as e:
            context.set_trailing_metadata(reason_metadata(e))
            context.abort(*status_for(e))
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served here")
        yield b""  # unreachable: makes this a generator, which any call shape accepts

    return grpc.stream_stream_rpc_method_handler(run)


def _identify(context: grpc.ServicerContext) -> str:
    try:
        return caller_of(context).member_id
    except GatewayError:
        return "(a certificate that names no member)"


class _RefusalLog:
    """Refused calls as log lines, rate-limited so a flood cannot flood the log; the
    next line written says how many were left out."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(_REFUSAL_LOG_BURST)
        self._at = clock()
        self._left_out = 0

    def note(
        self, caller: str, peer: str, method: str, code: grpc.StatusCode, message: str
    ) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(
                float(_REFUSAL_LOG_BURST), self._tokens + (now - self._at) * _REFUSAL_LOG_RATE
            )
            self._at = now
            if self._tokens < 1.0:
                self._left_out += 1
                return
            self._tokens -= 1.0
            left_out, self._left_out = self._left_out, 0
        logger.warning(
            "refused %s from %s (%s): %s %s%s",
            method,
            caller,
            peer,
            code.name,
            message,
            f" [{left_out} more refusals not logged]" if left_out else "",
        )
