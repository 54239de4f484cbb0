"""The interceptor's rules that no other test pinned down, against real servers.

Written against the mutants that survived ``gateway/transport/interceptor.py``'s
mutation run (docs/TESTING.md, run 4):

- a method the server does not serve is denied by default: only a caller the policy
  lets call it learns that it is UNIMPLEMENTED here, and a refused caller gets the
  reason trailer like any refusal;
- health ``Check`` runs on its own pool: members holding every unary worker do not
  blind the probe;
- the refusal log names a certificate that names no member as such.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from gwtest import USCC, Alliance, Member, audit, exchange, listing, running_gateway
from test_trust_checks import _certificate, _uri

from gateway import codec
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.transport import interceptor
from gateway.transport.identity import Caller
from gateway.transport.interceptor import AuthInterceptor

Code = grpc.StatusCode
TRUST_DOMAIN = "zj.alliance.test"
GET_CHECKPOINT = "/alliance.v1.AuditLog/GetCheckpoint"
SUBMIT_RECORD = "/alliance.v1.Exchange/SubmitRecord"
WORKERS = 4


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    a = Alliance(tmp_path_factory.mktemp("interceptor"), TRUST_DOMAIN)
    for i in range(WORKERS):
        a.member("platform", f"shop-{i}")
    a.member("monitor", "ndrc", region="110000")
    return a


# --- a method this server does not serve ------------------------------------------------


class _EveryCertificate:
    """Admission that admits every certificate TLS accepted: the standing of members is
    not what these tests are about, the interceptor's own rules are."""

    def admit(self, caller: Caller) -> None:
        return None


@pytest.fixture(scope="module")
def health_only(alliance: Alliance) -> Iterator[int]:
    """A server with the real interceptor that serves only grpc health and reflection:
    every alliance RPC is a method it does not serve (as a gateway built without one of
    its services would be)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(2), interceptors=[AuthInterceptor(_EveryCertificate())]
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    reflection.enable_server_reflection((health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_secure_port("127.0.0.1:0", alliance.server_credentials())
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


def _raw_call(member: Member, port: int, method: str) -> grpc.RpcError:
    with member.channel(port) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        with pytest.raises(grpc.RpcError) as err:
            call(b"", timeout=10)
    return err.value


def test_an_unserved_method_is_unimplemented_only_for_a_caller_allowed_to_call_it(
    alliance: Alliance, health_only: int
) -> None:
    """A platform may call GetCheckpoint (the authorization table): here it learns the
    method is not served, with the method named."""
    err = _raw_call(alliance.members["shop-0"], health_only, GET_CHECKPOINT)
    assert err.code() is Code.UNIMPLEMENTED
    assert err.details() == f"{GET_CHECKPOINT} is not served here"


def test_an_unserved_method_is_denied_to_a_caller_not_allowed_to_call_it(
    alliance: Alliance, health_only: int
) -> None:
    """Attack: probing which services a server runs. A monitor may not submit: it is
    refused as anywhere else (PERMISSION_DENIED, with the reason code), and learns
    nothing about whether SubmitRecord is served here."""
    err = _raw_call(alliance.members["ndrc"], health_only, SUBMIT_RECORD)
    assert err.code() is Code.PERMISSION_DENIED
    assert err.details() == (
        f"role monitor may not call {SUBMIT_RECORD} "
        "(hint: see the authorization table in docs/PROTOCOL.md)"
    )
    assert isinstance(err, grpc.Call)
    reasons = [v for k, v in err.trailing_metadata() or () if k == "alliance-reason"]
    assert reasons == ["role-may-not-call"]


def test_a_server_without_limits_or_pools_serves_streams_on_its_own_pool(
    alliance: Alliance, health_only: int
) -> None:
    """The interceptor's limits and pools are optional (the gateway always passes
    them): without them health Check and a stream (health Watch, which any admitted
    caller may open) are served on the server's pool, with no caps and no idle clock on
    its requests; reflection, whose client streams its requests, too."""
    with alliance.members["shop-0"].channel(health_only) as ch:
        checked = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        watch = health_pb2_grpc.HealthStub(ch).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        first = next(iter(watch))
        watch.cancel()
        listed = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        services = {s.name for r in listed for s in r.list_services_response.service}
    assert checked.status == first.status == health_pb2.HealthCheckResponse.SERVING
    assert services == {health.SERVICE_NAME, reflection.SERVICE_NAME}


# --- health Check on its own pool -------------------------------------------------------


@pytest.fixture(scope="module")
def gw(alliance: Alliance) -> Iterator[Gateway]:
    config = alliance.config(f"sqlite:///{alliance.root / 'gateway.db'}", worker_threads=WORKERS)
    with running_gateway(config, register=tuple(alliance.members.values())) as g:
        yield g


def _request_reads(monkeypatch: pytest.MonkeyPatch) -> threading.Semaphore:
    """Released each time a server thread starts reading a call's request in the
    interceptor (``_Wrapper._request``, on the call's worker, after admission): a call
    whose client sends nothing then holds that worker."""
    started = threading.Semaphore(0)
    read = interceptor._Wrapper._request

    def counted(self: interceptor._Wrapper, requests: Iterator[Any]) -> Any:
        started.release()
        return read(self, requests)

    monkeypatch.setattr(interceptor._Wrapper, "_request", counted)
    return started


def test_members_holding_every_unary_worker_do_not_blind_the_health_probe(
    alliance: Alliance, gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: members open as many unary calls as the gateway has workers and never
    send their request. Each holds a worker (an admitted caller's request is read on
    the worker), but health Check runs on its own pool: the probe still answers
    SERVING within its deadline, so the orchestrator does not restart a gateway that
    is only being slow-lorised. When the clients give up sending, each held call ends
    INVALID_ARGUMENT naming what was missing."""
    reads = _request_reads(monkeypatch)
    release = threading.Event()
    outcomes: list[tuple[grpc.StatusCode, str | None]] = []

    def nothing() -> Iterator[bytes]:
        release.wait(30)
        return
        yield b""  # a generator that sends no message

    with contextlib.ExitStack() as channels:
        held = []
        try:
            for i in range(WORKERS):
                ch = channels.enter_context(alliance.members[f"shop-{i}"].channel(gw.port))
                call: grpc.StreamUnaryMultiCallable[bytes, bytes] = ch.stream_unary(GET_CHECKPOINT)
                held.append(call.future(nothing(), timeout=30))
            for _ in range(WORKERS):
                assert reads.acquire(timeout=10), "timed out waiting for every worker to be held"
            with alliance.members["ndrc"].channel(gw.port) as probe:
                reply = health_pb2_grpc.HealthStub(probe).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2.0
                )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            release.set()
            for future in held:
                try:
                    future.result(timeout=30)
                    outcomes.append((Code.OK, ""))
                except grpc.RpcError as e:
                    outcomes.append((e.code(), e.details()))
    assert (
        outcomes
        == [
            (
                Code.INVALID_ARGUMENT,
                f"{GET_CHECKPOINT} expects one request message, the client sent none "
                "(hint: fix the named field; the byte formats are in docs/PROTOCOL.md)",
            )
        ]
        * WORKERS
    )


