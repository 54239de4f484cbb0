"""Per-member limits (gateway.transport.limits): the rate, concurrent streams, idle
streams, and an oversized message inside a stream.

The limits themselves are tested with a fake clock; then against real gateways on
port 0, whose limits run on a fake clock too (``Gateway(monotonic=...)``), so that time
passes for them only when the test says so: a flooding member is refused with
RESOURCE_EXHAUSTED (and a retry hint) while another member is served, and is served
again once the wait has passed; idle SubmitRecords streams, more of them than the server
has worker threads, are refused past the per-member cap or cut with DEADLINE_EXCEEDED
once ``stream_idle_timeout_s`` has passed, while a well-behaved member's calls go
through.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import grpc
import pytest
from gwtest import Alliance, Member, audit, exchange, listing, running_gateway

from gateway import codec
from gateway.core import dsse
from gateway.errors import ConfigError
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.transport.limits import IdleClock, LimitError, Limits, LimitSettings

Code = grpc.StatusCode
CHECKPOINT = "/alliance.v1.AuditLog/GetCheckpoint"
SUBMIT_MANY = "/alliance.v1.Exchange/SubmitRecords"
RATE, BURST = 20.0, 20
WORKERS, STREAMS, IDLE_S = 4, 2, 1.0
MAX_MESSAGE_BYTES = 64 * 1024


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- the limits, on a fake clock -------------------------------------------------------


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = FakeClock()
    limited: list[str] = []
    limits = Limits(LimitSettings(rate_per_s=4, burst=3), on_limited=limited.append, clock=clock)
    for _ in range(3):
        limits.take("a", "/m")
    with pytest.raises(LimitError) as refused:
        limits.take("a", "/m")
    assert refused.value.retry_after_s == 0.25
    assert "retry in 0.250 s" in refused.value.advice
    limits.take("b", "/m")  # another member has its own bucket
    clock.now += 0.25
    limits.take("a", "/m")
    with pytest.raises(LimitError):
        limits.take("a", "/n")
    clock.now += 60  # refills up to the burst, no further
    for _ in range(3):
        limits.take("a", "/m")
    with pytest.raises(LimitError):
        limits.take("a", "/m")
    assert limited == ["/m", "/n", "/m"]


def test_a_rate_of_zero_is_no_limit() -> None:
    limits = Limits(LimitSettings(rate_per_s=0, burst=1))
    for _ in range(10_000):
        limits.take("a", "/m")


def test_stream_slots_are_capped_per_member_and_given_back() -> None:
    limits = Limits(LimitSettings(max_streams=2))
    with limits.stream("a"), limits.stream("a"):
        assert limits.open_streams("a") == 2
        with pytest.raises(LimitError), limits.stream("a"):
            pass
        with limits.stream("b"):
            assert limits.open_streams("b") == 1
    assert limits.open_streams("a") == 0
    with pytest.raises(RuntimeError), limits.stream("a"):
        raise RuntimeError("the call failed")  # the slot is given back all the same
    assert limits.open_streams("a") == 0


def test_the_idle_clock_restarts_on_each_request() -> None:
    clock = FakeClock()
    idle = IdleClock(1.0, clock)
    clock.now += 0.75
    assert idle.remaining_s() == pytest.approx(0.25)
    idle.touch()
    assert idle.remaining_s() == pytest.approx(1.0)
    clock.now += 1.5
    assert idle.remaining_s() < 0
    assert "1 s" in str(idle.expired())


# --- real gateways ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    a = Alliance(tmp_path_factory.mktemp("limits"), "zj.alliance.test")
    for name in ("flood", "calm", "idle-1", "idle-2", "idle-3"):
        a.member("platform", name)
    return a


@pytest.mark.parametrize(
    "setting",
    [
        {"rate_limit_per_member_rps": -1},
        {"rate_limit_burst": 0},
        {"max_streams_per_member": 0},
        {"stream_idle_timeout_s": 0},
    ],
)
def test_bad_limit_settings_fail_at_start_up(alliance: Alliance, setting: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=next(iter(setting))):
        alliance.config("sqlite:///unused.db", **setting)


@pytest.fixture(scope="module")
def rate_clock() -> FakeClock:
    """The rate-limited gateway's clock: no token comes back until the test says so."""
    return FakeClock()


