"""Partitions: three federated regional gateways under continuous load lose one of
them — first hung (SIGSTOP: it keeps its connections but answers nothing), then stopped
and restarted — and converge, once it is back, to the same records and the same answers.

Each region (ZJ, GD, BJ) is its own trust domain with its own CA, log key and
database, and runs ``alliance-gateway serve`` as a separate process on a reserved port,
pulling from the other two (full mesh, PROTOCOL.md §6). In every region an authority
streams listings and a platform confirms sanctions on them, from client threads, all
the time. GD is SIGSTOPped for a while, SIGCONTed, then stopped with SIGTERM and
restarted, while the others keep taking records. After the load ends the test asserts:

- the three logs hold the same record set (SHA-256 over the sorted record ids), each
  log read back whole, contiguous, duplicate-free and hashing to its signed root;
- every record any gateway acknowledged is in all three logs, at the acknowledged
  index in its home log;
- CheckSubjects answers byte-for-byte the same on the three for every seller listed;

and reports how long GD took to catch up after each reconnection and how long the three
took to converge after the last write (printed, and as test properties).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gwtest import BACKENDS, Alliance, Member, exchange, pg_base_url, pg_schema_url
from loadgen import (
    SUBJECTS,
    AckBook,
    Loader,
    check_acknowledged,
    confirmations,
    listings,
    open_channel,
    read_log,
    set_hash,
    stop_all,
)
from procs import (
    GatewayProcess,
    RecordProperty,
    alliance_config,
    eventually,
    register,
    reserve_port,
)

from gateway import codec
from gateway.core.notes import NoteSigner, NoteVerifier
from gateway.core.statements import Subject
from gateway.ops.config import Config
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.storage import SqlStore, make_engine

CONVERGE_TIMEOUT_S = 45.0


@dataclass
class Site:
    code: str
    alliance: Alliance
    authority: Member
    platform: Member
    port: int
    book: AckBook  # the authority's listings
    sanctions: AckBook  # the platform's confirmations of them
    database_url: str = ""
    process: GatewayProcess | None = None

    @property
    def origin(self) -> str:
        return f"{self.alliance.trust_domain}/alliance-log/v1"

    @property
    def verifier(self) -> NoteVerifier:
        return NoteSigner(self.origin, self.alliance.gateway_member().signing_key).verifier()

    def peer(self) -> dict[str, Any]:
        return {
            "name": self.alliance.gateway_name,
            "address": f"127.0.0.1:{self.port}",
            "trust_domain": self.alliance.trust_domain,
            "ca_file": str(self.alliance.ca),
            "log_origin": self.origin,
            "log_vkey": self.verifier.vkey,
        }

    @property
    def gateway(self) -> GatewayProcess:
        assert self.process is not None
        return self.process


def make_site(root: Path, code: str, region: str) -> Site:
    alliance = Alliance(root / code, f"{code}.alliance.test", region=region)
    authority = alliance.member("authority", f"{code}-amr", region=region[:2] + "0000")
    platform = alliance.member("platform", f"{code}-shop")
    return Site(code, alliance, authority, platform, reserve_port(), AckBook(), AckBook())


@contextmanager
def database_urls(backend: str, tmp_path: Path, n: int) -> Iterator[list[str]]:
    if backend == "sqlite":
        yield [f"sqlite:///{tmp_path / f'gw{i}.db'}" for i in range(n)]
        return
    base = pg_base_url()
    assert base is not None
    with ExitStack() as stack:
        yield [stack.enter_context(pg_schema_url(base)) for _ in range(n)]


def record_ids(url: str) -> set[str]:
    """A gateway's record set, read from its database (readers never block its writer)."""
    engine = make_engine(url, pool_size=1)
    try:
        return set(SqlStore(engine).record_ids())
    finally:
        engine.dispose()


def answers(site: Site, on: Site) -> bytes:
    """CheckSubjects over every seller of the load, as ``on``'s gateway answers it."""
    request = ex.CheckSubjectsRequest(
        subjects=[codec.subject_to_pb(Subject(uscc=u)) for u in SUBJECTS]
    )
    with open_channel(site.platform, on.port) as ch:
        reply = exchange(ch).CheckSubjects(request, timeout=10)
    return reply.SerializeToString(deterministic=True)


