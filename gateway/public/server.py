"""Serve the public application with uvicorn in a thread of the gateway process.

The socket is bound here (port 0 allowed, ``port`` tells which), so a test or the
gateway knows the address before the first request; ``stop()`` asks uvicorn to finish
the requests in flight (up to the grace period) and waits for its thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass

import uvicorn

from gateway.public.app import ASGIApp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    address: str  # host:port
    # Addresses of reverse proxies whose X-Forwarded-For names the client ("": none).
    forwarded_allow_ips: str = ""
    max_connections: int = 256
    keep_alive_s: int = 5
    shutdown_grace_s: float = 5.0


def _bind(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(512)
    sock.setblocking(False)
    return sock


class PublicServer:
    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self._settings = settings
        proxied = bool(settings.forwarded_allow_ips)
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                lifespan="off",
                access_log=False,
                log_config=None,
                server_header=False,
                proxy_headers=proxied,
                forwarded_allow_ips=settings.forwarded_allow_ips if proxied else "",
                limit_concurrency=settings.max_connections,
                timeout_keep_alive=settings.keep_alive_s,
                timeout_graceful_shutdown=int(max(1, settings.shutdown_grace_s)),
                h11_max_incomplete_event_size=16 * 1024,
            )
        )
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> int:
        self._socket = _bind(self._settings.address)
        self.port = int(self._socket.getsockname()[1])
        sock = self._socket
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])),
            name="public-http",
            daemon=True,
        )
        self._thread.start()
        logger.info("public service on %s (port %d)", self._settings.address, self.port)
        return self.port

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self._settings.shutdown_grace_s + 5)
        if self._socket is not None:
            self._socket.close()


__all__ = ["PublicServer", "ServeSettings"]
