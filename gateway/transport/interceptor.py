"""One server interceptor: authenticate, authorize, limit, map errors, observe.

grpc's ServerInterceptor sees only the method name, so it wraps the handler's
behaviour; the wrapper reads the verified peer certificate from the call context.
Requests that do not parse reach the handler as ``Undecodable`` (grpc itself would
answer INTERNAL); ``decoded`` turns them into INVALID_ARGUMENT.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc

from gateway.core.policy import rpc_allowed
from gateway.core.statements import Role
from gateway.errors import GatewayError, PermissionError, RecordError
from gateway.transport.errors import status_for
from gateway.transport.identity import Caller, authenticated, caller_of
from gateway.transport.limits import LimitError, Limits

logger = logging.getLogger(__name__)

# Served to anyone who passed mTLS: the standard health and reflection services.
_OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
# The standard trailer with which a server tells gRPC retry policies when to retry.
_PUSHBACK = "grpc-retry-pushback-ms"
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


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(
        self,
        admission: Admission,
        observer: RpcObserver | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._admission = admission
        self._observer = observer
        self._limits = limits

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(details)
        method: str = details.method
        if method.startswith(_OPEN_PREFIXES):
            return handler
        if handler is None:
            return _unserved(method, self._check)
        return _wrap(handler, method, self._check, self._observer, self._limits)

    def _check(self, method: str, context: grpc.ServicerContext) -> Caller:
        caller = caller_of(context)
        role = caller.member.role
        if not rpc_allowed(method, role):
            raise PermissionError(
                f"role {Role(role).name.lower()} may not call {method}",
                advice="see the authorization table in docs/PROTOCOL.md",
            )
        self._admission.admit(caller)
        authenticated(context, caller)
        return caller


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
            context.abort(*status_for(e))
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served here")
        yield b""  # unreachable: makes this a generator, which any call shape accepts

    return grpc.stream_stream_rpc_method_handler(run)


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    method: str,
    check: Callable[[str, grpc.ServicerContext], Caller],
    observer: RpcObserver | None,
    limits: Limits | None,
) -> grpc.RpcMethodHandler[Any, Any]:
    streams = handler.request_streaming or handler.response_streaming

    def admit(context: grpc.ServicerContext) -> contextlib.AbstractContextManager[None]:
        """Check the caller and spend its token; the stream slot to hold, if any."""
        caller = check(method, context)
        if limits is None:
            return contextlib.nullcontext()
        limits.take(caller.member_id, method)
        return limits.stream(caller.member_id) if streams else contextlib.nullcontext()

    def finish(context: grpc.ServicerContext, start: float, exc: BaseException | None) -> None:
        code = grpc.StatusCode.OK
        if exc is not None:
            code, message = status_for(exc)
            if isinstance(exc, LimitError) and exc.retry_after_s is not None:
                wait_ms = max(1, math.ceil(exc.retry_after_s * 1000))
                context.set_trailing_metadata(((_PUSHBACK, str(wait_ms)),))
            if observer is not None:
                observer.observe(method, code, time.perf_counter() - start)
            context.abort(code, message)
        if observer is not None:
            observer.observe(method, code, time.perf_counter() - start)

    def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            try:
                with admit(context):
                    response = behavior(decoded(request), context)
            except (GatewayError, Exception) as e:
                finish(context, start, e)
                raise  # unreachable: abort raises
            finish(context, start, None)
            return response

        return run

    def streaming(behavior: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            try:
                with admit(context):
                    yield from behavior(decoded(request), context)
            except Exception as e:
                finish(context, start, e)
                raise
            finish(context, start, None)

        return run

    deserialize = _lenient(handler.request_deserializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary), deserialize, handler.response_serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            unary(handler.stream_unary), deserialize, handler.response_serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream), deserialize, handler.response_serializer
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        streaming(handler.stream_stream), deserialize, handler.response_serializer
    )