@pytest.fixture(scope="module")
def idle_clock() -> FakeClock:
    """The few-workers gateway's clock: no stream idles out until the test says so."""
    return FakeClock()


@pytest.fixture(scope="module")
def rate_limited(alliance: Alliance, rate_clock: FakeClock) -> Iterator[Gateway]:
    config = alliance.config(
        f"sqlite:///{alliance.root / 'rate.db'}",
        rate_limit_per_member_rps=RATE,
        rate_limit_burst=BURST,
    )
    members = tuple(alliance.members.values())
    with running_gateway(config, register=members, monotonic=rate_clock) as gw:
        yield gw


@pytest.fixture(scope="module")
def few_workers(alliance: Alliance, idle_clock: FakeClock) -> Iterator[Gateway]:
    config = alliance.config(
        f"sqlite:///{alliance.root / 'streams.db'}",
        worker_threads=WORKERS,
        max_streams_per_member=STREAMS,
        stream_idle_timeout_s=IDLE_S,
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    members = tuple(alliance.members.values())
    with running_gateway(config, register=members, monotonic=idle_clock) as gw:
        yield gw


def _code(call: Callable[[], object]) -> Code:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return Code.OK


def _checkpoint(channel: grpc.Channel) -> Code:
    return _code(lambda: audit(channel).GetCheckpoint(au.GetCheckpointRequest(), timeout=10))


def _refill(clock: FakeClock) -> None:
    """Let the time pass in which every bucket fills up to its burst."""
    clock.now += BURST / RATE


def _requests(member: Member, n: int) -> list[ex.SubmitRecordRequest]:
    out = []
    for i in range(n):
        env = member.sign(listing(member, decision_ref=f"RATE-{time.time_ns()}-{i}"))
        out.append(ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env)))
    return out


def test_a_flooding_member_is_refused_and_others_are_not(
    rate_limited: Gateway, alliance: Alliance, rate_clock: FakeClock
) -> None:
    flood, calm = alliance.members["flood"], alliance.members["calm"]
    _refill(rate_clock)
    before = rate_limited.metrics.registry.get_sample_value(
        "alliance_rate_limited_total", {"method": CHECKPOINT}
    )
    with flood.channel(rate_limited.port) as fch, calm.channel(rate_limited.port) as cch:
        codes = []
        for i in range(3 * BURST):
            codes.append(_checkpoint(fch))
            if i % 6 == 0:
                assert _checkpoint(cch) is Code.OK  # the calm member is served throughout
        # No time passes on the gateway's clock: the burst, then nothing.
        assert codes == [Code.OK] * BURST + [Code.RESOURCE_EXHAUSTED] * (2 * BURST)

        with pytest.raises(grpc.RpcError) as err:
            audit(fch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10)
        assert err.value.code() is Code.RESOURCE_EXHAUSTED
        assert "retry in 0.050 s" in (err.value.details() or "")
        trailers = err.value.trailing_metadata() or ()
        pushback = [m.value for m in trailers if m.key == "grpc-retry-pushback-ms"]
        assert [int(v) for v in pushback] == [int(1000 / RATE)]  # the wait for the next token

        rate_clock.now += 1.001 / RATE  # that wait passes (and a hair, for float rounding)
        assert _checkpoint(fch) is Code.OK  # one token came back
        assert _checkpoint(fch) is Code.RESOURCE_EXHAUSTED  # and only one
    after = rate_limited.metrics.registry.get_sample_value(
        "alliance_rate_limited_total", {"method": CHECKPOINT}
    )
    assert after == (before or 0) + 2 * BURST + 2


