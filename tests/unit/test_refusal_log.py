"""The refusal log: every refused call a line, but a flood cannot flood the log.

``_RefusalLog`` of ``gateway/transport/interceptor.py`` on a clock the test moves: a
burst of ``_REFUSAL_LOG_BURST`` lines, then ``_REFUSAL_LOG_RATE`` lines a second, and
the next line written counts the refusals that were left out. Written against the
mutants that survived the interceptor's mutation run (docs/TESTING.md, run 4): the
integration test (tests/security/test_availability_operations.py) only checks that fewer
than half of 200 refusals are logged and that a count appears at some point.
"""

from __future__ import annotations

import logging

import grpc
import pytest

from gateway.transport.interceptor import _REFUSAL_LOG_BURST, _REFUSAL_LOG_RATE, _RefusalLog

DENIED = grpc.StatusCode.PERMISSION_DENIED
METHOD = "/alliance.v1.AuditLog/GetCheckpoint"
CALLER = "spiffe://zj.alliance.test/platform/stranger"
PEER = "ipv4:127.0.0.1:50000"
LINE = f"refused {METHOD} from {CALLER} ({PEER}): PERMISSION_DENIED not registered"


class _Clock:
    """Monotonic seconds, moved by the test (not starting at 0, so an elapsed time
    computed from the wrong ends shows)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="gateway.transport.interceptor")
    return caplog


def _refuse(log: _RefusalLog, times: int = 1) -> None:
    for _ in range(times):
        log.note(CALLER, PEER, METHOD, DENIED, "not registered")


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    out = [r.getMessage() for r in caplog.records]
    caplog.clear()
    return out


def test_the_settings_are_a_burst_of_20_then_2_lines_a_second() -> None:
    assert (_REFUSAL_LOG_BURST, _REFUSAL_LOG_RATE) == (20, 2.0)


def test_a_burst_is_logged_whole_then_the_flood_is_counted_not_logged(
    lines: pytest.LogCaptureFixture,
) -> None:
    """Attack: a stranger hammering the gateway to bury other log lines (or fill the
    disk). The first 20 refusals are logged, each naming the RPC, the caller, its
    address, the code and the message; the rest are counted, and the next line
    written after the budget refills says how many were left out."""
    clock = _Clock()
    log = _RefusalLog(clock)
    _refuse(log, 20)
    assert _logged(lines) == [LINE] * 20
    _refuse(log, 3)
    assert _logged(lines) == []

    clock.now += 0.5  # 2 lines a second: exactly one line's budget
    _refuse(log)
    assert _logged(lines) == [f"{LINE} [3 more refusals not logged]"]
    _refuse(log)  # the budget is spent again
    assert _logged(lines) == []

    clock.now += 0.25  # half a line's budget: still nothing
    _refuse(log)
    assert _logged(lines) == []
    clock.now += 0.25
    _refuse(log)
    assert _logged(lines) == [f"{LINE} [2 more refusals not logged]"]

    clock.now += 0.5  # nothing was left out since that line: no count
    _refuse(log)
    assert _logged(lines) == [LINE]


def test_a_quiet_period_refills_the_burst_and_no_more(lines: pytest.LogCaptureFixture) -> None:
    """However long the gateway was quiet, the next flood again gets 20 lines, not
    more: the budget is capped at the burst."""
    clock = _Clock()
    log = _RefusalLog(clock)
    _refuse(log, 21)
    assert len(_logged(lines)) == 20
    clock.now += 3600.0
    _refuse(log, 25)
    assert _logged(lines) == [f"{LINE} [1 more refusals not logged]"] + [LINE] * 19
