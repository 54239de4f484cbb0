"""The public feed's throughput: entries per second a mirror gets by paging the change
feed (``GET /v1/feed?since=…&limit=1000``, JSON) from a gateway process, beside a bare
echo baseline: the same ASGI server and framework (uvicorn, Starlette) in its own
process answering every request with a fixed body of a feed page's size, no work done.
The ratio is what building pages from the index costs over serving bytes."""

from __future__ import annotations

import http.client
import multiprocessing as mp
import re
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from . import _data
from ._context import QUICK, Context
from ._load import bidi_stream
from ._procs import server_process
from ._results import Figure, Measure, ratio
from .ingest import METHOD as SUBMIT_STREAM

NAME = "public"
PAGE = 1000
CLIENT_THREADS = 4
_NEXT = re.compile(rb'"next_since":(\d+),"more":(true|false)')


@dataclass(frozen=True)
class _Sizes:
    listings: int
    seconds: float


_QUICK = _Sizes(listings=3_000, seconds=3.0)
_FULL = _Sizes(listings=20_000, seconds=10.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _page(conn: http.client.HTTPConnection, since: int) -> tuple[int, int, bool, int]:
    """One page: (entries, next since, more, bytes)."""
    conn.request("GET", f"/v1/feed?since={since}&limit={PAGE}")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"public feed answered {response.status}: {body[:200]!r}")
    found = _NEXT.search(body, 0, 4096)
    if found is None:
        raise RuntimeError("public feed page without next_since")
    return body.count(b'"record_id":'), int(found[1]), found[2] == b"true", len(body)


def _mirror_loop(port: int, seconds: float) -> tuple[int, int, int]:
    """Threads that each page through the feed from 0 again and again: (entries,
    pages, bytes) in ``seconds``."""
    totals = [0, 0, 0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        entries = pages = size = 0
        since = 0
        while time.perf_counter() < deadline:
            n, since, more, b = _page(conn, since)
            entries, pages, size = entries + n, pages + 1, size + b
            if not more:
                since = 0
        conn.close()
        with lock:
            totals[0] += entries
            totals[1] += pages
            totals[2] += size

    threads = [threading.Thread(target=worker) for _ in range(CLIENT_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return totals[0], totals[1], totals[2]


def _echo_child(conn: Connection, port: int, body: bytes) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def feed(request: Request) -> Response:
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/v1/feed", feed)])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )

    def stop() -> None:
        conn.recv()
        server.should_exit = True

    threading.Thread(target=stop, daemon=True).start()
    conn.send("ready")
    server.run()


def _echo_baseline(ctx: Context, body: bytes, entries: int, seconds: float) -> Measure:
    def measure() -> Measure:
        port = _free_port()
        parent, child = mp.get_context("spawn").Pipe()
        proc = mp.get_context("spawn").Process(
            target=_echo_child, args=(child, port, body), daemon=True
        )
        proc.start()
        try:
            parent.recv()
            _wait_listening(port)
            served, pages, _ = _mirror_loop(port, seconds)
        finally:
            parent.send("stop")
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
        return Measure(
            "http.echo",
            served / seconds,
            "entries/s",
            detail={"pages": pages, "entries_per_page": entries, "body_bytes": len(body)},
        )

    return ctx.baseline("http.echo", measure)


def _wait_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def run(ctx: Context) -> None:
    sizes = _QUICK if ctx.sizes is QUICK else _FULL
    for backend in ctx.backends:
        port = _free_port()
        with backend.fresh("public") as url:
            config = ctx.alliance.config(
                url,
                public_address=f"127.0.0.1:{port}",
                public_rate_per_client_rps=0,
            )
            ctx.alliance.prepare(config)
            with server_process(f"public-{backend.name}", config) as gateway:
                authority = ctx.alliance.authority
                start = ctx.subjects(sizes.listings)
                requests = _data.submit_requests(
                    _data.signed_listings(authority, start, sizes.listings)
                )
                result = bidi_stream(
                    gateway.port,
                    authority.credentials(),
                    SUBMIT_STREAM,
                    requests,
                    count=sizes.listings,
                    seconds=600.0,
                    timeout_s=600.0,
                )
                if _data.count_stored(result.responses) != sizes.listings:
                    raise RuntimeError("public: could not submit the listings")
                body = _caught_up(port, sizes.listings)
                with ctx.profiled(f"public-{backend.name}", gateway.pid):
                    served, pages, size = _mirror_loop(port, sizes.seconds)
        value = served / sizes.seconds
        baseline = _echo_baseline(ctx, body, PAGE, sizes.seconds)
        figure = ctx.report.add(
            Figure(
                name="public.feed",
                benchmark=NAME,
                backend=backend.name,
                value=value,
                unit="entries/s",
                baseline=baseline,
                ratio=ratio(value, baseline.value),
                ratio_of="feed entries/s / echo entries/s (same page bytes, uvicorn+Starlette)",
                detail={
                    "listings": sizes.listings,
                    "page": PAGE,
                    "pages": pages,
                    "bytes_per_page": size // max(1, pages),
                    "client_threads": CLIENT_THREADS,
                },
            )
        )
        print(
            f"   {backend.name}: {figure.value:,.0f} entries/s paged "
            f"({pages} pages of {PAGE}); echo {baseline.value:,.0f}; ratio {figure.ratio:.2f}",
            flush=True,
        )


def _caught_up(port: int, count: int, timeout_s: float = 120.0) -> bytes:
    """Wait until the feed holds ``count`` entries; return its first full page's bytes."""
    deadline = time.monotonic() + timeout_s
    _wait_listening(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        while True:
            total, since, more = 0, 0, True
            while more:
                n, since, more, _ = _page(conn, since)
                total += n
            if total >= count:
                conn.request("GET", f"/v1/feed?since=0&limit={PAGE}")
                return conn.getresponse().read()
            if time.monotonic() > deadline:
                raise RuntimeError(f"public: the feed holds {total} of {count} entries")
            time.sleep(0.2)
    finally:
        conn.close()
