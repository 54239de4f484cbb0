"""``make soak``: a bounded mixed load on two federated gateways, and what it did to them.

Two regional alliances (Zhejiang and Guangdong) are created in a scratch folder, each
with a CA, a gateway key and certificate, an authority and a platform; their gateways
run in this process on SQLite and pull from each other over mTLS on 127.0.0.1. For
``--duration-s`` seconds, ``--workers`` threads issue ``--rate`` operations a second
in all, through the client library (``clients.AllianceClient``):

=================  ======================================================  ======
operation          what                                                    share
=================  ======================================================  ======
``submit``         an authority lists a seller (unary SubmitRecord)          30 %
``submit_stream``  an authority lists ten sellers over SubmitRecords         10 %
``confirm``        a platform confirms a sanction on one of its region's     20 %
                   listings (unary)
``check``          a platform checks ten sellers at its gateway (they may    40 %
                   be listed in either region)
=================  ======================================================  ======

while one ``watch`` stream per gateway follows its log from index 0 (it must see every
index once, in order). At the end the two gateways must hold the same records
(federation), every watch must have reached its log's size, and no call may have failed.

The report (a table, and JSON with ``--json PATH``) gives the errors (target 0), the
resident memory of this process (which hosts both gateways and the clients) at the start
and the end of the load, and the latency drift: p50 and p99 of each operation in the
first and the last 10 % of the run, and their ratio. Exit status 1 when any error
occurred. Every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import random
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from certs.pki import create_ca, generate_signing_key, issue_gateway, issue_member
from clients.client import AllianceClient, ClientError
from gateway.core.crypto import load_signing_key
from gateway.core.identifiers import validate_uscc
from gateway.core.notes import NoteSigner
from gateway.core.statements import (
    ConductType,
    Listing,
    ListKind,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Subject,
)
from gateway.errors import GatewayError
from gateway.ops.app import Gateway
from gateway.ops.config import config_from_mapping
from gateway.ops.federation_demo import Actor
from gateway.ops.logs import setup_logging

logger = logging.getLogger(__name__)

MIX: tuple[tuple[str, int], ...] = (
    ("submit", 30),
    ("submit_stream", 10),
    ("confirm", 20),
    ("check", 40),
)
STREAM_RECORDS = 10
CHECK_SUBJECTS = 10
SUBJECT_POOL = 200
CONVERGE_TIMEOUT_S = 60.0
WATCH_DRAIN_TIMEOUT_S = 30.0
EDGE_FRACTION = 0.10
_MEASURES = tuple(m for m in SanctionMeasure if m is not SanctionMeasure.OTHER)


# -- the two alliances ---------------------------------------------------------------------


@dataclass
class Region:
    code: str
    region_code: str
    root: Path
    port: int
    authority: Actor
    platform: Actor
    gateway: Gateway | None = None
    listing_ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def trust_domain(self) -> str:
        return f"{self.code}.alliance.test"

    @property
    def origin(self) -> str:
        return f"{self.trust_domain}/alliance-log/v1"

    @property
    def gw(self) -> Gateway:
        assert self.gateway is not None
        return self.gateway

    def add_listing(self, record_id: str) -> None:
        with self.lock:
            self.listing_ids.append(record_id)

    def some_listing(self, rng: random.Random) -> str | None:
        with self.lock:
            return rng.choice(self.listing_ids) if self.listing_ids else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _actor(root: Path, ca: Path, member_id: str, name: str, region: str) -> Actor:
    folder = root / "members" / name
    issued = issue_member(ca, member_id, folder)
    generate_signing_key(folder / "signing-key.pem")
    return Actor(
        member_id, issued.cert, issued.key, folder / "signing-key.pem", ca / "ca.pem", region
    )


def prepare(base: Path) -> list[Region]:
    regions = []
    for code, region_code in (("zj", "330100"), ("gd", "440300")):
        root = base / code
        td = f"{code}.alliance.test"
        create_ca(root / "ca", td)
        issue_gateway(root / "ca", td, "gateway", root / "gateway")
        generate_signing_key(root / "gateway" / "signing-key.pem")
        authority = _actor(
            root,
            root / "ca",
            f"spiffe://{td}/authority/{code}-amr",
            f"{code}-amr",
            region_code[:2] + "0000",
        )
        platform = _actor(
            root, root / "ca", f"spiffe://{td}/platform/{code}-mall", f"{code}-mall", region_code
        )
        regions.append(Region(code, region_code, root, _free_port(), authority, platform))
    return regions


def start_gateways(regions: Sequence[Region], stack: ExitStack) -> None:
    gateways = []
    for region in regions:
        peers = []
        for peer in regions:
            if peer is region:
                continue
            key = load_signing_key(peer.root / "gateway" / "signing-key.pem")
            peers.append(
                {
                    "name": "gateway",
                    "address": f"127.0.0.1:{peer.port}",
                    "trust_domain": peer.trust_domain,
                    "ca_file": str(peer.root / "ca" / "ca.pem"),
                    "log_origin": peer.origin,
                    "log_vkey": NoteSigner(peer.origin, key).verifier().vkey,
                }
            )
        gw_dir = region.root / "gateway"
        config = config_from_mapping(
            {
                "trust_domain": region.trust_domain,
                "gateway_name": "gateway",
                "region_code": region.region_code,
                "listen_address": f"127.0.0.1:{region.port}",
                "metrics_address": "127.0.0.1:0",
                "database_url": f"sqlite:///{region.root / 'gateway.db'}",
                "ca_file": str(region.root / "ca" / "ca.pem"),
                "cert_file": str(gw_dir / "gateway.pem"),
                "key_file": str(gw_dir / "gateway-key.pem"),
                "signing_key_file": str(gw_dir / "signing-key.pem"),
                "checkpoint_interval_s": 0.25,
                "federation_backoff_initial_s": 0.2,
                "federation_backoff_max_s": 1.0,
                "shutdown_grace_s": 1.0,
                # A long soak checks more subjects a day than members may (load, not use).
                "access_log_daily_quota": 0,
                "peers": peers,
            },
            base_dir=region.root,
            env={},
        )
        gw = Gateway(config)
        for actor in (region.authority, region.platform):
            gw.core.members.add(
                actor.member_id, actor.region, actor.public_key(), possession=actor.possession()
            )
        gateways.append((region, gw))
    for region, gw in gateways:
        region.gateway = gw.start(serve_metrics=False)
        stack.callback(gw.stop, 1.0)


# -- measurements --------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size of this process now (peak size where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    """CPU time (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Sample:
    at: float  # seconds since the load started
    op: str
    seconds: float


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    max_late_s: float = 0.0  # how far behind its schedule an operation started
    lock: threading.Lock = field(default_factory=threading.Lock)

    def late(self, seconds: float) -> None:
        with self.lock:
            self.max_late_s = max(self.max_late_s, seconds)

    def sample(self, at: float, op: str, seconds: float) -> None:
        with self.lock:
            self.samples.append(Sample(at, op, seconds))

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)
        logger.warning("soak: %s", what)