# --- the refusal log --------------------------------------------------------------------


def test_a_certificate_naming_no_member_is_logged_as_such(
    alliance: Alliance, gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused certificate with two URI SANs has no caller to name: its refusal line
    says so (rather than naming one of its members, or failing to log)."""
    caplog.set_level(logging.WARNING, logger="gateway.transport.interceptor")
    both = _certificate(alliance, "two-uris", [_uri("platform/shop-0"), _uri("authority/zj-amr")])
    caplog.clear()
    err = _raw_call(both, gw.port, GET_CHECKPOINT)
    assert err.code() is Code.PERMISSION_DENIED
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    pattern = (
        re.escape(f"refused {GET_CHECKPOINT} from (a certificate that names no member) (")
        + r"ipv[46]:[^)]+"
        + re.escape(
            "): PERMISSION_DENIED the client certificate must carry exactly one URI SAN, "
            "it has 2 (hint: check the member id in your certificate and what its role "
            "may do)"
        )
    )
    assert len(lines) == 1 and re.fullmatch(pattern, lines[0]), lines


# --- every call observed ----------------------------------------------------------------


def _sample(gw: Gateway, name: str, labels: dict[str, str]) -> float:
    value = gw.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def test_every_call_is_counted_by_method_and_code_refusals_included(
    alliance: Alliance, gw: Gateway
) -> None:
    """The operator's view of an attack: refused calls are counted under their code
    beside the served ones, and each call's duration is observed once (a wall-clock
    interval, not a timestamp)."""
    ok = {"method": GET_CHECKPOINT, "code": "OK"}
    denied = {"method": GET_CHECKPOINT, "code": "PERMISSION_DENIED"}
    latency = {"method": GET_CHECKPOINT}
    before = (
        _sample(gw, "alliance_rpcs_total", ok),
        _sample(gw, "alliance_rpcs_total", denied),
        _sample(gw, "alliance_rpc_duration_seconds_count", latency),
        _sample(gw, "alliance_rpc_duration_seconds_sum", latency),
    )
    with alliance.members["shop-1"].channel(gw.port) as ch:
        audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10)
    stranger = _certificate(alliance, "no-uri", [x509.DNSName("shop.example")])
    assert _raw_call(stranger, gw.port, GET_CHECKPOINT).code() is Code.PERMISSION_DENIED
    after = (
        _sample(gw, "alliance_rpcs_total", ok),
        _sample(gw, "alliance_rpcs_total", denied),
        _sample(gw, "alliance_rpc_duration_seconds_count", latency),
        _sample(gw, "alliance_rpc_duration_seconds_sum", latency),
    )
    assert [a - b for a, b in zip(after[:3], before[:3], strict=True)] == [1.0, 1.0, 2.0]
    assert 0.0 < after[3] - before[3] < 20.0


# --- the gateway's own and its peers' streams are not counted ---------------------------


def test_the_gateway_s_own_streams_do_not_take_the_members_stream_budget(
    alliance: Alliance, tmp_path: Path
) -> None:
    """Attack: members fill the gateway-wide stream cap so that replication stops. The
    streams of configured gateway identities (ours, our replicas', the peers') are not
    counted against it: with the cap full, a member is refused and our own identity is
    still served."""
    config = alliance.config(
        f"sqlite:///{tmp_path / 'cap.db'}", max_streams=1, max_streams_per_member=1
    )
    with (
        running_gateway(config, register=tuple(alliance.members.values())) as g,
        alliance.members["shop-0"].channel(g.port) as held_ch,
        alliance.members["shop-1"].channel(g.port) as refused_ch,
        alliance.gateway_member().channel(g.port) as own_ch,
    ):
        held = _health_watch(held_ch)
        assert _first(held) is Code.OK
        assert _first(_health_watch(refused_ch)) is Code.RESOURCE_EXHAUSTED
        refused = {"method": "/grpc.health.v1.Health/Watch", "code": "RESOURCE_EXHAUSTED"}
        assert _sample(g, "alliance_rpcs_total", refused) == 1.0
        own = _health_watch(own_ch)
        assert _first(own) is Code.OK
        held.cancel()
        own.cancel()


def _health_watch(channel: grpc.Channel) -> Any:
    return health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=""), timeout=30
    )


def _first(watch: Any) -> grpc.StatusCode:
    """OK once the stream's first message (the status) arrived: the stream is held."""
    try:
        next(watch)
    except grpc.RpcError as e:
        return e.code()
    return Code.OK


