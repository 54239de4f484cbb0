"""Federation: catch-up of a peer's log between two regional gateways, and replication
lag under steady load.

Two alliances, each with its own CA, trust domain and log key: Zhejiang (the source)
and Guangdong (the replica). Per backend:

1. **Source ingest** (the baseline): one ``SubmitRecords`` stream of ``n`` distinct
   signed listings into the source gateway alone, exactly like the ingest benchmark.
2. **Catch-up**: a fresh replica gateway configured with the source as its only peer
   starts and pulls the whole log (checkpoint and consistency proof verified, every
   record's signature checked against the replicated member directory, appended to its
   own log with the cursor in the same transaction). The rate counts from the first
   cursor reading after the replica is up until its cursor reaches the source's size,
   read from the replica's database; then the replica must hold every source record.
3. **Lag**: with the replica caught up and tailing live, records go into the source at
   a quarter of the measured ingest rate (open loop; at half of it the two gateways and
   the load generator saturate the two cores, so the source falls behind the offered
   rate and the figure would measure overload); for each acknowledged record, the lag is
   the time from its acknowledgement until the replica's committed cursor passes its
   log index (cursor sampled every few milliseconds). The source signs a checkpoint
   every ``checkpoint_interval_s`` and replication moves only signed entries, so the
   interval is the floor of the lag; it is the baseline shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.storage import SqlStore, make_engine
from gateway.storage.models import RecordRow

from . import _data
from ._context import Context
from ._load import paced_stream, percentile
from ._procs import server_process
from ._results import Figure, Measure, Target, ratio
from ._setup import Alliance, Backend
from .ingest import METHOD, stream_listings

NAME = "federation"
LAG_RATE_FRACTION = 0.25  # of the measured ingest rate: a load the pair sustains
_POLL_S = 0.005


def run(ctx: Context) -> None:
    source, replica = ctx.alliance, ctx.peer_alliance()
    for backend in ctx.backends:
        with ExitStack() as stack:
            _run_backend(ctx, backend, source, replica, stack)


def _run_backend(
    ctx: Context, backend: Backend, source: Alliance, replica: Alliance, stack: ExitStack
) -> None:
    n = ctx.sizes.federation_records
    label = backend.name
    source_url = stack.enter_context(backend.fresh("federation-source"))
    source_config = source.config(source_url, peers=[replica.peer_entry(None)])
    source.prepare(source_config)
    source_db = _Database(source_url)
    stack.callback(source_db.close)
    source_gw = stack.enter_context(server_process(f"source-{label}", source_config))

    # 1. The baseline: single-gateway streaming ingest of the same records.
    authority = source.authority
    streamed = stream_listings(ctx, source_gw, authority, n, f"federation-ingest-{label}")
    ingest = ctx.report.add_baseline(
        Measure(
            f"federation.{label}.source_ingest",
            streamed.rate,
            "records/s",
            detail={"records": streamed.stored, "seconds": round(streamed.seconds, 3)},
        )
    )
    size = source_db.log_size()

    # 2. Catch-up of the whole log by a fresh replica.
    replica_url = stack.enter_context(backend.fresh("federation-replica"))
    replica_config = replica.config(
        replica_url, peers=[source.peer_entry(f"127.0.0.1:{source_gw.port}")]
    )
    replica.prepare(replica_config)
    replica_db = _Database(replica_url)
    stack.callback(replica_db.close)
    cursor = _Cursor(replica_db, source.log_origin)
    started = time.perf_counter()
    replica_gw = stack.enter_context(server_process(f"replica-{label}", replica_config))
    first_index, first_at = cursor.read(), time.perf_counter()
    with ctx.profiled(f"federation-catchup-{label}", replica_gw.pid):
        done_at = cursor.wait_for(size, timeout_s=max(120.0, n / 50))
    held = replica_db.records_from(source.log_origin)
    if held != size:
        raise RuntimeError(
            f"federation: the replica's cursor reached {size} but it holds {held} records "
            f"of the source's {size}"
        )
    catchup_rate = (size - first_index) / (done_at - first_at)
    ctx.report.add(
        Figure(
            name=f"federation.{label}.catch_up",
            benchmark=NAME,
            backend=label,
            value=catchup_rate,
            unit="records/s",
            baseline=ingest,
            ratio=ratio(catchup_rate, ingest.value),
            ratio_of="catch-up / single-gateway streaming ingest",
            target=Target("ratio", ">=", 0.4),
            note=f"a fresh replica pulls the source's {size:,} entries: checkpoint and "
            "consistency proof verified, every signature checked, appended durably with "
            "the cursor; timed from the first cursor reading after start-up",
            detail={
                "entries": size,
                "counted_from_index": first_index,
                "seconds": round(done_at - first_at, 3),
                "start_to_caught_up_s": round(done_at - started, 3),
            },
        )
    )

    # 3. Lag while the source takes records at half its ingest rate.
    offered = ingest.value * LAG_RATE_FRACTION
    count = max(1, int(offered * ctx.sizes.lag_seconds))
    lag_requests = _data.submit_requests(
        _data.signed_listings(authority, ctx.subjects(count), count)
    )
    sampler = _Sampler(cursor.read)
    with sampler:
        paced = paced_stream(
            source_gw.port,
            authority.credentials(),
            METHOD,
            lag_requests,
            rate=offered,
            seconds=ctx.sizes.lag_seconds,
            timeout_s=ctx.sizes.lag_seconds * 4 + 60,
        )
        acked = _acknowledged(paced.answers)
        if len(acked) != paced.sent:
            raise RuntimeError(
                f"federation: {paced.sent} sent at a steady rate, {len(acked)} stored"
            )
        cursor.wait_for(max(i for _, i in acked) + 1, timeout_s=60.0)
    lags = sampler.lags(acked)
    interval_ms = source_config.checkpoint_interval_s * 1000.0
    floor = ctx.report.add_baseline(
        Measure(
            f"federation.{label}.checkpoint_interval",
            interval_ms,
            "ms",
            better="lower",
            detail={"what": "the source's configured checkpoint interval (the lag floor)"},
        )
    )
    p50, p99 = percentile(lags, 50) * 1000.0, percentile(lags, 99) * 1000.0
    ctx.report.add(
        Figure(
            name=f"federation.{label}.lag_p99",
            benchmark=NAME,
            backend=label,
            value=p99,
            unit="ms",
            baseline=floor,
            ratio=ratio(p99, interval_ms),
            ratio_of="lag p99 / checkpoint interval",
            note=f"replication lag (source acknowledgement to the replica's committed "
            f"cursor) at {offered:,.0f} records/s offered, a quarter of the measured ingest rate",
            detail={
                "records": len(acked),
                "offered_per_s": round(offered, 1),
                "achieved_per_s": round(len(acked) / paced.seconds, 1),
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
                "max_ms": round(max(lags) * 1000.0, 1),
            },
        )
    )


def _acknowledged(answers: list[tuple[float, bytes]]) -> list[tuple[float, int]]:
    """(arrival time, log index) of every answer that says stored."""
    out = []
    for at, raw in answers:
        result = ex.SubmitRecordResult.FromString(raw)
        if result.code == 0:
            out.append((at, result.log_index))
    return out


class _Database:
    """A read-only view of a gateway's database from the bench process."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url, pool_size=1)
        self.store = SqlStore(self.engine)

    def log_size(self) -> int:
        return self.store.log_size()

    def records_from(self, origin: str) -> int:
        with self.engine.connect() as conn:
            q = select(func.count()).select_from(RecordRow).where(RecordRow.origin == origin)
            return int(conn.execute(q).scalar_one())

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class _Cursor:
    """The replica's committed cursor for one peer log (0 before the first batch)."""

    db: _Database
    origin: str

    def read(self) -> int:
        for c in self.db.store.peer_cursors():
            if c.origin == self.origin:
                return c.next_index
        return 0

    def wait_for(self, index: int, *, timeout_s: float) -> float:
        """Wait until the cursor is at least ``index``; return the perf_counter time."""
        deadline = time.perf_counter() + timeout_s
        while True:
            now = time.perf_counter()
            value = self.read()
            if value >= index:
                return now
            if now > deadline:
                raise RuntimeError(
                    f"federation: the replica's cursor is at {value} after {timeout_s:.0f} s, "
                    f"not {index}"
                )
            time.sleep(_POLL_S)


class _Sampler:
    """Samples the cursor in a thread: (perf_counter time, next_index)."""

    def __init__(self, read: Callable[[], int]) -> None:
        self._read = read
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cursor-sampler", daemon=True)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.samples.append((time.perf_counter(), self._read()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self._read()))
            self._stop.wait(_POLL_S)

    def lags(self, acked: list[tuple[float, int]]) -> list[float]:
        """For each acknowledged (time, index): seconds until a sample shows the cursor
        past the index (never negative: a record is replicated only once acknowledged)."""
        out = []
        j = 0
        for at, index in sorted(acked, key=lambda a: a[1]):
            while j < len(self.samples) and self.samples[j][1] <= index:
                j += 1
            if j == len(self.samples):
                raise RuntimeError(f"federation: index {index} never reached the replica")
            out.append(max(0.0, self.samples[j][0] - at))
        return out