def drift(samples: Sequence[Sample], duration_s: float) -> dict[str, dict[str, Any]]:
    """p50/p99 (ms) per operation in the first and the last 10 % of the run."""
    edge = duration_s * EDGE_FRACTION
    out: dict[str, dict[str, Any]] = {}
    for op, _ in MIX:
        first = [s.seconds * 1000 for s in samples if s.op == op and s.at < edge]
        last = [s.seconds * 1000 for s in samples if s.op == op and s.at >= duration_s - edge]
        row: dict[str, Any] = {"count": sum(1 for s in samples if s.op == op)}
        for name, values in (("first", first), ("last", last)):
            row[name] = {
                "n": len(values),
                "p50_ms": round(percentile(values, 50), 3),
                "p99_ms": round(percentile(values, 99), 3),
            }
        for q in ("p50_ms", "p99_ms"):
            a, b = row["first"][q], row["last"][q]
            row[f"drift_{q[:3]}"] = round(b / a, 3) if a and not math.isnan(a + b) else None
        out[op] = row
    return out


# -- the load ------------------------------------------------------------------------------


def subject_pool(n: int) -> list[str]:
    """``n`` valid Unified Social Credit Codes (both check characters searched)."""
    pool = []
    for i in range(1, n + 1):
        stem = f"91330100{i:08d}"
        pool.append(_complete(stem))
    return pool


