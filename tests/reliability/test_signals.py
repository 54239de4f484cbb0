"""``alliance-gateway serve`` stops gracefully on SIGTERM whichever of its threads the
kernel hands the signal to.

A signal sent to a process goes to any one of its threads that does not block it. The
Python-level handler always runs in the main thread, but only once that thread runs
Python code again: a main thread parked in an untimed ``Event.wait()`` never does, so
a SIGTERM that landed on a worker thread was never acted on, and the gateway ran on
until SIGKILL (seen in about one stop in a hundred in these tests). Sending
the signal to a chosen thread with ``tgkill`` makes that case deterministic.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

import pytest
from gwtest import Alliance
from procs import GatewayProcess, alliance_config, register, reserve_port

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tgkill is Linux-only")


def _tgkill(pid: int, tid: int, sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(pid, tid, sig) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def test_sigterm_on_a_worker_thread_stops_the_gateway(tmp_path: Path) -> None:
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    config = alliance_config(alliance, f"sqlite:///{tmp_path / 'gateway.db'}", reserve_port())
    register(config, ())
    with GatewayProcess(config, tmp_path / "run", "gateway") as gw:
        gw.start()
        main, *workers = gw.threads()
        assert main == gw.pid and workers
        _tgkill(gw.pid, workers[-1], signal.SIGTERM)
        code = gw.wait_exit(timeout_s=10)
        assert code == 0, f"the gateway ignored SIGTERM (exit {code}):\n{gw.tail(10)}"
        assert "signal 15: shutting down" in gw.current_log()
