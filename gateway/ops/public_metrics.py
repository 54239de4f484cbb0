"""Metrics of the public HTTP service, on the gateway's registry (its /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class PublicMetrics:
    """``gateway.public.PublicObserver`` over Prometheus: requests by route and status,
    requests refused for the client's rate, latency by route, the feed's size."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "alliance_public_requests_total",
            "Public HTTP requests, by route and status code",
            ["route", "status"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "alliance_public_rate_limited_total",
            "Public HTTP requests refused (429) for the client address's rate",
            registry=registry,
        )
        self.latency = Histogram(
            "alliance_public_request_duration_seconds",
            "Public HTTP request latency by route, until the response starts",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.entries = Gauge(
            "alliance_public_feed_entries",
            "Entries the public feed's index holds (published and removed)",
            registry=registry,
        )

    def observe_public(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_public_limited(self) -> None:
        self.rate_limited.inc()