def loaders(sites: Sequence[Site]) -> list[Loader]:
    out = []
    for s in sites:
        out.append(
            Loader(
                s.authority,
                [s.port],
                listings(s.authority, f"{s.code.upper()}-P"),
                s.book,
                name=f"{s.code}-authority",
                stream_size=8,
                timeout_s=2.0,
                pause_s=0.4,
            )
        )
        out.append(
            Loader(
                s.platform,
                [s.port],
                confirmations(s.platform, s.book.acked_ids),
                s.sanctions,
                name=f"{s.code}-platform",
                stream_size=4,
                timeout_s=2.0,
                pause_s=0.8,
            )
        )
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_hung_and_restarted_peer_converges(
    backend: str, tmp_path: Path, record_property: RecordProperty
) -> None:
    sites = [
        make_site(tmp_path, "zj", "330100"),
        make_site(tmp_path, "gd", "440300"),
        make_site(tmp_path, "bj", "110000"),
    ]
    zj, gd, bj = sites
    timings: dict[str, float] = {}
    with ExitStack() as stack:
        urls = stack.enter_context(database_urls(backend, tmp_path, 3))
        for site, url in zip(sites, urls, strict=True):
            site.database_url = url
            config: Config = alliance_config(
                site.alliance, url, site.port, peers=[p.peer() for p in sites if p is not site]
            )
            register(config, (site.authority, site.platform))
            site.process = stack.enter_context(GatewayProcess(config, tmp_path / "run", site.code))
        for site in sites:
            site.gateway.start()

        load = loaders(sites)
        try:
            for loader in load:
                loader.start()
            eventually(
                lambda: all(len(record_ids(s.database_url)) > 60 for s in sites),
                "records flow between the three",
            )
            time.sleep(2)

            # A hung peer: GD keeps its sockets but answers nothing.
            gd.gateway.pause()
            paused = time.monotonic()
            time.sleep(5)
            _assert_still_serving((zj, bj), since=paused)
            elsewhere = _acked(zj, bj)
            gd.gateway.resume()
            resumed = time.monotonic()
            timings["catch_up_after_sigcont_s"] = eventually(
                lambda: elsewhere <= record_ids(gd.database_url),
                "GD catches up after SIGCONT",
                CONVERGE_TIMEOUT_S,
            )
            time.sleep(max(0.0, 3 - (time.monotonic() - resumed)))

            # A stopped peer: graceful stop, the others keep going, restart.
            assert gd.gateway.stop() == 0
            stopped = time.monotonic()
            time.sleep(4)
            _assert_still_serving((zj, bj), since=stopped)
            elsewhere = _acked(zj, bj)
            timings["restart_s"] = gd.gateway.start()
            timings["catch_up_after_restart_s"] = eventually(
                lambda: elsewhere <= record_ids(gd.database_url),
                "GD catches up after its restart",
                CONVERGE_TIMEOUT_S,
            )
            time.sleep(2)
        finally:
            stop_all(load)
        quiet = time.monotonic()

        for loader in load:
            assert not loader.refused, f"{loader.name}: refused {loader.refused[:3]}"
        for site in sites:
            site.book.merge(site.sanctions)
            assert not site.book.conflicts, site.book.conflicts[:3]
        acked = _acked(*sites)
        timings["converged_after_last_write_s"] = eventually(
            lambda: (
                len({frozenset(record_ids(s.database_url)) for s in sites}) == 1
                and acked <= record_ids(zj.database_url)
            ),
            "the three hold the same records",
            CONVERGE_TIMEOUT_S,
        )
        same_answers = eventually(
            lambda: len({answers(s, s) for s in sites}) == 1, "the three answer the same", 10
        )
        timings["same_answers_after_last_write_s"] = time.monotonic() - quiet

        # Read every log back through its gateway: well-formed, signed, equal as sets.
        hashes = set()
        for site in sites:
            with open_channel(site.platform, site.port) as ch:
                log = read_log(ch, site.verifier, site.origin)
            check_acknowledged(log, site.book.snapshot()[0])
            assert acked <= set(log.record_ids)
            hashes.add(set_hash(log.record_ids))
        assert len(hashes) == 1, "the logs hold different record sets"
        (first,) = {answers(s, s) for s in sites}
        listed = ex.CheckSubjectsResponse.FromString(first)
        assert all(r.listed for r in listed.results)
        assert any(st.sanctions for r in listed.results for st in r.listings)
        failures = {ld.name: dict(ld.failures) for ld in load if ld.failures}
        print(
            f"partition ({backend}): {len(acked)} records acknowledged, log size {log.size}; "
            f"{', '.join(f'{k} {v:.2f}' for k, v in timings.items())} "
            f"(answers equal {same_answers:.2f}s after the records); client failures {failures}"
        )
        for k, v in timings.items():
            record_property(k, round(v, 3))
        for site in sites:
            assert site.gateway.stop() == 0


def _acked(*sites: Site) -> set[str]:
    return {rid for s in sites for book in (s.book, s.sanctions) for rid in book.acked_ids()}


def _assert_still_serving(sites: Sequence[Site], *, since: float) -> None:
    """The other gateways kept acknowledging both kinds of record while GD was out."""
    for s in sites:
        for book in (s.book, s.sanctions):
            assert book.acks_after(since) > 0, f"{s.code} stopped acknowledging records"
