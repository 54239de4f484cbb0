"""Hardening part 2, item 4: revocation and suspension reach open streams.

A ``SubmitRecords`` (or ``SubmitBatches``) stream opened before ``certs revoke`` kept appending, and
``WatchRecords`` kept delivering after suspension or revocation, with no bound on its
age. Now every open stream of a revoked or suspended member ends within 2 s with
PERMISSION_DENIED (its guard admits the caller again while it runs), nothing it sends
afterwards is appended, and read streams end with UNAVAILABLE at their maximum age.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from availability_support import (
    Code,
    HeldStream,
    health_watch,
    reflection_stream,
    unary_call,
    wait_for,
    watch_stream,
)
from gwtest import Alliance, Member, exchange, listing, running_gateway, submit

from certs.pki import revoke
from gateway import codec
from gateway.core.statements import MemberStatus
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import exchange_pb2 as ex

WITHIN_S = 2.0


@pytest.fixture
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    a = Alliance(tmp_path_factory.mktemp("revocation"), "zj.alliance.test")
    a.member("platform", "target")
    a.member("platform", "other")
    return a


@pytest.fixture
def gw(alliance: Alliance, database_url: str) -> Iterator[Gateway]:
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as g:
        yield g


def _revoke(alliance: Alliance, member: Member) -> None:
    revoke(alliance.ca_dir, member.cert)


def _suspend(gw: Gateway, member: Member) -> None:
    gw.core.members.set_status(member.member_id, MemberStatus.SUSPENDED)


class _Uploader:
    """A SubmitRecords stream that sends a fresh listing every 20 ms until its call ends
    (or, ``batched``, a SubmitBatches stream that sends a batch of three), remembering
    what it sent."""

    def __init__(self, channel: grpc.Channel, member: Member, *, batched: bool = False) -> None:
        self.member = member
        self.sent: list[str] = []
        self.results: list[ex.SubmitRecordResult] = []
        self._stop = threading.Event()
        self.call: Iterator[ex.SubmitRecordResult] | Iterator[ex.SubmitBatchResult] = (
            exchange(channel).SubmitBatches(self._batches(), timeout=60)
            if batched
            else exchange(channel).SubmitRecords(self._requests(), timeout=60)
        )

    def _requests(self) -> Iterator[ex.SubmitRecordRequest]:
        n = 0
        while not self._stop.wait(0.02):
            env = self.member.sign(listing(self.member, decision_ref=f"UP-{time.time_ns()}-{n}"))
            self.sent.append(env.record_id)
            n += 1
            yield ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env))

    def _batches(self) -> Iterator[ex.SubmitBatch]:
        records = self._requests()
        while not self._stop.is_set():
            yield ex.SubmitBatch(records=[next(records) for _ in range(3)])

    def run(self) -> tuple[Code, float]:
        """Read results until the call ends; its code and when it ended (monotonic)."""
        try:
            for answer in self.call:
                if isinstance(answer, ex.SubmitBatchResult):
                    self.results.extend(answer.results)
                else:
                    self.results.append(answer)
        except grpc.RpcError as e:
            return e.code(), time.monotonic()
        finally:
            self._stop.set()
        return Code.OK, time.monotonic()


@pytest.mark.parametrize("shape", ["records", "batches"])
@pytest.mark.parametrize("how", ["revoked", "suspended"])
def test_a_submit_stream_stops_appending_when_its_member_loses_admission(
    gw: Gateway, alliance: Alliance, how: str, shape: str
) -> None:
    target, other = alliance.members["target"], alliance.members["other"]
    with target.channel(gw.port) as ch:
        uploader = _Uploader(ch, target, batched=shape == "batches")
        outcome: list[tuple[Code, float]] = []
        reader = threading.Thread(target=lambda: outcome.append(uploader.run()))
        reader.start()
        wait_for(lambda: len(uploader.results) >= 5, what="records answered")
        began = time.monotonic()
        if how == "revoked":
            _revoke(alliance, target)
        else:
            _suspend(gw, target)
        reader.join(timeout=10)
    assert outcome, "the stream did not end"
    code, ended = outcome[0]
    assert code is Code.PERMISSION_DENIED
    assert ended - began < WITHIN_S
    sent_by_end = len(uploader.sent)
    # Everything handed to the sequencer before the end is committed once a later
    # record of another member is: nothing of the target's is appended after that.
    with other.channel(gw.port) as och:
        submit(och, other.sign(listing(other, decision_ref="AFTER")))
    stored = [i for i, r in enumerate(uploader.sent) if gw.core.store.record_by_id(r) is not None]
    assert stored, "nothing was appended before the revocation"
    assert max(stored) < sent_by_end
    size = gw.core.store.log_size()
    with other.channel(gw.port) as och:
        submit(och, other.sign(listing(other, decision_ref="LATER")))
    assert gw.core.store.log_size() == size + 1
    assert [r for r in uploader.sent if gw.core.store.record_by_id(r) is not None] == [
        uploader.sent[i] for i in stored
    ]


Opener = Callable[[grpc.Channel, Gateway], HeldStream]
_STREAMS: dict[str, Opener] = {
    "watch-records": lambda ch, gw: watch_stream(ch, gw.core.store.log_size() - 1),
    "health-watch": lambda ch, gw: health_watch(ch),
    "reflection": lambda ch, gw: reflection_stream(ch),
}


@pytest.mark.parametrize("kind", sorted(_STREAMS))
@pytest.mark.parametrize("how", ["revoked", "suspended"])
def test_open_read_streams_end_when_their_member_loses_admission(
    gw: Gateway, alliance: Alliance, kind: str, how: str
) -> None:
    target, other = alliance.members["target"], alliance.members["other"]
    with target.channel(gw.port) as ch:
        stream = _STREAMS[kind](ch, gw)
        assert stream.first() is None  # the stream runs and has answered
        began = time.monotonic()
        if how == "revoked":
            _revoke(alliance, target)
        else:
            _suspend(gw, target)
        # Meanwhile the log grows, so a watch has something it must no longer deliver.
        with other.channel(gw.port) as och:
            submit(och, other.sign(listing(other, decision_ref=f"WHILE-{kind}")))
        code, _ = stream.end()
        ended = time.monotonic()
        assert unary_call(ch) is Code.PERMISSION_DENIED
    assert code is Code.PERMISSION_DENIED
    assert ended - began < WITHIN_S


def test_a_watch_stream_ends_at_its_maximum_age_and_resumes(
    alliance: Alliance, tmp_path_factory: pytest.TempPathFactory
) -> None:
    max_age_s = 1.0
    url = f"sqlite:///{tmp_path_factory.mktemp('age') / 'gw.db'}"
    config = alliance.config(url, stream_max_age_s=max_age_s)
    target = alliance.members["target"]
    with (
        running_gateway(config, register=tuple(alliance.members.values())) as gw,
        target.channel(gw.port) as ch,
    ):
        stream = watch_stream(ch, 0)
        code, seconds = stream.end()
        details = stream.call.details() or ""
        assert code is Code.UNAVAILABLE
        assert "maximum age" in details
        assert max_age_s <= seconds < max_age_s + WITHIN_S
        delivered = [m.log_index for m in stream.messages]
        assert delivered == list(range(gw.core.store.log_size()))
        # The client resumes from its cursor.
        resumed = watch_stream(ch, delivered[-1])
        assert resumed.first() is None
        assert resumed.messages[0].log_index == delivered[-1]
        resumed.cancel()
