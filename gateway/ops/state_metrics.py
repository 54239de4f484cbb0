"""Gauges computed from stored state on each ticker round: list sizes, overdue
listings, sanctions by measure, checkpoint coverage and certificate expiry.

Labels are bounded: list and conduct names (enums), 2-digit reporting units (32),
measure names (enum), and certificate roles from the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from cryptography import x509
from prometheus_client import CollectorRegistry, Gauge

from gateway.core.statements import ConductType, ListKind, SanctionAction, SanctionMeasure
from gateway.storage import SqlStore
from gateway.storage.stats import listing_counts, overdue_count, sanction_counts


class StateMetrics:
    def __init__(self, registry: CollectorRegistry, certificates: Mapping[str, Path]) -> None:
        self._certificates = dict(certificates)
        self.listings = Gauge(
            "alliance_listings",
            "Listings in force, by list, conduct and reporting unit",
            ["list", "conduct", "unit"],
            registry=registry,
        )
        self.overdue = Gauge(
            "alliance_listings_overdue",
            "Listings in force past their correction deadline",
            registry=registry,
        )
        self.sanctions = Gauge(
            "alliance_sanctions_confirmed",
            "Sanctions whose newest confirmation is APPLIED (or LIFTED), by measure",
            ["measure", "action"],
            registry=registry,
        )
        self.checkpoint_size = Gauge(
            "alliance_checkpoint_tree_size",
            "Tree size of the newest signed checkpoint",
            registry=registry,
        )
        self.cert_expiry = Gauge(
            "alliance_certificate_expiry_timestamp_seconds",
            "Unix time each configured certificate expires (alert on it minus time())",
            ["certificate"],
            registry=registry,
        )

    def refresh(self, store: SqlStore, now: datetime) -> None:
        engine = store.engine
        self.listings.clear()
        for c in listing_counts(engine):
            self.listings.labels(
                list=ListKind(c.list_kind).name.lower(),
                conduct=ConductType(c.conduct).name.lower(),
                unit=c.unit,
            ).set(c.count)
        self.overdue.set(overdue_count(engine, now))
        self.sanctions.clear()
        for s in sanction_counts(engine):
            self.sanctions.labels(
                measure=SanctionMeasure(s.measure).name.lower(),
                action=SanctionAction(s.action).name.lower(),
            ).set(s.count)
        for name, path in self._certificates.items():
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError):
                continue
            self.cert_expiry.labels(certificate=name).set(cert.not_valid_after_utc.timestamp())