def _rate_limited_trailers(channel: grpc.Channel) -> tuple[list[str], list[str]]:
    """The reason and pushback trailers of a GetCheckpoint refused for its rate."""
    with pytest.raises(grpc.RpcError) as err:
        audit(channel).GetCheckpoint(au.GetCheckpointRequest(), timeout=10)
    assert err.value.code() is Code.RESOURCE_EXHAUSTED
    trailers = err.value.trailing_metadata() or ()
    reasons = [str(m.value) for m in trailers if m.key == "alliance-reason"]
    pushback = [str(m.value) for m in trailers if m.key == "grpc-retry-pushback-ms"]
    return reasons, pushback


def test_a_rate_limited_call_carries_its_reason_and_its_pushback(
    rate_limited: Gateway, alliance: Alliance, rate_clock: FakeClock
) -> None:
    """Both trailers of a rate-limited call: ``alliance-reason`` is how a client tells a
    rate limit from the other RESOURCE_EXHAUSTED refusals (too many streams, where waiting
    does not help), and ``grpc-retry-pushback-ms`` is when a gRPC retry policy tries again.
    Adding the pushback must not replace the reason. The pushback is the wait for the
    next token rounded up to whole milliseconds: a token half a millisecond away is
    1 ms, not 2 (the client would wait twice as long as it must) nor 0 (no wait)."""
    flood = alliance.members["flood"]
    _refill(rate_clock)
    with flood.channel(rate_limited.port) as ch:
        assert [_checkpoint(ch) for _ in range(BURST)] == [Code.OK] * BURST
        assert _rate_limited_trailers(ch) == (["rate-limited"], [str(int(1000 / RATE))])
        rate_clock.now += 1 / RATE - 0.0005  # all but half a millisecond of that wait
        assert _rate_limited_trailers(ch) == (["rate-limited"], ["1"])


def test_each_record_of_a_stream_spends_a_token(
    rate_limited: Gateway, alliance: Alliance, rate_clock: FakeClock
) -> None:
    flood = alliance.members["flood"]
    requests = _requests(flood, 2 * BURST)
    _refill(rate_clock)
    size = rate_limited.core.store.log_size()
    with flood.channel(rate_limited.port) as ch:
        results = list(exchange(ch).SubmitRecords(iter(requests), timeout=20))
    codes = [Code.OK.value[0] if r.code == 0 else r.code for r in results]
    # The stream goes on; the call itself took a token, each record one more.
    assert codes == [Code.OK.value[0]] * (BURST - 1) + [Code.RESOURCE_EXHAUSTED.value[0]] * (
        BURST + 1
    )
    refused = [r for r in results if r.code == Code.RESOURCE_EXHAUSTED.value[0]]
    assert all("retry in" in r.message for r in refused)
    sample = rate_limited.metrics.registry.get_sample_value(
        "alliance_rate_limited_total", {"method": SUBMIT_MANY}
    )
    assert sample == len(refused)
    assert rate_limited.core.store.log_size() == size + BURST - 1


# --- idle and too many streams --------------------------------------------------------


class _IdleStream:
    """A SubmitRecords call whose client sends ``first`` and then nothing until closed."""

    def __init__(
        self, channel: grpc.Channel, first: list[ex.SubmitRecordRequest] | None = None
    ) -> None:
        self._release = threading.Event()
        self._first = first or []
        self.call: Any = exchange(channel).SubmitRecords(self._requests(), timeout=30)

    def _requests(self) -> Iterator[ex.SubmitRecordRequest]:
        yield from self._first
        self._release.wait(30)

    def outcome(self) -> tuple[Code, list[ex.SubmitRecordResult]]:
        """How the call ended, and the results it got."""
        results: list[ex.SubmitRecordResult] = []
        try:
            results.extend(self.call)
        except grpc.RpcError as e:
            return e.code(), results
        finally:
            self._release.set()
        return Code.OK, results


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _readers() -> int:
    return sum(t.name.startswith("submit-stream-") for t in threading.enumerate())


