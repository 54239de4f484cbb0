"""What a run shares between benchmarks: sizes, the alliance, the backends, baselines
measured once, one running gateway per backend, and the large log."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway.core import merkle
from gateway.ops.config import Config
from gateway.service.ledger import Ledger
from gateway.storage import (
    SqlStore,
    WalCheckpointer,
    make_engine,
)

from ._data import LogFiller
from ._procs import ServerHandle, server_process
from ._profile import Profiler
from ._results import Measure, Report
from ._setup import PEER_REGION, Alliance, Backend, Member

# Client threads for every unary benchmark, gateway and echo alike.
CLIENT_THREADS = 8
# Subject numbering: each use draws from its own range, so records never collide.
GATEWAY_SUBJECTS = 10_000_000
APPEND_SUBJECTS = 50_000_000
UNLISTED_SUBJECTS = 90_000_000


@dataclass(frozen=True)
class Sizes:
    verify_count: int
    echo_seconds: float
    stream_messages: int
    stream_seconds: float
    ingest_records: int
    unary_records: int
    unary_seconds: float
    check_pool: int
    check_requests: int
    check_seconds: float
    latency_seconds: float
    merkle_sizes: tuple[int, ...]
    append_batches: int
    proofs: int
    pymerkle_budget_s: float
    memory_size: int
    memory_proofs: int
    memory_checks: int
    federation_records: int
    lag_seconds: float
    scrub_entries: int  # entries the unthrottled scrubber walks on the large log
    scrub_pairs: int  # ingest runs without and with the scrubber, alternating
    scrub_base: int  # entries bulk-filled before each of those runs


FULL = Sizes(
    verify_count=20_000,
    echo_seconds=5.0,
    stream_messages=40_000,
    stream_seconds=10.0,
    ingest_records=20_000,
    unary_records=30_000,
    unary_seconds=8.0,
    check_pool=5_000,
    check_requests=40,
    check_seconds=8.0,
    latency_seconds=6.0,
    merkle_sizes=(10_000, 100_000, 1_000_000),
    append_batches=10,
    proofs=1_000,
    pymerkle_budget_s=90.0,
    memory_size=1_000_000,
    memory_proofs=1_000,
    memory_checks=20,
    federation_records=100_000,
    lag_seconds=20.0,
    scrub_entries=100_000,
    scrub_pairs=2,
    scrub_base=50_000,
)

QUICK = Sizes(
    verify_count=2_000,
    echo_seconds=1.0,
    stream_messages=2_000,
    stream_seconds=2.0,
    ingest_records=1_000,
    unary_records=2_000,
    unary_seconds=1.5,
    check_pool=500,
    check_requests=4,
    check_seconds=1.5,
    latency_seconds=1.5,
    merkle_sizes=(1_000, 10_000),
    append_batches=3,
    proofs=200,
    pymerkle_budget_s=10.0,
    memory_size=10_000,
    memory_proofs=100,
    memory_checks=4,
    federation_records=2_000,
    lag_seconds=3.0,
    scrub_entries=5_000,
    scrub_pairs=1,
    scrub_base=2_000,
)


@dataclass
class RunningGateway:
    handle: ServerHandle
    config: Config
    listed: list[int]


class LargeLog:
    """A log grown by bulk fill to the Merkle sizes; the memory benchmark reuses it."""

    def __init__(self, alliance: Alliance, config: Config) -> None:
        self.config = config
        alliance.prepare(config)
        # As a gateway opens it (gateway.ops.app.Core): on SQLite the WAL is
        # checkpointed on a thread of its own, not in the appends being measured.
        self.engine = make_engine(config.database_url, background_checkpoints=True)
        self.wal = WalCheckpointer.started_for(self.engine)
        index = alliance.subject_index()
        self.store = SqlStore(self.engine, subject_index=index)
        self.ledger = Ledger(self.store)
        self.filler = LogFiller(self.engine, alliance.authority, config.log_origin, index)
        self.filled_subjects = 0
        self.fill_seconds = 0.0
        self.fill_method = ""

    @property
    def size(self) -> int:
        return self.ledger.size

    def grow_to(self, size: int, on_entries: Callable[[list[bytes]], None] | None = None) -> None:
        """Bulk-append listings until the log holds ``size`` leaves.

        ``on_entries`` sees the PAE bytes of every filled leaf (to feed another tree).
        """
        self.ledger.refresh()
        while self.size < size:
            n = min(100_000, size - self.size)
            rng = merkle.CompactRange.from_reader(self.size, self.store)
            if on_entries is not None:
                on_entries(list(self.filler.entries(self.filled_subjects, n)))
            stats = self.filler.fill(rng, self.filled_subjects, n)
            self.filled_subjects += n
            self.fill_seconds += stats.seconds
            self.fill_method = stats.method
            self.ledger.refresh()

    def close(self) -> None:
        if self.wal is not None:
            self.wal.stop()
        self.engine.dispose()


class Context:
    def __init__(
        self,
        report: Report,
        sizes: Sizes,
        alliance: Alliance,
        backends: list[Backend],
        *,
        scratch: Path,
        profile_dir: Path | None,
        profile_gil: bool = False,
        seed: int = 20261001,
    ) -> None:
        self.report = report
        self.sizes = sizes
        self.alliance = alliance
        self.backends = backends
        self.scratch = scratch
        self.profile_dir = profile_dir
        self.profile_gil = profile_gil
        self.random = random.Random(seed)
        self._stack = ExitStack()
        self._measured: dict[str, Measure] = {}
        self._gateways: dict[str, RunningGateway] = {}
        self._logs: dict[str, LargeLog] = {}
        self._next_subject = GATEWAY_SUBJECTS
        self._peer_alliance: Alliance | None = None
        self.worker_threads = alliance.config("sqlite://").worker_threads
        self.max_message_bytes = alliance.config("sqlite://").max_message_bytes

    def close(self) -> None:
        self._stack.close()

    def baseline(self, name: str, measure: Callable[[], Measure]) -> Measure:
        """Measure a baseline once per run; every figure that needs it reuses it."""
        if name not in self._measured:
            self._measured[name] = self.report.add_baseline(measure())
        return self._measured[name]

    def peer_alliance(self) -> Alliance:
        """A second regional alliance (own CA, trust domain, log key), made on first use."""
        if self._peer_alliance is None:
            self._peer_alliance = Alliance(self.scratch / "peer-alliance", PEER_REGION)
        return self._peer_alliance

    def subjects(self, count: int) -> int:
        """Reserve ``count`` fresh subject numbers for listings; return the first."""
        start = self._next_subject
        self._next_subject += count
        return start

    def credentials(self, member: Member) -> Callable[[], grpc.ChannelCredentials]:
        return member.credentials

    def gateway(self, backend: Backend) -> RunningGateway:
        """The gateway the gRPC benchmarks share on ``backend`` (started once)."""
        if backend.name not in self._gateways:
            url = self._stack.enter_context(backend.fresh("gateway"))
            config = self.alliance.config(url)
            self.alliance.prepare(config)
            handle = self._stack.enter_context(server_process(f"gateway-{backend.name}", config))
            self._gateways[backend.name] = RunningGateway(handle, config, [])
        return self._gateways[backend.name]

    def large_log(self, backend: Backend) -> LargeLog:
        if backend.name not in self._logs:
            url = self._stack.enter_context(backend.fresh("log"))
            log = LargeLog(self.alliance, self.alliance.config(url))
            self._stack.callback(log.close)
            self._logs[backend.name] = log
        return self._logs[backend.name]

    @contextmanager
    def profiled(self, label: str, pid: int) -> Iterator[None]:
        """Sample ``pid`` with py-spy while the block runs, when --profile was given."""
        if self.profile_dir is None:
            yield
            return
        path = self.profile_dir / f"profile-{label}.txt"
        with Profiler(pid, path, gil=self.profile_gil) as profiler:
            yield
        summary = profiler.summary()
        if summary:
            self.report.profiles[label] = summary
