"""Which ``alliance.v1`` revision the client speaks, which one its gateway speaks, and
what a difference means for the member (docs/PROTOCOL.md §5.1).

The gateway states its revision in the initial metadata of the standard health check,
which any caller that passed mutual TLS may call. A mismatch is a warning, never a
refusal: most calls still work, and the warning says which side to upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import protocol
from gateway.errors import GatewayError
from gateway.protocol import ProtocolVersion

__all__ = ["PROTOCOL", "VersionCheck", "ask_gateway", "notice"]

PROTOCOL: Final = protocol.CURRENT
"""The protocol this client speaks."""


def _client_for(version: ProtocolVersion) -> str:
    return f"alliance-client {version.major}.{version.revision}.x"


@dataclass(frozen=True, slots=True)
class VersionCheck:
    """The client's protocol beside the one the gateway stated (None: it stated none,
    or stated something unreadable, described in ``unreadable``)."""

    client: ProtocolVersion
    gateway: ProtocolVersion | None
    serving: bool
    unreadable: str = ""

    @property
    def matches(self) -> bool:
        return self.gateway == self.client

    def warning(self) -> tuple[str, str] | None:
        """``(message, advice)`` when the two differ; None when they match."""
        ours, theirs = self.client, self.gateway
        if theirs is None:
            said = f"an unreadable version ({self.unreadable})" if self.unreadable else "none"
            return (
                f"the gateway did not state which protocol it speaks ({said}); "
                f"this client speaks {ours}",
                "the gateway predates protocol versioning or is not an alliance gateway: "
                "ask its operator which alliance.v1 revision it runs",
            )
        if theirs == ours:
            return None
        if theirs.package != ours.package:
            return (
                f"the gateway speaks {theirs}, this client {ours}: "
                "the two contracts are different and most calls will fail",
                f"install {_client_for(theirs)}, or ask the gateway's operator for an "
                f"address that still serves {ours.package}",
            )
        if theirs.revision < ours.revision:
            return (
                f"the gateway speaks {theirs}, older than this client's {ours}: "
                f"records or fields added after revision {theirs.revision} are refused "
                "there (INVALID_ARGUMENT)",
                f"ask the gateway's operator to upgrade, or install {_client_for(theirs)}",
            )
        return (
            f"the gateway speaks {theirs}, newer than this client's {ours}: "
            "answers may carry values this client cannot read",
            f"upgrade the client to {_client_for(theirs)} or later",
        )


def notice(check: VersionCheck) -> str | None:
    """The CLI's two lines for a mismatch (``warning: …`` and ``hint: …``), or None."""
    warning = check.warning()
    if warning is None:
        return None
    message, advice = warning
    return f"warning: {message}\nhint: {advice}"


def ask_gateway(channel: grpc.Channel, *, timeout_s: float) -> VersionCheck:
    """One health check on ``channel``: is the gateway serving, and what does it speak?

    Raises ``grpc.RpcError`` when the gateway cannot be reached.
    """
    stub = health_pb2_grpc.HealthStub(channel)
    reply, call = stub.Check.with_call(health_pb2.HealthCheckRequest(), timeout=timeout_s)
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    return _from_metadata(call.initial_metadata() or (), serving=bool(serving))


def _from_metadata(metadata: Sequence[tuple[str, str | bytes]], *, serving: bool) -> VersionCheck:
    stated = [value for key, value in metadata if key == protocol.METADATA_KEY]
    if not stated:
        return VersionCheck(PROTOCOL, None, serving)
    if len(stated) > 1:
        return VersionCheck(
            PROTOCOL, None, serving, f"{len(stated)} {protocol.METADATA_KEY} entries"
        )
    value = stated[0]
    if isinstance(value, bytes):
        return VersionCheck(PROTOCOL, None, serving, "binary value")
    try:
        return VersionCheck(PROTOCOL, ProtocolVersion.parse(value), serving)
    except GatewayError as e:
        return VersionCheck(PROTOCOL, None, serving, str(e))
