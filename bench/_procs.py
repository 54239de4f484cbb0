"""Servers in child processes: the gateway, and bare gRPC echo servers (sync and
asyncio) with the gateway's TLS settings. The bench process only generates load, so
server and client do not share a GIL."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import traceback
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import grpc

from gateway.ops.config import Config

from ._setup import TlsFiles

ECHO_SERVICE = "bench.Echo"
ECHO_UNARY = f"/{ECHO_SERVICE}/Unary"
ECHO_STREAM = f"/{ECHO_SERVICE}/Stream"
_START_TIMEOUT_S = 300.0
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EchoSpec:
    """A bare echo server configured as the gateway is: same TLS, pool and limits."""

    flavor: Literal["sync", "aio"]
    tls: TlsFiles
    worker_threads: int
    max_message_bytes: int


@dataclass(frozen=True)
class ServerHandle:
    port: int
    pid: int
    name: str

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server_process(name: str, spec: EchoSpec | Config) -> Iterator[ServerHandle]:
    """Start a server in a child process; yield its port and pid; stop it gracefully."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child_main, args=(child, spec), name=f"bench-{name}", daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(_START_TIMEOUT_S):
            raise RuntimeError(f"{name}: the server did not start in {_START_TIMEOUT_S:.0f} s")
        try:
            kind, value = parent.recv()
        except EOFError:
            proc.join(5)
            raise RuntimeError(
                f"{name}: the server process exited (code {proc.exitcode}) before it was "
                "ready; its traceback is above"
            ) from None
        if kind != "ready":
            raise RuntimeError(f"{name}: the server failed to start:\n{value}")
        assert proc.pid is not None
        yield ServerHandle(int(value), proc.pid, name)
    finally:
        try:
            parent.send("stop")
            if parent.poll(_STOP_TIMEOUT_S):
                parent.recv()
        except (BrokenPipeError, EOFError, OSError):
            pass
        proc.join(_STOP_TIMEOUT_S)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        parent.close()


def rss_bytes(pid: int) -> tuple[int, int]:
    """Resident set size now and at its peak (VmRSS, VmHWM) of process ``pid``."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


# --- in the child ---------------------------------------------------------------------------


def _child_main(conn: Connection, spec: EchoSpec | Config) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if isinstance(spec, Config):
            _serve_gateway(conn, spec)
        elif spec.flavor == "sync":
            _serve_echo_sync(conn, spec)
        else:
            asyncio.run(_serve_echo_aio(conn, spec))
    except Exception:
        conn.send(("error", traceback.format_exc()))


def _serve_gateway(conn: Connection, config: Config) -> None:
    from gateway.ops.app import Gateway, settle_heap

    gateway = Gateway(config).start(serve_metrics=False)
    settle_heap()  # as `alliance-gateway serve` does
    conn.send(("ready", gateway.port))
    conn.recv()
    gateway.stop(grace_s=2.0)
    conn.send(("stopped", 0))


def _options(spec: EchoSpec) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", spec.max_message_bytes),
        ("grpc.max_send_message_length", spec.max_message_bytes),
    ]


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def _stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    yield from requests


def _serve_echo_sync(conn: Connection, spec: EchoSpec) -> None:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=spec.worker_threads, thread_name_prefix="rpc"),
        options=_options(spec),
        maximum_concurrent_rpcs=spec.worker_threads * 8,
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                ECHO_SERVICE,
                {
                    "Unary": grpc.unary_unary_rpc_method_handler(_unary),
                    "Stream": grpc.stream_stream_rpc_method_handler(_stream),
                },
            ),
        )
    )
    port = server.add_secure_port("127.0.0.1:0", spec.tls.server_credentials())
    server.start()
    conn.send(("ready", port))
    conn.recv()
    server.stop(2.0).wait()
    conn.send(("stopped", 0))


async def _aio_unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def _aio_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


async def _serve_echo_aio(conn: Connection, spec: EchoSpec) -> None:
    server = grpc.aio.server(
        options=_options(spec), maximum_concurrent_rpcs=spec.worker_threads * 8
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                ECHO_SERVICE,
                {
                    "Unary": grpc.unary_unary_rpc_method_handler(_aio_unary),
                    "Stream": grpc.stream_stream_rpc_method_handler(_aio_stream),
                },
            ),
        )
    )
    port = server.add_secure_port("127.0.0.1:0", spec.tls.server_credentials())
    await server.start()
    conn.send(("ready", port))
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await server.stop(2.0)
    conn.send(("stopped", 0))
