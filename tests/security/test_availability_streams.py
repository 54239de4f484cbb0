"""Hardening part 1, items 1 and 2: streams must not freeze the gateway.

1. Reflection and health bypassed the interceptor: any certificate that passed TLS
   (unregistered, revoked, suspended) could hold idle ``ServerReflectionInfo`` streams
   on every worker thread, and read the descriptor set. Reflection now requires an
   active member and counts against the stream caps; health ``Check`` stays open to
   any caller that passed TLS and is never starved; health ``Watch`` is a capped stream.
2. Four members each holding their four allowed idle ``WatchRecords`` streams took
   every worker thread. Streams now run on their own pool under a global cap, so unary
   calls and health keep their threads; ``WatchRecords`` far beyond the log is refused.

Each attack holds at least ``DEFAULT_WORKERS`` streams of a gateway at default
settings while a platform's unary call and a health Check, each with a 2 s deadline,
must succeed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from availability_support import (
    DEADLINE_S,
    DEFAULT_WORKERS,
    Code,
    HeldStream,
    health_check,
    health_watch,
    reflection_stream,
    still_served,
    unary_call,
    wait_for,
    watch_stream,
)
from gwtest import Alliance, Member, exchange, running_gateway

from certs.pki import revoke
from gateway.core.statements import MemberStatus
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import exchange_pb2 as ex

PER_MEMBER = 4  # max_streams_per_member at the default settings


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    a = Alliance(tmp_path_factory.mktemp("streams"), "zj.alliance.test")
    a.member("platform", "calm")
    for i in range(4):
        a.member("platform", f"watcher-{i}")
    a.member("platform", "suspended")
    a.member("platform", "revoked")
    return a


@pytest.fixture(scope="module")
def stranger(alliance: Alliance) -> Member:
    """A certificate of our own CA for a member the gateway never registered."""
    m = alliance.member("platform", "stranger")
    del alliance.members["stranger"]
    return m


@pytest.fixture(scope="module")
def gw(alliance: Alliance) -> Iterator[Gateway]:
    """A gateway at the default thread and stream settings."""
    config = alliance.config(f"sqlite:///{alliance.root / 'streams.db'}")
    assert config.worker_threads == DEFAULT_WORKERS
    assert config.max_streams_per_member == PER_MEMBER
    with running_gateway(config, register=tuple(alliance.members.values())) as g:
        g.core.members.set_status(alliance.members["suspended"].member_id, MemberStatus.SUSPENDED)
        revoke(alliance.ca_dir, alliance.members["revoked"].cert)
        yield g


def _held_or_code(streams: list[HeldStream]) -> list[Code | None]:
    return [s.first() for s in streams]


# --- 1. reflection and health ----------------------------------------------------------


@pytest.mark.parametrize("who", ["stranger", "suspended", "revoked"])
def test_reflection_streams_of_non_members_are_refused_and_starve_nobody(
    gw: Gateway, alliance: Alliance, stranger: Member, who: str
) -> None:
    attacker = stranger if who == "stranger" else alliance.members[who]
    if who == "revoked":  # the ticker loads the CRL the fixture rewrote
        wait_for(lambda: unary_code(attacker, gw.port) is Code.PERMISSION_DENIED, what="CRL")
    calm = alliance.members["calm"]
    with attacker.channel(gw.port) as ach:
        streams = [reflection_stream(ach) for _ in range(DEFAULT_WORKERS)]
        try:
            firsts = _held_or_code(streams)
            assert still_served(calm, gw.port) == (Code.OK, Code.OK)
        finally:
            for s in streams:
                s.cancel()
    assert firsts == [Code.PERMISSION_DENIED] * DEFAULT_WORKERS


def unary_code(member: Member, port: int) -> Code:
    with member.channel(port) as ch:
        return unary_call(ch)


def health_check_code(member: Member, port: int) -> Code:
    with member.channel(port) as ch:
        return health_check(ch)


def test_health_check_stays_open_to_any_tls_caller(gw: Gateway, stranger: Member) -> None:
    assert health_check_code(stranger, gw.port) is Code.OK


def test_reflection_serves_active_members_within_their_stream_cap(
    gw: Gateway, alliance: Alliance
) -> None:
    member, calm = alliance.members["watcher-0"], alliance.members["calm"]
    with member.channel(gw.port) as ch:
        streams = [reflection_stream(ch) for _ in range(PER_MEMBER + 2)]
        try:
            firsts = _held_or_code(streams)
            assert firsts.count(None) == PER_MEMBER
            assert firsts.count(Code.RESOURCE_EXHAUSTED) == 2
            held = [s for s, f in zip(streams, firsts, strict=True) if f is None]
            names = {s.name for s in held[0].messages[0].list_services_response.service}
            assert "alliance.v1.Exchange" in names
            assert still_served(calm, gw.port) == (Code.OK, Code.OK)
        finally:
            for s in streams:
                s.cancel()
    wait_for(lambda: gw.limits.open_streams(member.member_id) == 0, what="slots given back")


def test_health_watch_is_a_capped_stream(gw: Gateway, alliance: Alliance, stranger: Member) -> None:
    member, calm = alliance.members["watcher-1"], alliance.members["calm"]
    with member.channel(gw.port) as ch, stranger.channel(gw.port) as sch:
        streams = [health_watch(ch) for _ in range(PER_MEMBER + 1)]
        strangers = [health_watch(sch) for _ in range(DEFAULT_WORKERS)]
        try:
            firsts = _held_or_code(streams)
            assert firsts.count(None) == PER_MEMBER
            assert firsts.count(Code.RESOURCE_EXHAUSTED) == 1
            assert _held_or_code(strangers) == [Code.PERMISSION_DENIED] * DEFAULT_WORKERS
            assert still_served(calm, gw.port) == (Code.OK, Code.OK)
        finally:
            for s in streams + strangers:
                s.cancel()
    wait_for(lambda: gw.limits.open_streams(member.member_id) == 0, what="slots given back")


# --- 2. legitimate streams -------------------------------------------------------------


def test_members_holding_all_their_watch_streams_do_not_freeze_unary_calls(
    gw: Gateway, alliance: Alliance
) -> None:
    watchers = [alliance.members[f"watcher-{i}"] for i in range(4)]
    assert len(watchers) * PER_MEMBER >= DEFAULT_WORKERS
    calm = alliance.members["calm"]
    channels = [w.channel(gw.port) for w in watchers]
    opened = [c.__enter__() for c in channels]
    size = gw.core.store.log_size()
    streams = [watch_stream(ch, size) for ch in opened for _ in range(PER_MEMBER)]
    try:
        wait_for(
            lambda: all(gw.limits.open_streams(w.member_id) == PER_MEMBER for w in watchers),
            what="every watch stream running",
        )
        assert still_served(calm, gw.port) == (Code.OK, Code.OK)
    finally:
        for s in streams:
            s.cancel()
        for c in channels:
            c.__exit__(None, None, None)
    wait_for(
        lambda: all(gw.limits.open_streams(w.member_id) == 0 for w in watchers),
        what="slots given back",
    )


@pytest.mark.parametrize("from_index", [2**64 - 1, 10**12])
def test_watch_from_beyond_the_log_is_refused(
    gw: Gateway, alliance: Alliance, from_index: int
) -> None:
    with alliance.members["calm"].channel(gw.port) as ch:
        stream = watch_stream(ch, from_index)
        code, seconds = stream.end()
    assert code is Code.INVALID_ARGUMENT
    assert seconds < DEADLINE_S


def test_watch_from_the_end_of_the_log_is_served(gw: Gateway, alliance: Alliance) -> None:
    with alliance.members["calm"].channel(gw.port) as ch:
        size = gw.core.store.log_size()
        call = exchange(ch).WatchRecords(ex.WatchRecordsRequest(from_index=size - 1), timeout=5)
        first = next(call)
        call.cancel()
    assert first.log_index == size - 1


# --- the global stream cap -------------------------------------------------------------

GLOBAL_CAP = 6


@pytest.fixture(scope="module")
def capped(alliance: Alliance) -> Iterator[Gateway]:
    config = alliance.config(f"sqlite:///{alliance.root / 'capped.db'}", max_streams=GLOBAL_CAP)
    with running_gateway(config, register=tuple(alliance.members.values())) as g:
        yield g


def test_streams_past_the_global_cap_are_refused_at_once(
    capped: Gateway, alliance: Alliance
) -> None:
    """Each member stays within its own cap; together they reach the gateway's."""
    watchers = [alliance.members[f"watcher-{i}"] for i in range(2)]
    calm = alliance.members["calm"]
    channels = [w.channel(capped.port) for w in watchers]
    opened = [c.__enter__() for c in channels]
    size = capped.core.store.log_size()
    streams = [watch_stream(ch, size) for ch in opened for _ in range(GLOBAL_CAP // 2)]
    try:
        wait_for(lambda: capped.limits.open_streams_total() == GLOBAL_CAP, what="cap reached")
        with calm.channel(capped.port) as ch:
            extra = watch_stream(ch, size)
            code, seconds = extra.end()
        assert code is Code.RESOURCE_EXHAUSTED
        assert seconds < DEADLINE_S
        assert still_served(calm, capped.port) == (Code.OK, Code.OK)
    finally:
        for s in streams:
            s.cancel()
        for c in channels:
            c.__exit__(None, None, None)
    wait_for(lambda: capped.limits.open_streams_total() == 0, what="slots given back")
