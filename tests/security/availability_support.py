"""Shared by the availability and stream tests (tests/security/test_availability_*.py,
test_streams_*.py): the calls that must keep working while an attack runs, and streams
an attacker holds open.

Every attack holds at least as many streams or connections as the gateway has worker
threads at the default settings, and meanwhile a platform's unary call and a health
``Check`` must each succeed within ``DEADLINE_S`` (a healthy answer takes ~10 ms).
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from gwtest import Member, audit, exchange

from gateway.ops.app import Core
from gateway.ops.config import Config
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex

Code = grpc.StatusCode
DEADLINE_S = 2.0
# worker_threads at the default settings: every attack holds at least this many.
DEFAULT_WORKERS: int = Config.__dataclass_fields__["worker_threads"].default  # type: ignore[assignment]


def code_of(call: Callable[[], object]) -> Code:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return Code.OK


def unary_call(channel: grpc.Channel) -> Code:
    """A platform's unary call (the newest checkpoint), with the 2 s deadline."""
    return code_of(lambda: audit(channel).GetCheckpoint(au.GetCheckpointRequest(), timeout=2.0))


def health_check(channel: grpc.Channel) -> Code:
    """The health probe's call, with the 2 s deadline; OK only when SERVING."""

    def call() -> None:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=DEADLINE_S
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    return code_of(call)


def still_served(member: Member, port: int) -> tuple[Code, Code]:
    """(unary call, health Check) of a well-behaved member on a fresh connection."""
    with member.channel(port) as ch:
        return unary_call(ch), health_check(ch)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.02)


class HeldStream:
    """A streaming call an attacker opens and then keeps, sending nothing more.

    ``first()`` waits for the server's first answer: a message (the server runs the
    stream) or the status that ended it. ``end()`` waits for the status.
    """

    def __init__(self, call: Any, release: threading.Event | None = None) -> None:
        self.call = call
        self._release = release
        self.opened = time.monotonic()
        self.messages: list[Any] = []

    def first(self) -> Code | None:
        """None when a message arrived (the stream is held), else the final code."""
        try:
            self.messages.append(next(self.call))
        except StopIteration:
            return Code.OK
        except grpc.RpcError as e:
            return e.code()
        return None

    def end(self) -> tuple[Code, float]:
        """The status code the stream ended with, and seconds since it was opened."""
        try:
            for message in self.call:
                self.messages.append(message)
        except grpc.RpcError as e:
            return e.code(), time.monotonic() - self.opened
        finally:
            if self._release is not None:
                self._release.set()
        return Code.OK, time.monotonic() - self.opened

    def cancel(self) -> None:
        if self._release is not None:
            self._release.set()
        self.call.cancel()


def reflection_stream(channel: grpc.Channel) -> HeldStream:
    """ServerReflectionInfo: asks for the service list once, then idles."""
    release = threading.Event()

    def requests() -> Iterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        release.wait(60)

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    return HeldStream(stub.ServerReflectionInfo(requests(), timeout=60), release)


def watch_stream(channel: grpc.Channel, from_index: int) -> HeldStream:
    """WatchRecords from ``from_index``: idle once it has caught up."""
    call = exchange(channel).WatchRecords(ex.WatchRecordsRequest(from_index=from_index), timeout=60)
    return HeldStream(call)


def health_watch(channel: grpc.Channel) -> HeldStream:
    """Health Watch: one answer (the current status), then idle until it changes."""
    call = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=""), timeout=60
    )
    return HeldStream(call)


# --- a gateway in its own process ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _toml(config: Config) -> str:
    lines = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "peers" or value is None:
            continue
        if isinstance(value, bool):
            lines.append(f"{f.name} = {str(value).lower()}")
        elif isinstance(value, int | float):
            lines.append(f"{f.name} = {value!r}")
        else:
            lines.append(f"{f.name} = {json.dumps(str(value))}")
    assert not config.peers
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve_process(
    config: Config, workdir: Path, members: tuple[Member, ...], *, open_files: int | None = None
) -> Iterator[Served]:
    """``alliance-gateway serve`` in a child process whose RLIMIT_NOFILE is ``open_files``
    (soft and hard); ready once it prints its address, killed at the end."""
    core = Core(config)
    try:
        for m in members:
            if core.directory.member(m.member_id) is None:
                core.members.add(
                    m.member_id,
                    m.region,
                    m.signing_key.public_key().raw,
                    possession=m.possession(),
                )
    finally:
        core.close()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "gateway.toml"
    config_path.write_text(_toml(config))
    log = workdir / "gateway.log"

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLIANCE_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.ops.cli", "serve", "--config", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=limit,  # noqa: PLW1509 (the child sets its own limit before exec)
        )
    served = Served(proc, int(config.listen_address.rpartition(":")[2]), log)
    try:
        wait_for(
            lambda: " listening on " in served.text() or proc.poll() is not None,
            timeout_s=60,
            what="the gateway process to serve",
        )
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