# --- upload streams have no maximum age -------------------------------------------------


def test_an_upload_stream_outlives_the_maximum_age_of_read_streams(
    alliance: Alliance, tmp_path: Path
) -> None:
    """Read streams end at their maximum age so a reader cannot pin a thread forever;
    an upload (SubmitRecords) is bounded by its idle timeout and record count instead,
    and a platform's long upload is not cut off halfway: after a read stream opened
    with it has ended at its age, the upload still takes records."""
    config = alliance.config(f"sqlite:///{tmp_path / 'age.db'}", stream_max_age_s=0.5)
    shop = alliance.members["shop-2"]
    outbox: queue.Queue[ex.SubmitRecordRequest | None] = queue.Queue()

    def requests() -> Iterator[ex.SubmitRecordRequest]:
        while (request := outbox.get(timeout=30)) is not None:
            yield request

    def send(uscc: str) -> None:
        env = shop.sign(listing(shop, uscc))
        outbox.put(ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env)))

    with (
        running_gateway(config, register=tuple(alliance.members.values())) as g,
        shop.channel(g.port) as ch,
        alliance.members["shop-3"].channel(g.port) as reader_ch,
    ):
        upload = exchange(ch).SubmitRecords(requests(), timeout=30)
        try:
            send(USCC[0])
            assert next(upload).code == 0
            reader = _health_watch(reader_ch)
            assert _first(reader) is Code.OK
            assert _first(reader) is Code.UNAVAILABLE  # ended at its maximum age
            send(USCC[1])
            assert next(upload).code == 0
        finally:
            outbox.put(None)
        assert list(upload) == []
        done = {"method": "/alliance.v1.Exchange/SubmitRecords", "code": "OK"}
        assert _sample(g, "alliance_rpcs_total", done) == 1.0  # observed before its status


def test_request_bytes_that_do_not_parse_are_an_invalid_argument(
    alliance: Alliance, gw: Gateway
) -> None:
    """Attack: bytes that are no protobuf message. grpc itself would answer INTERNAL
    (a server fault); the gateway answers INVALID_ARGUMENT, saying the request did not
    parse and why, and serves on."""
    with alliance.members["shop-1"].channel(gw.port) as ch:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = ch.unary_unary(GET_CHECKPOINT)
        with pytest.raises(grpc.RpcError) as err:
            call(b"\xff\xff\xff", timeout=10)
    assert err.value.code() is Code.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert details.startswith("the request is not a valid message: DecodeError: "), details