def _no_streams_left() -> int:
    """Wait until the stream threads of earlier tests have ended; the count (0) then."""
    _wait_for(lambda: _readers() == 0)
    return 0


def _idle_out(clock: FakeClock, pending: list[Future[Any]], rounds: int = 4) -> None:
    """Let one idle timeout pass on the gateway's clock, again while streams that were
    waiting for a worker start in turn, until every call in ``pending`` has ended."""
    for _ in range(rounds):
        clock.now += IDLE_S
        # A stream notices on its next wake-up, at most IDLE_S (real) later.
        done, _ = wait(pending, timeout=10 * IDLE_S, return_when=ALL_COMPLETED)
        if len(done) == len(pending):
            return
    raise AssertionError(f"{sum(not f.done() for f in pending)} streams were never cut")


def test_idle_streams_past_the_cap_are_refused_and_the_rest_cut(
    few_workers: Gateway, alliance: Alliance, idle_clock: FakeClock
) -> None:
    """One member opens three times the cap of idle streams, more than the server has
    worker threads: the cap refuses the excess at once, the idle timeout cuts the rest,
    and a well-behaved member is served all along."""
    idle, calm = alliance.members["idle-1"], alliance.members["calm"]
    readers = _no_streams_left()
    with idle.channel(few_workers.port) as ich, calm.channel(few_workers.port) as cch:
        streams = [_IdleStream(ich) for _ in range(3 * STREAMS)]
        assert 3 * STREAMS > WORKERS
        with ThreadPoolExecutor(len(streams)) as pool:
            pending = [pool.submit(s.outcome) for s in streams]
            # Refused at once: no time passes on the gateway's clock meanwhile.
            _wait_for(lambda: sum(f.done() for f in pending) == 2 * STREAMS)
            refused = [f.result() for f in pending if f.done()]
            assert refused == [(Code.RESOURCE_EXHAUSTED, [])] * (2 * STREAMS)
            # The streams within the cap are being served (two threads each) and hold
            # two of the four workers; the calm member gets the others.
            _wait_for(lambda: _readers() >= readers + 2 * STREAMS)
            for _ in range(5):
                assert _checkpoint(cch) is Code.OK
            assert few_workers.limits.open_streams(idle.member_id) == STREAMS
            held = [f for f in pending if not f.done()]
            _idle_out(idle_clock, held)
            assert [f.result() for f in held] == [(Code.DEADLINE_EXCEEDED, [])] * STREAMS
        _wait_for(lambda: few_workers.limits.open_streams(idle.member_id) == 0)
        _wait_for(lambda: _readers() <= readers)  # the streams' threads ended too
        # The member may stream again: its slots were given back. Answered, then cut
        # once it has been idle for the timeout.
        stream = _IdleStream(ich, _requests(idle, 1))
        first = next(stream.call)
        assert first.code == 0
        with ThreadPoolExecutor(1) as pool:
            rest = pool.submit(stream.outcome)
            _idle_out(idle_clock, [rest])
            assert rest.result() == (Code.DEADLINE_EXCEEDED, [])


def test_idle_streams_of_several_members_are_cut_and_do_not_starve_others(
    few_workers: Gateway, alliance: Alliance, idle_clock: FakeClock
) -> None:
    """Three members, each within its cap, together hold more streams than there are
    worker threads: each stream is cut after the idle timeout, so a well-behaved member
    waits at most one idle timeout for a worker."""
    members = [alliance.members[f"idle-{i}"] for i in (1, 2, 3)]
    calm = alliance.members["calm"]
    channels = [m.channel(few_workers.port) for m in members]
    opened = [c.__enter__() for c in channels]
    readers = _no_streams_left()
    try:
        streams = [_IdleStream(ch) for ch in opened for _ in range(STREAMS)]
        assert len(streams) > WORKERS
        with ThreadPoolExecutor(len(streams) + 1) as pool:
            pending = [pool.submit(s.outcome) for s in streams]
            # Every worker holds an idle stream (two threads each); the rest wait.
            _wait_for(lambda: _readers() >= readers + 2 * WORKERS)
            with calm.channel(few_workers.port) as cch:
                served = pool.submit(_checkpoint, cch)
                idle_clock.now += IDLE_S  # one idle timeout: the streams holding workers end
                assert served.result(timeout=30) is Code.OK
                _idle_out(idle_clock, pending)
            outcomes = [f.result() for f in pending]
    finally:
        for c in channels:
            c.__exit__(None, None, None)
    assert outcomes == [(Code.DEADLINE_EXCEEDED, [])] * len(streams)
    _wait_for(lambda: all(few_workers.limits.open_streams(m.member_id) == 0 for m in members))


