"""Log integrity metrics: the scrubber's progress and what it found, and the damaged
ranges every read refuses.

Labels are bounded: ``kind`` is ``records`` or ``nodes``. Registered into the gateway's
registry by ``ScrubMetrics(registry, …)``; it is the scrubber's ``ScrubObserver``.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.core.logcheck import NODES, RECORDS, Damage, DamageMap
from gateway.storage.integrity import ScrubPosition

__all__ = ["ScrubMetrics"]

_KINDS = (RECORDS, NODES)


class ScrubMetrics:
    def __init__(
        self, registry: CollectorRegistry, *, rate_entries_per_s: float, damage: DamageMap
    ) -> None:
        self._damage = damage
        r = registry
        self.rate = Gauge(
            "alliance_scrub_rate_entries_per_second",
            "Configured scrubber rate (scrub_rate_entries_per_s); 0 when it is off",
            registry=r,
        )
        self.next_index = Gauge(
            "alliance_scrub_next_index",
            "First log entry the current scrub round has not checked yet",
            registry=r,
        )
        self.round_entries = Gauge(
            "alliance_scrub_round_entries",
            "Entries the current scrub round covers (the log's size when it began)",
            registry=r,
        )
        self.rounds = Gauge(
            "alliance_scrub_rounds_completed",
            "Complete scrub rounds over the log, since the database was created",
            registry=r,
        )
        self.round_started = Gauge(
            "alliance_scrub_round_started_timestamp_seconds",
            "Unix time the current scrub round began",
            registry=r,
        )
        self.last_round = Gauge(
            "alliance_scrub_last_round_completed_timestamp_seconds",
            "Unix time the last complete scrub round ended (0: none yet)",
            registry=r,
        )
        self.checked = Counter(
            "alliance_scrub_entries_checked_total",
            "Log entries (with their leaves and nodes) this process rehashed",
            registry=r,
        )
        self.findings = Counter(
            "alliance_scrub_findings_total",
            "Damaged ranges this process's scrubber found, by kind",
            ["kind"],
            registry=r,
        )
        self.damaged = Gauge(
            "alliance_log_damaged_ranges",
            "Damaged ranges of the log on record, answered with DATA_LOSS, by kind",
            ["kind"],
            registry=r,
        )
        self.rate.set(rate_entries_per_s)
        for kind in _KINDS:
            self.findings.labels(kind=kind)
        self.refresh()

    def scrubbed(self, position: ScrubPosition, entries: int) -> None:
        self.checked.inc(entries)
        self.next_index.set(position.next_index)
        self.round_entries.set(position.round_end)
        self.rounds.set(position.rounds_completed)
        if position.round_started_at is not None:
            self.round_started.set(position.round_started_at.timestamp())
        if position.last_round_completed_at is not None:
            self.last_round.set(position.last_round_completed_at.timestamp())

    def found(self, damages: Sequence[Damage]) -> None:
        for d in damages:
            self.findings.labels(kind=d.kind).inc()
        self.refresh()

    def refresh(self) -> None:
        """Recount the damaged ranges on record (the map the store's reads consult)."""
        counts = dict.fromkeys(_KINDS, 0)
        for d in self._damage:
            counts[d.kind] += 1
        for kind, count in counts.items():
            self.damaged.labels(kind=kind).set(count)
