"""Hardening part 1, item 3: idle and half-open connections.

Plain TCP connections that never started TLS were held 120 s, so a few thousand of
them exhausted the file descriptors and new members timed out; the metrics endpoint
started one thread per idle connection, with no timeout. Now the TLS handshake, idle
connections and connection age are bounded, /metrics is served by a bounded server,
and the gateway checks its file-descriptor limit at start.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from availability_support import (
    DEFAULT_WORKERS,
    Code,
    free_port,
    serve_process,
    still_served,
    unary_call,
    wait_for,
)
from gwtest import Alliance, Member, running_gateway

from gateway.ops.app import Gateway

HANDSHAKE_S = 1.0
IDLE_S = 1.0
METRICS_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    a = Alliance(tmp_path_factory.mktemp("connections"), "zj.alliance.test")
    a.member("platform", "calm")
    return a


@pytest.fixture(scope="module")
def gw(alliance: Alliance) -> Iterator[Gateway]:
    config = alliance.config(
        f"sqlite:///{alliance.root / 'connections.db'}",
        tls_handshake_timeout_s=HANDSHAKE_S,
        connection_idle_timeout_s=IDLE_S,
        metrics_timeout_s=METRICS_TIMEOUT_S,
        metrics_max_connections=512,
    )
    with running_gateway(config, register=tuple(alliance.members.values())) as g:
        yield g


def _open_plain(port: int, n: int) -> list[socket.socket]:
    """``n`` TCP connections that send nothing (the connect may still be pending)."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        out.append(s)
    return out


def _closed_by_peer(s: socket.socket, within_s: float) -> bool:
    """True when the server closes ``s`` (EOF or reset) within ``within_s``."""
    s.setblocking(True)
    s.settimeout(within_s)
    try:
        while s.recv(4096):
            pass  # a GOAWAY frame may come first
    except TimeoutError:
        return False
    except OSError:
        return True  # reset
    return True


def test_connections_that_never_start_tls_are_closed(gw: Gateway, alliance: Alliance) -> None:
    attack = _open_plain(gw.port, 2 * DEFAULT_WORKERS)
    try:
        assert still_served(alliance.members["calm"], gw.port) == (Code.OK, Code.OK)
        began = time.monotonic()
        closed = [_closed_by_peer(s, HANDSHAKE_S + 3.0) for s in attack]
        assert all(closed)
        assert time.monotonic() - began < HANDSHAKE_S + 3.0
    finally:
        for s in attack:
            s.close()


def test_a_tls_connection_that_never_speaks_http2_is_closed(
    gw: Gateway, alliance: Alliance
) -> None:
    calm = alliance.members["calm"]
    context = ssl.create_default_context(cafile=str(calm.ca))
    context.load_cert_chain(str(calm.cert), str(calm.key))
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", gw.port)) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert _closed_by_peer(tls, HANDSHAKE_S + 3.0)


def test_an_idle_connection_is_closed(gw: Gateway, alliance: Alliance) -> None:
    calm = alliance.members["calm"]
    idle = threading.Event()

    def on_state(state: grpc.ChannelConnectivity) -> None:
        if state is grpc.ChannelConnectivity.IDLE and ready.is_set():
            idle.set()
        if state is grpc.ChannelConnectivity.READY:
            ready.set()

    ready = threading.Event()
    with calm.channel(gw.port) as ch:
        assert unary_call(ch) is Code.OK
        ch.subscribe(on_state)
        try:
            assert ready.wait(5)
            # The server sends GOAWAY after connection_idle_timeout_s without calls.
            assert idle.wait(IDLE_S + 5.0), "the idle connection was not closed"
            assert unary_call(ch) is Code.OK  # the client simply reconnects
        finally:
            ch.unsubscribe(on_state)


def _scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2.0) as r:
        body: bytes = r.read()
        return body


def test_idle_metrics_connections_take_no_threads_and_are_closed(
    gw: Gateway, alliance: Alliance
) -> None:
    threads_before = threading.active_count()
    attack = _open_plain(gw.metrics_port, 300)
    for s in attack:  # each starts a request and never finishes it
        s.setblocking(True)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    try:
        assert b"alliance_rpcs_total" in _scrape(gw.metrics_port)  # served meanwhile
        assert threading.active_count() <= threads_before + 4
        assert still_served(alliance.members["calm"], gw.port) == (Code.OK, Code.OK)
        closed = [_closed_by_peer(s, 3 * METRICS_TIMEOUT_S + 3.0) for s in attack]
        assert all(closed)
    finally:
        for s in attack:
            s.close()


# --- file descriptors: a gateway process with a low limit -----------------------------

OPEN_FILES = 256


def test_idle_connections_past_the_descriptor_limit_do_not_lock_members_out(
    alliance: Alliance, tmp_path: Path
) -> None:
    """More connections than the process may hold descriptors: they are closed after
    the handshake timeout, and the platform's calls get in within their deadline."""
    calm: Member = alliance.members["calm"]
    config = alliance.config(
        f"sqlite:///{tmp_path / 'gw.db'}",
        listen_address=f"127.0.0.1:{free_port()}",
        tls_handshake_timeout_s=0.5,
        min_open_files=128,
    )
    with serve_process(config, tmp_path / "proc", (calm,), open_files=OPEN_FILES) as served:
        assert served.process.poll() is None, served.text()
        assert still_served(calm, served.port) == (Code.OK, Code.OK)
        attack = _open_plain(served.port, OPEN_FILES + 2 * DEFAULT_WORKERS)
        try:
            wait_for(
                lambda: "File descriptor limit reached" in served.text(),
                what="the descriptors to run out",
            )
            assert still_served(calm, served.port) == (Code.OK, Code.OK)
        finally:
            for s in attack:
                s.close()


def test_a_gateway_refuses_to_start_with_too_few_descriptors(
    alliance: Alliance, tmp_path: Path
) -> None:
    calm = alliance.members["calm"]
    config = alliance.config(
        f"sqlite:///{tmp_path / 'gw.db'}", listen_address=f"127.0.0.1:{free_port()}"
    )
    assert config.min_open_files > OPEN_FILES
    with serve_process(config, tmp_path / "proc", (calm,), open_files=OPEN_FILES) as served:
        wait_for(lambda: served.process.poll() is not None, what="the gateway to exit")
        assert served.process.returncode != 0
        assert "min_open_files" in served.text()
        assert "RLIMIT_NOFILE" in served.text()