def test_a_slow_but_steady_stream_is_not_cut(
    few_workers: Gateway, alliance: Alliance, idle_clock: FakeClock
) -> None:
    """Each record comes 0.9 idle timeouts after the answer to the one before: the idle
    clock restarts with each, so the stream lives as long as its client wants."""
    member = alliance.members["idle-2"]
    outbox: queue.Queue[ex.SubmitRecordRequest | None] = queue.Queue()

    def requests() -> Iterator[ex.SubmitRecordRequest]:
        while (request := outbox.get(timeout=30)) is not None:
            yield request

    with member.channel(few_workers.port) as ch:
        call = exchange(ch).SubmitRecords(requests(), timeout=30)
        codes = []
        for request in _requests(member, 3):
            outbox.put(request)
            codes.append(next(call).code)
            idle_clock.now += IDLE_S * 0.9
        outbox.put(None)  # the client ends the stream
        assert list(call) == []
    assert codes == [0, 0, 0]


def test_an_oversized_message_in_a_stream_ends_it_and_the_gateway_serves_on(
    few_workers: Gateway, alliance: Alliance
) -> None:
    member = alliance.members["idle-3"]
    big = dsse.sign("t", b"\x00" * (MAX_MESSAGE_BYTES + 1), member.signing_key)
    requests = [*_requests(member, 1), ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(big))]
    size = few_workers.core.store.log_size()
    with member.channel(few_workers.port) as ch:
        stream = _IdleStream(ch, requests)
        code, _ = stream.outcome()
        assert code is Code.RESOURCE_EXHAUSTED
        assert few_workers.core.store.log_size() <= size + 1  # at most the good record
        assert _checkpoint(ch) is Code.OK
        fresh = _requests(member, 1)
        assert [r.code for r in exchange(ch).SubmitRecords(iter(fresh), timeout=10)] == [0]


# --- batches (SubmitBatches) count against the same limits ------------------------------

SUBMIT_BATCHES = "/alliance.v1.Exchange/SubmitBatches"


def test_each_record_of_a_batch_spends_a_token(
    rate_limited: Gateway, alliance: Alliance, rate_clock: FakeClock
) -> None:
    flood = alliance.members["flood"]
    requests = _requests(flood, 2 * BURST)
    _refill(rate_clock)
    size = rate_limited.core.store.log_size()
    batches = [ex.SubmitBatch(records=requests[:BURST]), ex.SubmitBatch(records=requests[BURST:])]
    with flood.channel(rate_limited.port) as ch:
        answers = list(exchange(ch).SubmitBatches(iter(batches), timeout=20))
    results = [r for a in answers for r in a.results]
    assert [r.sequence for r in results] == list(range(2 * BURST))
    # Like one-record messages: the call took a token, each record one more; a record
    # over the rate is refused in its result and the rest of its batch goes on.
    exhausted = Code.RESOURCE_EXHAUSTED.value[0]
    assert [r.code for r in results] == [0] * (BURST - 1) + [exhausted] * (BURST + 1)
    assert all("retry in" in r.message for r in results if r.code)
    sample = rate_limited.metrics.registry.get_sample_value(
        "alliance_rate_limited_total", {"method": SUBMIT_BATCHES}
    )
    assert sample == BURST + 1
    assert rate_limited.core.store.log_size() == size + BURST - 1


