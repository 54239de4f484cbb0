"""Prometheus metrics: the only module that imports prometheus_client.

Label sets are bounded: RPC method names, status codes, statement types and reasons
come from fixed tables; no member, seller or record id is ever a label.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpcs = Counter(
            "alliance_rpcs_total",
            "RPCs handled, by method and status code",
            ["method", "code"],
            registry=r,
        )
        self.rpc_latency = Histogram(
            "alliance_rpc_duration_seconds",
            "RPC latency by method",
            ["method"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.records_accepted = Counter(
            "alliance_records_accepted_total",
            "Records appended to the log, by statement type",
            ["type"],
            registry=r,
        )
        self.records_rejected = Counter(
            "alliance_records_rejected_total",
            "Records refused, by reason (status code)",
            ["reason"],
            registry=r,
        )
        self.log_size = Gauge("alliance_log_entries", "Entries in the audit log", registry=r)
        self.checkpoint_timestamp = Gauge(
            "alliance_checkpoint_timestamp_seconds",
            "Unix time the newest checkpoint was signed",
            registry=r,
        )
        self.build = Info("alliance_build", "Build information", registry=r)

    def observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.rpcs.labels(method=method, code=code.name).inc()
        self.rpc_latency.labels(method=method).observe(seconds)

    def serve(self, address: str) -> Callable[[], None]:
        """Expose /metrics on ``address`` (host:port; port 0 picks one). Returns stop()."""
        host, _, port = address.rpartition(":")
        server, thread = start_http_server(
            int(port), addr=host or "127.0.0.1", registry=self.registry
        )
        self.port = server.server_port

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return stop
