"""Log integrity: how fast the scrubber rehashes the stored log (records against their
ids and leaves, nodes against their children), what the start-up check costs on the
large log, and streaming ingest with the scrubber at its default rate (and unthrottled)
against ingest without it, in alternating runs of the same session."""

from __future__ import annotations

import statistics
import time

from gateway.core import merkle
from gateway.core.logcheck import check_span
from gateway.ops.config import Config
from gateway.service.integrity import startup_check
from gateway.service.scrubber import Scrubber, ScrubSettings
from gateway.storage import SqlStore, make_engine
from gateway.storage.integrity import IntegrityStore

from ._context import Context
from ._data import LogFiller
from ._procs import server_process
from ._results import Figure, Measure, Target, ratio
from ._setup import Backend
from .ingest import stream_listings

NAME = "scrub"
SPAN = 256
DAY_S = 86_400.0


def run(ctx: Context) -> None:
    default_rate = ctx.alliance.config("sqlite://").scrub_rate_entries_per_s
    for backend in ctx.backends:
        _scrub_rate(ctx, backend, default_rate)
        _ingest_beside_scrubber(ctx, backend, default_rate)


def _scrub_rate(ctx: Context, backend: Backend, default_rate: float) -> None:
    log = ctx.large_log(backend)
    log.grow_to(ctx.sizes.merkle_sizes[-1])
    rows = IntegrityStore(log.store)
    n = min(log.size, ctx.sizes.scrub_entries)
    # Baseline: the same check over rows already in memory (hashing only).
    spans = [rows.span_rows(a, min(n, a + SPAN)) for a in range(0, n, SPAN)]
    began = time.perf_counter()
    for a, (entries, nodes) in zip(range(0, n, SPAN), spans, strict=True):
        assert not check_span(a, min(n, a + SPAN), entries, nodes)
    hashing = ctx.baseline(
        f"scrub.{backend.name}.hash_only",
        lambda: Measure(
            f"scrub.{backend.name}.hash_only",
            n / (time.perf_counter() - began),
            "entries/s",
            detail={"entries": n, "span": SPAN},
        ),
    )
    del spans
    # The scrubber itself, unthrottled: each step reads a span, checks it, saves its place.
    scrubber = Scrubber(rows, ScrubSettings(1e9, span=SPAN))
    began = time.perf_counter()
    checked = 0
    while checked < n:
        step = scrubber.step()
        if not step:
            break
        checked += step
    seconds = time.perf_counter() - began
    rate = checked / seconds
    assert not list(log.store.damage), "the benchmark log is damaged"
    ctx.report.add(
        Figure(
            name=f"scrub.{backend.name}.rate",
            benchmark=NAME,
            backend=backend.name,
            value=rate,
            unit="entries/s",
            baseline=hashing,
            ratio=ratio(rate, hashing.value),
            ratio_of="scrubber (database reads, checks, position saved) / hashing alone",
            target=Target("value", ">=", default_rate),
            note=(
                f"unthrottled, {checked:,} entries of a {log.size:,}-entry log in steps of "
                f"{SPAN}; at the default {default_rate:g} entries/s a 10^6-entry log takes "
                f"{1e6 / default_rate / 3600:.1f} h (target: the default rate is reachable)"
            ),
            detail={
                "entries": checked,
                "seconds": round(seconds, 3),
                "hours_per_million_at_default": round(1e6 / default_rate / 3600, 2),
                "cpu_share_at_default": round(default_rate / rate, 4),
            },
        )
    )
    # The start-up check on the large log: count the records, rehash the newest part.
    config = log.config
    began = time.perf_counter()
    rows.coverage()
    counted = time.perf_counter() - began
    count = ctx.baseline(
        f"startup.{backend.name}.count",
        lambda: Measure(
            f"startup.{backend.name}.count",
            counted,
            "s",
            better="lower",
            detail={"entries": log.size},
        ),
    )
    began = time.perf_counter()
    startup_check(rows, entries=config.startup_check_entries)
    full = time.perf_counter() - began
    ctx.report.add(
        Figure(
            name=f"startup.{backend.name}.check",
            benchmark=NAME,
            backend=backend.name,
            value=full,
            unit="s",
            baseline=count,
            ratio=ratio(full, count.value),
            ratio_of="start-up check / its record count alone",
            target=Target("value", "<=", 2.0),
            note=(
                f"records counted over {log.size:,} entries, the newest "
                f"{config.startup_check_entries:,} rehashed with their nodes"
            ),
        )
    )


def _ingest_beside_scrubber(ctx: Context, backend: Backend, default_rate: float) -> None:
    """Alternate gateways without and with the scrubber; each run gets a fresh database
    holding a base log, so the scrubber has a whole log to walk while records stream."""
    n = ctx.sizes.ingest_records
    authority = ctx.alliance.authority
    rates: dict[str, list[float]] = {"off": [], "default": [], "unthrottled": []}
    plan = ["off", "default"] * ctx.sizes.scrub_pairs + ["unthrottled"]
    for i, mode in enumerate(plan):
        rate = {"off": 0.0, "default": default_rate, "unthrottled": 1e9}[mode]
        with backend.fresh(f"scrub-ingest-{i}") as url:
            config: Config = ctx.alliance.config(url, scrub_rate_entries_per_s=rate)
            ctx.alliance.prepare(config)
            base = stream_base(ctx, config)
            with server_process(f"gateway-scrub-{mode}-{i}", config) as handle:
                streamed = stream_listings(ctx, handle, authority, n, f"scrub-{mode}-{i}")
            rates[mode].append(streamed.rate)
            print(f"    {mode:<12} {streamed.rate:,.0f} records/s (base log {base:,})", flush=True)
    without = statistics.median(rates["off"])
    baseline = ctx.baseline(
        f"ingest.{backend.name}.no_scrubber",
        lambda: Measure(
            f"ingest.{backend.name}.no_scrubber",
            without,
            "records/s",
            detail={"runs": len(rates["off"]), "records": n},
        ),
    )
    for mode, target in (("default", Target("ratio", ">=", 0.9)), ("unthrottled", None)):
        value = statistics.median(rates[mode])
        ctx.report.add(
            Figure(
                name=f"ingest.{backend.name}.scrubber_{mode}",
                benchmark=NAME,
                backend=backend.name,
                value=value,
                unit="records/s",
                baseline=baseline,
                ratio=ratio(value, baseline.value),
                ratio_of=f"ingest with the scrubber ({mode}) / without",
                target=target,
                note=(
                    f"median of {len(rates[mode])} run(s) alternating with runs without "
                    f"(each {n:,} records, one SubmitRecords stream, fresh database)"
                ),
                detail={"runs": ",".join(f"{r:.0f}" for r in rates[mode])},
            )
        )


def stream_base(ctx: Context, config: Config, count: int | None = None) -> int:
    """Fill the fresh database with a base log of ``count`` entries (default
    ``scrub_base``; bulk, as the large log is filled); the log's size then."""
    engine = make_engine(config.database_url)
    try:
        store = SqlStore(engine)
        size = store.log_size()
        filler = LogFiller(
            engine, ctx.alliance.authority, config.log_origin, ctx.alliance.subject_index()
        )
        count = ctx.sizes.scrub_base if count is None else count
        filler.fill(merkle.CompactRange.from_reader(size, store), ctx.subjects(count), count)
        return size + count
    finally:
        engine.dispose()
