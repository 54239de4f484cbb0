"""The gateway's gRPC server: its services behind the auth interceptor, health checking,
reflection, mutual TLS, and a graceful stop. ``gateway.ops.app`` assembles the use
cases and hands the servicers in; this module is where they meet grpc.

Threads. grpcio's sync server runs each call on a pool thread until the call ends, so
a held stream holds a thread. Three pools keep the kinds of calls apart
(docs/OPERATIONS.md, "Threads, streams and connections", has the measurement behind
this choice): unary calls on ``worker_threads``; streams on their own pool, with one
thread for every stream the caps admit plus a few to refuse the rest at once; health
Check on two threads of its own. A stream can therefore never take a thread a unary
call or the probe needs.

Connections. TLS handshakes, idle connections and connection lifetimes are bounded
(``ServerSettings``) so connections that never start TLS, or stay open doing nothing,
do not pile up and exhaust file descriptors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.errors import ConfigError
from gateway.pb.alliance.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
)
from gateway.transport.audit import AuditLogServicer
from gateway.transport.exchange import ExchangeServicer
from gateway.transport.federation import FederationServicer
from gateway.transport.interceptor import (
    Admission,
    AuthInterceptor,
    Pools,
    RpcObserver,
    StreamRules,
)
from gateway.transport.limits import Limits
from gateway.transport.protocol_health import ProtocolHealth

__all__ = ["SERVICE_NAMES", "GatewayServer", "Registrar", "ServerSettings"]

SERVICE_NAMES = (
    exchange_pb2.DESCRIPTOR.services_by_name["Exchange"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["AuditLog"].full_name,
    federation_pb2.DESCRIPTOR.services_by_name["Federation"].full_name,
)

Registrar = Callable[[grpc.Server], None]
"""Adds one more service to the server (e.g. the compliance service)."""


@dataclass(frozen=True)
class ServerSettings:
    listen_address: str
    worker_threads: int
    max_message_bytes: int
    cert_chain: bytes
    private_key: bytes
    # Client CAs: our own and every configured peer's.
    client_roots: bytes
    tls_handshake_timeout_s: float = 5.0
    connection_idle_timeout_s: float = 300.0
    connection_max_age_s: float = 1800.0
    connection_max_age_grace_s: float = 30.0
    # Threads for streams beyond the caps' own, to refuse excess streams at once.
    stream_refusal_threads: int = 4
    health_threads: int = 2
    # HTTP/2 streams (calls) one connection may have open at once.
    max_calls_per_connection: int = 128


class GatewayServer:
    def __init__(
        self,
        settings: ServerSettings,
        *,
        admission: Admission,
        observer: RpcObserver,
        limits: Limits,
        exchange: ExchangeServicer,
        audit: AuditLogServicer,
        federation: FederationServicer,
        rules: StreamRules | None = None,
        extra: Sequence[tuple[str, Registrar]] = (),
    ) -> None:
        rules = rules or StreamRules()
        self._settings = settings
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # A connection that has not finished TLS by then is closed (grpc: 120 s).
            ("grpc.server_handshake_timeout_ms", _ms(settings.tls_handshake_timeout_s)),
            ("grpc.max_connection_idle_ms", _ms(settings.connection_idle_timeout_s)),
            ("grpc.max_connection_age_ms", _ms(settings.connection_max_age_s)),
            ("grpc.max_connection_age_grace_ms", _ms(settings.connection_max_age_grace_s)),
            ("grpc.max_concurrent_streams", settings.max_calls_per_connection),
            # Ping quiet connections; one whose peer stopped answering is closed.
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            # Peers ping idle replication streams (gateway.transport.peer_client).
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
        stream_threads = limits.settings.max_streams_total + settings.stream_refusal_threads
        stream_threads += len(rules.uncounted) * limits.settings.max_streams
        self._pools = Pools(
            streams=futures.ThreadPoolExecutor(stream_threads, thread_name_prefix="rpc-stream"),
            health=futures.ThreadPoolExecutor(
                settings.health_threads, thread_name_prefix="rpc-health"
            ),
        )
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=settings.worker_threads, thread_name_prefix="rpc"
            ),
            interceptors=[
                AuthInterceptor(admission, observer, limits, pools=self._pools, rules=rules)
            ],
            options=options,
            # A valve against queues without end; far above what the caps let run.
            maximum_concurrent_rpcs=settings.worker_threads * 8 + stream_threads + 64,
        )
        exchange_pb2_grpc.add_ExchangeServicer_to_server(exchange, server)
        audit_pb2_grpc.add_AuditLogServicer_to_server(audit, server)
        federation_pb2_grpc.add_FederationServicer_to_server(federation, server)
        for _, register in extra:
            register(server)
        self.service_names = (*SERVICE_NAMES, *(name for name, _ in extra))
        self._health = ProtocolHealth()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        self._server = server

    def start(self) -> int:
        """Bind (port 0 picks one), serve, report SERVING; return the port."""
        s = self._settings
        credentials = grpc.ssl_server_credentials(
            [(s.private_key, s.cert_chain)],
            root_certificates=s.client_roots,
            require_client_auth=True,
        )
        port = self._server.add_secure_port(s.listen_address, credentials)
        if port == 0:
            raise ConfigError(f"listen_address: cannot bind {s.listen_address}")
        self._server.start()
        for name in ("", *self.service_names):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return port

    def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, refuse new calls, give in-flight ones ``grace_s``."""
        self._health.enter_graceful_shutdown()
        self._server.stop(grace_s).wait()
        self._pools.streams.shutdown(wait=False, cancel_futures=True)
        self._pools.health.shutdown(wait=False, cancel_futures=True)

    def wait(self) -> None:
        self._server.wait_for_termination()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