def _complete(stem: str) -> str:
    for org in "0123456789X":
        for check in "0123456789ABCDEFGHJKLMNPQRTUWXY":
            try:
                return validate_uscc(stem + org + check)
            except GatewayError:
                continue
    raise ValueError(f"no valid code starts with {stem}")


@dataclass
class Soak:
    regions: Sequence[Region]
    duration_s: float
    rate: float
    workers: int
    seed: int
    recorder: Recorder = field(default_factory=Recorder)
    subjects: list[str] = field(default_factory=lambda: subject_pool(SUBJECT_POOL))
    _serial: Iterator[int] = field(default_factory=itertools.count)
    _serial_lock: threading.Lock = field(default_factory=threading.Lock)

    def serial(self) -> int:
        with self._serial_lock:
            return next(self._serial)

    def run(self, stack: ExitStack) -> dict[str, Any]:
        total_ops = int(self.rate * self.duration_s)
        tickets = iter(range(total_ops))
        tickets_lock = threading.Lock()
        watchers = [Watcher(r, self.recorder, stack) for r in self.regions]
        for w in watchers:
            w.start()
        rss_start, cpu_start, load_start = rss_bytes(), cpu_seconds(), os.getloadavg()[0]
        t0 = time.monotonic()
        deadline = t0 + self.duration_s

        def next_ticket() -> int | None:
            with tickets_lock:
                return next(tickets, None)

        threads = [
            threading.Thread(
                target=self._worker,
                args=(n, t0, deadline, next_ticket),
                name=f"soak-{n}",
                daemon=True,
            )
            for n in range(self.workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.duration_s + 60)
            if t.is_alive():
                self.recorder.error(f"{t.name} did not finish within its deadline")
        ran_s = time.monotonic() - t0
        rss_end, cpu_end, load_end = rss_bytes(), cpu_seconds(), os.getloadavg()[0]

        converge_s = self._converge()
        for w in watchers:
            w.drain(self.recorder)
        ops: dict[str, int] = {op: 0 for op, _ in MIX}
        for s in self.recorder.samples:
            ops[s.op] += 1
        return {
            "duration_s": round(ran_s, 2),
            "rate_per_s": self.rate,
            "workers": self.workers,
            "seed": self.seed,
            "ops": ops,
            "ops_planned": total_ops,
            # Operations not issued because the load fell behind its schedule (overload).
            "ops_skipped": total_ops - len(self.recorder.samples) - len(self.recorder.errors),
            "max_behind_schedule_s": round(self.recorder.max_late_s, 3),
            "errors": len(self.recorder.errors),
            "error_samples": self.recorder.errors[:10],
            "rss_start_mb": round(rss_start / 2**20, 1),
            "rss_end_mb": round(rss_end / 2**20, 1),
            "rss_growth_mb": round((rss_end - rss_start) / 2**20, 1),
            # Latency drift means little on a busy machine: say how busy it was.
            "cpu_percent": round(100 * (cpu_end - cpu_start) / ran_s, 1),
            "load_average_1m": [round(load_start, 2), round(load_end, 2)],
            "latency": drift(self.recorder.samples, self.duration_s),
            "federation": {
                "converged_after_s": None if converge_s is None else round(converge_s, 3),
                "log_sizes": [r.gw.core.ledger.size for r in self.regions],
            },
            "watch": {r.code: w.seen for r, w in zip(self.regions, watchers, strict=True)},
        }

    def _worker(
        self,
        n: int,
        t0: float,
        deadline: float,
        next_ticket: Callable[[], int | None],
    ) -> None:
        with ExitStack() as stack:
            clients = {
                (r.code, role): actor.client(r.port, stack)
                for r in self.regions
                for role, actor in (("authority", r.authority), ("platform", r.platform))
            }
            self._work(n, t0, deadline, next_ticket, clients)

    def _work(
        self,
        n: int,
        t0: float,
        deadline: float,
        next_ticket: Callable[[], int | None],
        clients: dict[tuple[str, str], AllianceClient],
    ) -> None:
        # A reproducible load, not a secret: the standard generator is the right one.
        rng = random.Random(self.seed * 1000 + n)  # noqa: S311
        ops = [op for op, _ in MIX]
        weights = [w for _, w in MIX]
        while (ticket := next_ticket()) is not None:
            due = t0 + ticket / self.rate
            now = time.monotonic()
            if now >= deadline:
                return
            if due > now:
                time.sleep(due - now)
            else:
                self.recorder.late(now - due)
            op = rng.choices(ops, weights)[0]
            region = self.regions[rng.randrange(len(self.regions))]
            started = time.monotonic()
            try:
                self._do(op, region, clients, rng)
            except (GatewayError, ValueError) as e:
                self.recorder.error(f"{op} at {region.code}: {e}")
                continue
            self.recorder.sample(started - t0, op, time.monotonic() - started)

    def _listing(self, region: Region, rng: random.Random) -> Listing:
        return Listing(
            issuer=region.authority.member_id,
            subject=Subject(uscc=rng.choice(self.subjects)),
            list=ListKind.BLACKLIST,
            conduct=ConductType.FAKE_TRANSACTIONS,
            region_code=region.authority.region,
            decision_ref=f"SOAK-{region.code.upper()}-{self.seed}-{self.serial()}",
            listed_at=datetime.now(UTC).replace(microsecond=0) - timedelta(days=1),
        )

    def _do(
        self,
        op: str,
        region: Region,
        clients: dict[tuple[str, str], AllianceClient],
        rng: random.Random,
    ) -> None:
        authority = clients[(region.code, "authority")]
        platform = clients[(region.code, "platform")]
        if op == "submit":
            result = authority.submit(self._listing(region, rng))
            region.add_listing(result.record_id)
        elif op == "submit_stream":
            batch = [self._listing(region, rng) for _ in range(STREAM_RECORDS)]
            results = list(authority.submit_many(batch))
            bad = [r.message for r in results if not r.ok]
            if len(results) != len(batch) or bad:
                raise ValueError(f"stream answered {len(results)} of {len(batch)}: {bad[:2]}")
            for r in results:
                region.add_listing(r.record_id)
        elif op == "confirm":
            listing_id = region.some_listing(rng)
            if listing_id is None:  # nothing listed yet: list first
                region.add_listing(authority.submit(self._listing(region, rng)).record_id)
                return
            platform.submit(
                SanctionConfirmation(
                    issuer=region.platform.member_id,
                    listing_id=listing_id,
                    measure=rng.choice(_MEASURES),
                    action=SanctionAction.APPLIED,
                    effective_at=datetime.now(UTC),
                )
            )
        else:
            wanted = [Subject(uscc=u) for u in rng.sample(self.subjects, CHECK_SUBJECTS)]
            statuses = platform.check(wanted)
            if len(statuses) != len(wanted):
                raise ValueError(f"check answered {len(statuses)} of {len(wanted)} subjects")

    def _converge(self) -> float | None:
        start = time.monotonic()
        while time.monotonic() - start < CONVERGE_TIMEOUT_S:
            sets = {tuple(r.gw.core.store.record_ids()) for r in self.regions}
            if len(sets) == 1:
                return time.monotonic() - start
            time.sleep(0.1)
        self.recorder.error(f"the two gateways did not converge within {CONVERGE_TIMEOUT_S}s")
        return None


class Watcher(threading.Thread):
    """Follows one gateway's log from index 0 with WatchRecords; every index once, in order."""

    def __init__(self, region: Region, recorder: Recorder, stack: ExitStack) -> None:
        super().__init__(name=f"watch-{region.code}", daemon=True)
        self.region = region
        self.recorder = recorder
        self.client = region.platform.client(region.port, stack)
        self.seen = 0
        self._closing = threading.Event()

    def run(self) -> None:
        try:
            for entry in self.client.watch(0):
                if entry.log_index != self.seen:
                    self.recorder.error(
                        f"watch {self.region.code}: index {entry.log_index} "
                        f"where {self.seen} was due"
                    )
                    return
                self.seen += 1
        except GatewayError as e:
            if not self._closing.is_set():
                self.recorder.error(f"watch {self.region.code} failed: {e}")

    def drain(self, recorder: Recorder) -> None:
        """Wait until the watch reached the log's size, then end it."""
        size = self.region.gw.core.ledger.size
        start = time.monotonic()
        while self.seen < size and time.monotonic() - start < WATCH_DRAIN_TIMEOUT_S:
            time.sleep(0.05)
        if self.seen < size:
            recorder.error(f"watch {self.region.code} saw {self.seen} of {size} entries")
        self._closing.set()
        self.client.close()
        self.join(10)


# -- the report ----------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def render(report: dict[str, Any]) -> str:
    lines = [
        f"soak: {report['duration_s']}s at {report['rate_per_s']}/s with {report['workers']} "
        f"workers (seed {report['seed']}): {sum(report['ops'].values())} of "
        f"{report['ops_planned']} operations, errors {report['errors']} (at worst "
        f"{report['max_behind_schedule_s']}s behind schedule, {report['ops_skipped']} "
        "not issued)",
        f"memory (RSS of this process): {report['rss_start_mb']} MiB -> "
        f"{report['rss_end_mb']} MiB ({report['rss_growth_mb']:+} MiB); CPU "
        f"{report['cpu_percent']}% of a core; machine load (1 min) "
        f"{report['load_average_1m'][0]} -> {report['load_average_1m'][1]}",
        f"federation: converged {report['federation']['converged_after_s']}s after the load, "
        f"log sizes {report['federation']['log_sizes']}; watch saw {report['watch']}",
        "",
        f"{'operation':<14}{'count':>7}  {'p50 first':>10}{'p50 last':>10}{'drift':>7}"
        f"  {'p99 first':>10}{'p99 last':>10}{'drift':>7}",
    ]
    for op, row in report["latency"].items():
        lines.append(
            f"{op:<14}{row['count']:>7}  {_ms(row['first']['p50_ms']):>10}"
            f"{_ms(row['last']['p50_ms']):>10}{row['drift_p50'] or '-':>7}"
            f"  {_ms(row['first']['p99_ms']):>10}{_ms(row['last']['p99_ms']):>10}"
            f"{row['drift_p99'] or '-':>7}"
        )
    lines.append("(latencies in ms; first/last = the first and the last 10 % of the run)")
    for e in report["error_samples"]:
        lines.append(f"error: {e}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.ops.soak", description=__doc__)
    parser.add_argument("--duration-s", type=float, default=60.0, help="length of the load")
    parser.add_argument("--rate", type=float, default=40.0, help="operations a second, in all")
    parser.add_argument("--workers", type=int, default=4, help="client threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--dir", type=Path, default=None, help="keep the alliances here")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="ERROR")
    args = parser.parse_args(argv)
    if args.duration_s <= 0 or args.rate <= 0 or args.workers < 1:
        parser.error("--duration-s and --rate must be positive, --workers at least 1")
    setup_logging(args.log_level)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)  # noqa: S311
    base = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="soak-"))
    if args.dir and base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            regions = prepare(base)
            start_gateways(regions, stack)
            soak = Soak(regions, args.duration_s, args.rate, args.workers, seed)
            report = soak.run(stack)
    except (OSError, GatewayError, ClientError) as e:
        print(f"soak failed: {e}", file=sys.stderr)
        return 1
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    print(render(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
