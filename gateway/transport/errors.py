"""The one table from domain errors to gRPC status codes."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc

from gateway import errors
from gateway.service.access_log import QuotaError
from gateway.transport.limits import LimitError, StreamIdleError
from gateway.transport.streams import StreamAgeError

logger = logging.getLogger(__name__)

STATUS_FOR: Mapping[type[errors.GatewayError], grpc.StatusCode] = {
    errors.RecordError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.VerificationError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.PermissionError: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.LogIntegrityError: grpc.StatusCode.DATA_LOSS,
    errors.LogDamageError: grpc.StatusCode.DATA_LOSS,
    errors.FederationError: grpc.StatusCode.UNAVAILABLE,
    errors.StorageError: grpc.StatusCode.UNAVAILABLE,
    errors.ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    LimitError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    QuotaError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    StreamIdleError: grpc.StatusCode.DEADLINE_EXCEEDED,
    StreamAgeError: grpc.StatusCode.UNAVAILABLE,
}

INTERNAL_MESSAGE = "internal error; the gateway logged the details"
# The trailing metadata key of the stable reason code (docs/PROTOCOL.md, Reason codes).
REASON_KEY = "alliance-reason"


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Status code and message for ``exc``; unknown errors become a generic INTERNAL."""
    if isinstance(exc, errors.GatewayError):
        for cls in type(exc).__mro__:
            code = STATUS_FOR.get(cls)
            if code is not None:
                return code, exc.hinted
        return grpc.StatusCode.INTERNAL, exc.message
    logger.error("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE


def reason_metadata(exc: BaseException) -> tuple[tuple[str, str], ...]:
    """The trailing metadata that names why ``exc`` refused the call (``internal`` for
    an error the gateway did not raise on purpose)."""
    reason = exc.reason if isinstance(exc, errors.GatewayError) else "internal"
    return ((REASON_KEY, reason),)