class _IdleBatchStream:
    """A SubmitBatches call whose client sends ``first`` and then nothing until closed."""

    def __init__(self, channel: grpc.Channel, first: list[ex.SubmitBatch] | None = None) -> None:
        self._release = threading.Event()
        self._first = first or []
        self.call: Any = exchange(channel).SubmitBatches(self._requests(), timeout=30)

    def _requests(self) -> Iterator[ex.SubmitBatch]:
        yield from self._first
        self._release.wait(30)

    def outcome(self) -> tuple[Code, list[ex.SubmitBatchResult]]:
        answers: list[ex.SubmitBatchResult] = []
        try:
            answers.extend(self.call)
        except grpc.RpcError as e:
            return e.code(), answers
        finally:
            self._release.set()
        return Code.OK, answers


def test_idle_batch_streams_count_against_the_cap_and_are_cut(
    few_workers: Gateway, alliance: Alliance, idle_clock: FakeClock
) -> None:
    """Batch streams hold the same per-member slots as SubmitRecords streams: past the
    cap they are refused at once, and an idle one is cut after the idle timeout (once
    its batches are answered), while another member is served."""
    idle, calm = alliance.members["idle-1"], alliance.members["calm"]
    readers = _no_streams_left()
    with idle.channel(few_workers.port) as ich, calm.channel(few_workers.port) as cch:
        first = _IdleBatchStream(ich, [ex.SubmitBatch(records=_requests(idle, 3))])
        # Answered before the others open: the server may take streams opened together
        # in any order, and the one it refuses must not be this one.
        answered = next(first.call)
        assert [r.code for r in answered.results] == [0, 0, 0]
        streams = [first] + [_IdleBatchStream(ich) for _ in range(STREAMS)]
        with ThreadPoolExecutor(len(streams)) as pool:
            pending = [pool.submit(s.outcome) for s in streams]
            _wait_for(lambda: sum(f.done() for f in pending) == 1)
            refused = [f.result() for f in pending if f.done()]
            assert refused == [(Code.RESOURCE_EXHAUSTED, [])]
            _wait_for(lambda: _readers() >= readers + 2 * STREAMS)
            assert few_workers.limits.open_streams(idle.member_id) == STREAMS
            assert _checkpoint(cch) is Code.OK
            held = [f for f in pending if not f.done()]
            _idle_out(idle_clock, held)
            assert [f.result() for f in held] == [(Code.DEADLINE_EXCEEDED, [])] * STREAMS
        _wait_for(lambda: few_workers.limits.open_streams(idle.member_id) == 0)
        _wait_for(lambda: _readers() <= readers)


def test_an_oversized_batch_ends_its_stream_and_the_gateway_serves_on(
    few_workers: Gateway, alliance: Alliance
) -> None:
    """A batch's bytes are bounded like any message's (max_message_bytes)."""
    member = alliance.members["idle-3"]
    records = _requests(member, 1 + MAX_MESSAGE_BYTES // 300)
    small, big = ex.SubmitBatch(records=records[:1]), ex.SubmitBatch(records=records[1:])
    assert big.ByteSize() > MAX_MESSAGE_BYTES
    size = few_workers.core.store.log_size()
    with member.channel(few_workers.port) as ch:
        code, answers = _IdleBatchStream(ch, [small, big]).outcome()
        assert code is Code.RESOURCE_EXHAUSTED
        assert [len(a.results) for a in answers] in ([], [1])
        assert few_workers.core.store.log_size() <= size + 1  # at most the small batch
        assert _checkpoint(ch) is Code.OK
        fresh = ex.SubmitBatch(records=_requests(member, 2))
        (answer,) = exchange(ch).SubmitBatches(iter([fresh]), timeout=10)
        assert [r.code for r in answer.results] == [0, 0]
