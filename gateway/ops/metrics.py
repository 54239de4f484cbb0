"""Prometheus metrics: the only module that imports prometheus_client.

Label sets are bounded: RPC method names, status codes, statement types and reasons
come from fixed tables; no member, seller or record id is ever a label.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    make_wsgi_app,
)
from waitress import wasyncore
from waitress.server import MultiSocketServer, create_server
from waitress.trigger import trigger

from gateway.core.statements import STATEMENT_TYPES, ErasureBasis


class _StatusCode(Protocol):
    """A ``grpc.StatusCode`` as metrics see it: its name (ops does not import grpc)."""

    @property
    def name(self) -> str: ...


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
            "Records refused, by statement type and reason",
            ["type", "reason"],
            registry=r,
        )
        self.records_duplicate = Counter(
            "alliance_records_duplicate_total",
            "Submissions of records already in the log (answered idempotently), by type",
            ["type"],
            registry=r,
        )
        self.rate_limited = Counter(
            "alliance_rate_limited_total",
            "Calls, and records of submission streams, refused for the member's rate",
            ["method"],
            registry=r,
        )
        self.log_size = Gauge("alliance_log_entries", "Entries in the audit log", registry=r)
        self.checkpoint_timestamp = Gauge(
            "alliance_checkpoint_timestamp_seconds",
            "Unix time the newest checkpoint was signed",
            registry=r,
        )
        self.build = Info("alliance_build", "Build information", registry=r)
        # Federation, one series per configured peer gateway (bounded by the config).
        self.federation_entries_behind = Gauge(
            "alliance_federation_entries_behind",
            "Entries of the peer's newest verified checkpoint not yet replicated",
            ["peer"],
            registry=r,
        )
        self.federation_seconds_behind = Gauge(
            "alliance_federation_seconds_behind",
            "Seconds since our copy of the peer's log was last complete (0 when it is)",
            ["peer"],
            registry=r,
        )
        self.federation_last_success = Gauge(
            "alliance_federation_last_success_timestamp_seconds",
            "Unix time of the last verified checkpoint or batch from the peer",
            ["peer"],
            registry=r,
        )
        self.federation_failures = Gauge(
            "alliance_federation_consecutive_failures",
            "Failed replication sessions with the peer since the last success",
            ["peer"],
            registry=r,
        )
        # Erasure (issue 18): records whose disclosures this process's appends deleted,
        # local or replicated, by the erasure's basis; and what retention still owes.
        self.erased_records = Counter(
            "alliance_erased_records_total",
            "Records whose disclosures erasures appended by this process deleted, by basis",
            ["basis"],
            registry=r,
        )
        for basis in ErasureBasis:
            self.erased_records.labels(basis=basis.name.lower())
        self.retention_overdue = Gauge(
            "alliance_retention_overdue_records",
            "Records of this trust domain past their retention that still hold disclosures",
            ["kind"],
            registry=r,
        )
        # Label children of the per-call and per-record series, looked up once each:
        # ``labels()`` takes a lock and builds a key on every call. The label sets are
        # bounded (see the module docstring), so these maps are too.
        self._rpc_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.port = 0
        self._outcome_children: dict[tuple[str, str], Counter] = {}

    def observe_peer(
        self,
        peer: str,
        *,
        entries_behind: int,
        seconds_behind: float,
        last_success: float | None,
        failures: int,
    ) -> None:
        self.federation_entries_behind.labels(peer=peer).set(entries_behind)
        self.federation_seconds_behind.labels(peer=peer).set(seconds_behind)
        if last_success is not None:
            self.federation_last_success.labels(peer=peer).set(last_success)
        self.federation_failures.labels(peer=peer).set(failures)

    def observe_erased(self, basis: ErasureBasis, records: int) -> None:
        self.erased_records.labels(basis=basis.name.lower()).inc(records)

    def set_retention_overdue(self, counts: Mapping[str, int]) -> None:
        """Records past retention per kind label (a fixed set: the redactable kinds)."""
        for kind, count in counts.items():
            self.retention_overdue.labels(kind=kind).set(count)

    def record_outcome(self, payload_type: str, reason: str) -> None:
        """SubmitService's hook: "" appended, "duplicate", or a bounded rejection reason."""
        kind = _TYPE_LABELS.get(payload_type, "unknown")
        child = self._outcome_children.get((kind, reason))
        if child is None:
            if not reason:
                child = self.records_accepted.labels(type=kind)
            elif reason == "duplicate":
                child = self.records_duplicate.labels(type=kind)
            else:
                child = self.records_rejected.labels(type=kind, reason=reason)
            self._outcome_children[(kind, reason)] = child
        child.inc()

    def observe_rate_limited(self, method: str) -> None:
        """The transport's limits call this for each call or record over the rate."""
        self.rate_limited.labels(method=method).inc()

    def observe(self, method: str, code: _StatusCode, seconds: float) -> None:
        key = (method, code.name)
        children = self._rpc_children.get(key)
        if children is None:
            children = (
                self.rpcs.labels(method=method, code=code.name),
                self.rpc_latency.labels(method=method),
            )
            self._rpc_children[key] = children
        calls, latency = children
        calls.inc()
        latency.observe(seconds)

    def serve(
        self,
        address: str,
        *,
        threads: int = 2,
        timeout_s: float = 10.0,
        max_connections: int = 32,
    ) -> Callable[[], None]:
        """Expose /metrics on ``address`` (host:port; port 0 picks one). Returns stop().

        Served by waitress, not prometheus_client's own server (one thread per
        connection, no timeouts): connections wait in one event loop, ``threads``
        answer complete requests, a connection idle for ``timeout_s`` (whole seconds)
        is closed, and past ``max_connections`` new ones wait in the listen backlog.
        """
        host, _, port = address.rpartition(":")
        sockets: dict[int, Any] = {}
        server = create_server(
            make_wsgi_app(self.registry),
            map=sockets,
            host=host or "127.0.0.1",
            port=int(port),
            threads=threads,
            channel_timeout=max(1, math.ceil(timeout_s)),
            # How often idle connections are looked for: they live at most 1.5 timeouts.
            cleanup_interval=max(1, math.ceil(timeout_s / 2)),
            connection_limit=max_connections,
            asyncore_use_poll=True,
            ident="alliance-gateway",
        )
        if isinstance(server, MultiSocketServer):
            self.port = server.effective_listen[0][1]
        else:
            self.port = int(server.getsockname()[1])
        loop = threading.Thread(target=server.run, name="metrics-http", daemon=True)
        loop.start()

        def stop() -> None:
            # The event loop owns its sockets: close them from inside it, then it ends.
            def close_all(_: None = None) -> None:
                wasyncore.close_all(sockets)

            wakers = [d for d in list(sockets.values()) if isinstance(d, trigger)]
            if wakers:
                wakers[0].pull_trigger(close_all)
            loop.join(timeout=5)
            server.task_dispatcher.shutdown()

        return stop


# Statement types as metric labels: the payload type is client-controlled, so anything
# not in this table is counted as "unknown" (label sets stay bounded).
_TYPE_LABELS = {payload_type: cls.__name__.lower() for payload_type, cls in STATEMENT_TYPES.items()}
