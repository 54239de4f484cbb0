"""One server interceptor: authenticate, authorize, map errors, observe.

grpc's ServerInterceptor sees only the method name, so it wraps the handler's
behaviour; the wrapper reads the verified peer certificate from the call context.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc

from gateway.core.policy import rpc_allowed
from gateway.core.statements import Role
from gateway.errors import GatewayError, PermissionError
from gateway.transport.errors import status_for
from gateway.transport.identity import Caller, caller_of

logger = logging.getLogger(__name__)

# Served to anyone who passed mTLS: the standard health and reflection services.
_OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


class Admission(Protocol):
    """Decides whether an authenticated caller is a member in good standing."""

    def admit(self, caller: Caller) -> None: ...


class RpcObserver(Protocol):
    def observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None: ...


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, admission: Admission, observer: RpcObserver | None = None) -> None:
        self._admission = admission
        self._observer = observer

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
        return _wrap(handler, method, self._check, self._observer)

    def _check(self, method: str, context: grpc.ServicerContext) -> Caller:
        caller = caller_of(context)
        role = caller.member.role
        if not rpc_allowed(method, role):
            raise PermissionError(
                f"role {Role(role).name.lower()} may not call {method}",
                advice="see the authorization table in docs/PROTOCOL.md",
            )
        self._admission.admit(caller)
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
) -> grpc.RpcMethodHandler[Any, Any]:
    def finish(context: grpc.ServicerContext, start: float, exc: BaseException | None) -> None:
        code = grpc.StatusCode.OK
        if exc is not None:
            code, message = status_for(exc)
            if observer is not None:
                observer.observe(method, code, time.perf_counter() - start)
            context.abort(code, message)
        if observer is not None:
            observer.observe(method, code, time.perf_counter() - start)

    def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            try:
                check(method, context)
                response = behavior(request, context)
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
                check(method, context)
                yield from behavior(request, context)
            except Exception as e:
                finish(context, start, e)
                raise
            finish(context, start, None)

        return run

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream),
            handler.request_deserializer,
            handler.response_serializer,
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        streaming(handler.stream_stream), handler.request_deserializer, handler.response_serializer
    )
