"""The standard health service (grpc.health.v1), whose answers also say which
``alliance.v1`` revision this gateway speaks (docs/PROTOCOL.md §5.1).

The statement travels in the initial metadata of ``Check`` and ``Watch``, so the health
messages stay the standard ones and any gRPC health client keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health

from gateway import protocol


class ProtocolHealth(health.HealthServicer):  # type: ignore[misc]  # grpc_health has no stubs
    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.send_initial_metadata((protocol.header(),))
        return super().Check(request, context)

    def Watch(
        self,
        request: Any,
        context: grpc.ServicerContext,
        send_response_callback: Callable[[Any], None] | None = None,
    ) -> Any:
        context.send_initial_metadata((protocol.header(),))
        return super().Watch(request, context, send_response_callback)
