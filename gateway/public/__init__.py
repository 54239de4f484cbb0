"""The public, read-only HTTP service beside the gRPC gateway (docs/OPERATIONS.md,
"Public service"; the feed's bytes: docs/PROTOCOL.md, "Public feed")."""

from gateway.public.app import PublicObserver, PublicSettings, build_app
from gateway.public.ratelimit import RateSettings
from gateway.public.server import PublicServer, ServeSettings

__all__ = [
    "PublicObserver",
    "PublicServer",
    "PublicSettings",
    "RateSettings",
    "ServeSettings",
    "build_app",
]
