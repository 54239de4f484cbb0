"""Gateways as real operating-system processes, for the reliability tests.

``GatewayProcess`` runs ``python -m gateway.ops.cli serve --config FILE`` (what
``alliance-gateway serve`` runs in production) on a reserved port, so a restarted
process keeps its address, and can SIGKILL, SIGTERM, SIGSTOP and SIGCONT it. Every
process is killed when its context ends, whatever happened in the test.

The test modules import this file as ``procs`` (pytest puts ``tests/reliability`` on
``sys.path``; ``tests/`` has no ``__init__.py``, so ``reliability.procs`` would give mypy
the same file under two module names).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType

from gwtest import Alliance, Member

from gateway.core.possession import prove_possession
from gateway.ops.app import Core
from gateway.ops.config import Config

READY_TIMEOUT_S = 30.0

RecordProperty = Callable[[str, object], None]
"""The type of pytest's ``record_property`` fixture."""
_READY_LINE = " listening on "


def reserve_port() -> int:
    """A free local port: the gateway binds it later (and again after a restart)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def eventually(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> float:
    """Wait until ``check()`` holds; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s}s: {what}")


# -- configuration files -----------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # TOML basic strings take JSON's escapes for the ASCII text written here.
    return json.dumps(str(value))


def config_toml(config: Config) -> str:
    """``config`` as the TOML file ``alliance-gateway serve --config`` reads."""
    lines: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "peers" or value is None:
            continue
        lines.append(f"{f.name} = {_toml_value(value)}")
    for peer in config.peers:
        lines += ["", "[[peers]]"]
        for f in dataclasses.fields(peer):
            lines.append(f"{f.name} = {_toml_value(getattr(peer, f.name))}")
    return "\n".join(lines) + "\n"


def register(config: Config, members: tuple[Member, ...]) -> None:
    """Register ``members`` in the gateway's database before its process starts (what
    ``alliance-gateway members add`` does)."""
    core = Core(config)
    try:
        for m in members:
            if core.directory.member(m.member_id) is None:
                core.members.add(
                    m.member_id,
                    m.region,
                    m.signing_key.public_key().raw,
                    possession=prove_possession(m.signing_key, m.member_id),
                )
    finally:
        core.close()


# -- processes ---------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    # ALLIANCE_* would override settings of the file: the test's file is the truth.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLIANCE_")}
    env["PYTHONUNBUFFERED"] = "1"
    # SIGABRT then dumps every thread's Python stack into the log (see ``stop``).
    env["PYTHONFAULTHANDLER"] = "1"
    return env


class GatewayProcess:
    """One ``alliance-gateway serve`` process; start it again after a kill or a stop."""

    def __init__(self, config: Config, workdir: Path, name: str) -> None:
        if config.listen_address.endswith(":0"):
            raise ValueError("a restartable gateway needs a reserved port, not port 0")
        self.config = config
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"{name}.toml"
        self.config_path.write_text(config_toml(config))
        self.log_path = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self.starts = 0

    @property
    def port(self) -> int:
        return int(self.config.listen_address.rpartition(":")[2])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, f"{self.name} is not running"
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Start the process; return once it serves (seconds it took)."""
        assert not self.running, f"{self.name} is already running"
        ready_before = self._ready_lines()
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.ops.cli", "serve", "--config", self.config_path],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_child_env(),
            )
        self._paused = False
        self.starts += 1
        while self._ready_lines() <= ready_before:
            if self._proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self._proc.returncode}:\n{self.tail()}"
                )
            if time.monotonic() - started > timeout_s:
                self.kill()
                raise AssertionError(
                    f"{self.name} did not serve within {timeout_s}s:\n{self.tail()}"
                )
            time.sleep(0.02)
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut of the process."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=30)
        self._paused = False

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (graceful stop); SIGKILL if it does not exit in time. Returns its code."""
        assert self._proc is not None
        if self._proc.poll() is None:
            self.resume()
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                state = signal_state(self._proc.pid)
                self._proc.send_signal(signal.SIGABRT)  # the stacks, into the log
                self.wait_exit(5)
                self.kill()
                said = [ln for ln in self.current_log().splitlines() if "shutting down" in ln]
                raise AssertionError(
                    f"{self.name} ignored SIGTERM for {timeout_s}s (its log says: {said});"
                    f"\n{state}\n{self.tail(80)}"
                ) from None
        return self._proc.returncode

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code, or None if the process still runs after ``timeout_s``."""
        assert self._proc is not None
        try:
            return self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def threads(self) -> list[int]:
        """Thread ids of the process, the main thread (its pid) first."""
        tids = sorted(int(t.name) for t in Path(f"/proc/{self.pid}/task").iterdir())
        return [self.pid] + [t for t in tids if t != self.pid]

    def pause(self) -> None:
        """SIGSTOP: the process holds its sockets and locks but answers nothing (a hung peer)."""
        assert self.running
        os.kill(self.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        if self._paused and self.running:
            os.kill(self.pid, signal.SIGCONT)
        self._paused = False

    def close(self) -> None:
        self.resume()
        self.kill()

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def current_log(self) -> str:
        """The log of the current (or last) run of the process."""
        return self.log_text().rpartition(f"--- start {self.starts} ---")[2]

    def _ready_lines(self) -> int:
        return self.log_text().count(_READY_LINE)


@contextmanager
def processes(*procs: GatewayProcess) -> Iterator[tuple[GatewayProcess, ...]]:
    """Kill every process on the way out, even when the test failed half-way."""
    with ExitStack() as stack:
        for p in procs:
            stack.enter_context(p)
        yield procs


# -- observation from outside ------------------------------------------------------------


def scrape(metrics_port: int, timeout_s: float = 5.0) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text page (``name value`` lines)."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:
        text = reply.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)", line)
        if m is not None:
            out[m[1]] = float(m[2])
    return out


def signal_state(pid: int) -> str:
    """Where a process's threads wait and which signals are pending (Linux ``/proc``)."""
    lines = []
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda p: int(p.name)):
        try:
            status = (task / "status").read_text().splitlines()
            wchan = (task / "wchan").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status if ":\t" in line)
        lines.append(
            f"  {task.name} {fields.get('Name', '?').strip()} state={fields.get('State', '?')} "
            f"wchan={wchan} SigPnd={fields.get('SigPnd', '?')} ShdPnd={fields.get('ShdPnd', '?')} "
            f"SigBlk={fields.get('SigBlk', '?')}"
        )
    return "threads:\n" + "\n".join(lines)


def local_tcp_ports(pid: int) -> set[int]:
    """Local ports of the TCP sockets process ``pid`` holds (Linux ``/proc``)."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            cols = row.split()
            if len(cols) > 9 and cols[9] in inodes:
                ports.add(int(cols[1].rpartition(":")[2], 16))
    return ports


def alliance_config(
    alliance: Alliance, database_url: str, port: int, **overrides: object
) -> Config:
    """The test alliance's gateway settings on a reserved port, tuned for quick tests."""
    settings: dict[str, object] = {
        "listen_address": f"127.0.0.1:{port}",
        "checkpoint_interval_s": 0.2,
        "shutdown_grace_s": 1.0,
        "federation_backoff_initial_s": 0.1,
        "federation_backoff_max_s": 0.5,
    }
    settings.update(overrides)
    return alliance.config(database_url, **settings)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")
