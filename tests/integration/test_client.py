"""AllianceClient against real gateways: mTLS on port 0, real databases."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from gwtest import USCC, Alliance, Member, listing, running_gateway

from clients import AllianceClient, ClientError, Profile, RetryPolicy, SubmitResult
from clients import statements as build
from clients.profile import load_profile
from gateway.core import dsse
from gateway.core.crypto import load_signing_key
from gateway.core.identifiers import _org_code_check, _uscc_check
from gateway.core.notes import NoteSigner
from gateway.core.possession import prove_possession
from gateway.core.statements import ConductType, LifecycleStep, ListKind, SanctionMeasure
from gateway.errors import RecordError
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import exchange_pb2_grpc

FAST_RETRY = RetryPolicy(max_attempts=40, initial_backoff_s=0.05, max_backoff_s=0.3)


def index(result: SubmitResult) -> int:
    assert result.log_index is not None, result
    return result.log_index


def make_uscc(n: int) -> str:
    """A valid credit code in Hangzhou numbered ``n`` (both check characters computed)."""
    body = f"{n:08d}"
    code17 = "91330100" + body + _org_code_check(body)
    return code17 + _uscc_check(code17)


def write_profile(alliance: Alliance, member: Member, address: str, log_origin: str) -> Path:
    folder = member.cert.parent
    vkey = folder / "log.vkey"
    signer = NoteSigner(log_origin, load_signing_key(alliance.gw_dir / "signing-key.pem"))
    vkey.write_text(signer.verifier().vkey + "\n")
    hmac_key = alliance.root / "alliance-hmac.key"
    if not hmac_key.exists():
        hmac_key.write_text("11" * 32 + "\n")
    path = folder / "profile.toml"
    profile = Profile(
        member_id=member.member_id,
        gateway=address,
        region_code=member.region,
        ca_file=member.ca,
        cert_file=member.cert,
        key_file=member.key,
        signing_key_file=folder / "signing-key.pem",
        state_dir=folder / "audit-state",
        hmac_key_file=hmac_key,
        log_vkey_file=vkey,
        path=path,
    )
    path.write_text(profile.to_toml())
    return path


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    a.member("platform", "shop-a")
    a.member("monitor", "ndrc", region="110000")
    return a


@contextmanager
def client_for(alliance: Alliance, name: str, gw: Gateway) -> Iterator[AllianceClient]:
    member = alliance.members[name]
    path = write_profile(alliance, member, f"127.0.0.1:{gw.port}", gw.config.log_origin)
    with AllianceClient(load_profile(path)) as client:
        yield client


def test_submit_resubmit_get_and_check(alliance: Alliance, database_url: str) -> None:
    amr = alliance.members["zj-amr"]
    with (
        running_gateway(
            alliance.config(database_url), register=tuple(alliance.members.values())
        ) as gw,
        client_for(alliance, "zj-amr", gw) as client,
    ):
        statement = listing(amr)
        first = client.submit(statement)
        again = client.submit(statement)
        assert first.ok and not first.duplicate
        assert (again.record_id, again.log_index, again.duplicate) == (
            first.record_id,
            first.log_index,
            True,
        )
        entry = client.get(first.record_id)
        assert entry.log_index == first.log_index
        assert entry.envelope.record_id == first.record_id
        # Served with its disclosures, each checked against the signed commitments.
        assert entry.statement() == statement
        forged = dataclasses.replace(entry.envelope.disclosures[0], value=b"")
        disclosures = (forged, *entry.envelope.disclosures[1:])
        tampered = dataclasses.replace(
            entry, envelope=dsse.with_disclosures(entry.envelope, disclosures)
        )
        with pytest.raises(RecordError, match="does not match its commitment"):
            tampered.statement()

        listed, clean = client.check(
            [build.company_subject(USCC[0]), build.company_subject(USCC[1])]
        )
        assert listed.listed and not clean.listed and clean.listings == ()
        (state,) = listed.listings
        assert state.listing_id == first.record_id
        assert state.step is LifecycleStep.LISTED and state.in_force
        assert state.listing.decision_ref == "ZJ-AMR-2026-0042"
        many = client.check(
            [build.company_subject(USCC[0])] * 1000 + [build.company_subject(USCC[1])]
        )
        assert len(many) == 1001 and all(st.listed for st in many[:1000]) and not many[1000].listed

        with pytest.raises(ClientError) as err:  # members sign only as themselves
            client.submit(alliance.members["shop-a"].sign(listing(alliance.members["shop-a"])))
        assert err.value.code is grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(ClientError) as missing:
            client.get("0" * 64)
        assert missing.value.code is grpc.StatusCode.NOT_FOUND

        # The TLS name can be overridden (the certificate names localhost and 127.0.0.1).
        named = dataclasses.replace(client.profile, server_name="localhost")
        with AllianceClient(named) as other:
            assert other.check([build.company_subject(USCC[0])])[0].listed
        wrong = dataclasses.replace(client.profile, server_name="gw.elsewhere.example")
        with (
            AllianceClient(wrong, retry=RetryPolicy(max_attempts=1)) as other,
            pytest.raises(ClientError) as refused,
        ):
            other.checkpoint()
        assert refused.value.code is grpc.StatusCode.UNAVAILABLE


@contextmanager
def client_with(
    alliance: Alliance, name: str, gw: Gateway, *, batch_records: int
) -> Iterator[AllianceClient]:
    member = alliance.members[name]
    path = write_profile(alliance, member, f"127.0.0.1:{gw.port}", gw.config.log_origin)
    with AllianceClient(load_profile(path), batch_records=batch_records) as client:
        yield client


# 1: one record a message (SubmitRecords); 4: the six records in two SubmitBatches
# messages; 256: the default, all six in one.
@pytest.mark.parametrize("batch_records", [1, 4, 256])
def test_submit_many_reports_a_bad_record_and_stores_the_rest(
    alliance: Alliance, database_url: str, batch_records: int
) -> None:
    amr = alliance.members["zj-amr"]
    with (
        running_gateway(
            alliance.config(database_url), register=tuple(alliance.members.values())
        ) as gw,
        client_with(alliance, "zj-amr", gw, batch_records=batch_records) as client,
    ):
        good = [listing(amr, uscc=u) for u in USCC]
        bad = dsse.sign(client.sign(good[0]).payload_type, b"\xff\xff", amr.signing_key)
        orphan = build.status_change(
            amr.member_id,
            "ab" * 32,
            LifecycleStep.NOTICE_SERVED,
            document_sha256=hashlib.sha256(b"notice").digest(),
        )
        seen: list[SubmitResult] = []
        results = list(
            client.submit_many([good[0], bad, good[1], orphan, good[2], good[0]], seen.append)
        )
        assert results == seen
        assert [r.sequence for r in results] == [0, 1, 2, 3, 4, 5]
        assert [r.code for r in results] == [
            grpc.StatusCode.OK,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.OK,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.OK,
            grpc.StatusCode.OK,
        ]
        assert results[1].record_id == bad.record_id and results[1].message
        assert results[5].duplicate and results[5].log_index == results[0].log_index
        assert index(results[4]) == index(results[2]) + 1  # refusals take no index
        calls = gw.metrics.registry.get_sample_value(
            "alliance_rpcs_total",
            {"method": "/alliance.v1.Exchange/SubmitBatches", "code": "OK"},
        )
        assert (calls or 0) == (0 if batch_records == 1 else 1)  # one stream for all
        assert list(client.submit_many([])) == []


class _WithoutBatches(grpc.GenericRpcHandler):
    """An Exchange as a gateway from before SubmitBatches serves it."""

    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        if details.method.endswith("/SubmitBatches"):
            return None
        return self._inner.service(details)


_ADD_EXCHANGE = exchange_pb2_grpc.add_ExchangeServicer_to_server


def _serve_without_batches(servicer: Any, server: Any) -> None:
    class Server:
        def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
            server.add_generic_rpc_handlers(tuple(_WithoutBatches(h) for h in handlers))

        def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
            handlers = {k: v for k, v in handlers.items() if k != "SubmitBatches"}
            server.add_registered_method_handlers(service, handlers)

    proxy: Any = Server()
    _ADD_EXCHANGE(servicer, proxy)


def test_submit_many_falls_back_to_one_record_messages_without_batches(
    alliance: Alliance, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway from before SubmitBatches does not serve it: the client streams the
    same records over SubmitRecords."""
    monkeypatch.setattr(exchange_pb2_grpc, "add_ExchangeServicer_to_server", _serve_without_batches)
    amr = alliance.members["zj-amr"]
    with (
        running_gateway(
            alliance.config(database_url), register=tuple(alliance.members.values())
        ) as gw,
        client_for(alliance, "zj-amr", gw) as client,
    ):
        results = list(client.submit_many([listing(amr, uscc=u) for u in USCC]))
        assert [r.code for r in results] == [grpc.StatusCode.OK] * 3
        assert [index(r) for r in results] == [index(results[0]) + i for i in range(3)]


def test_list_listings_follows_page_tokens(alliance: Alliance, database_url: str) -> None:
    amr = alliance.members["zj-amr"]
    with (
        running_gateway(
            alliance.config(database_url), register=tuple(alliance.members.values())
        ) as gw,
        client_for(alliance, "zj-amr", gw) as client,
    ):
        codes = [make_uscc(n) for n in range(5)]
        kinds = [ConductType.COUNTERFEIT, *[ConductType.FAKE_TRANSACTIONS] * 4]
        ids = [
            r.record_id
            for r in client.submit_many(
                listing(amr, uscc=code, conduct=kind)
                for code, kind in zip(codes, kinds, strict=True)
            )
        ]
        pages = list(client.list_listings(page_size=2))
        assert [s.listing_id for s in pages] == ids
        assert [s.listing.subject.uscc for s in pages if s.listing.subject] == codes
        fakes = client.list_listings(conduct=ConductType.FAKE_TRANSACTIONS, page_size=2)
        assert [s.listing_id for s in fakes] == ids[1:]
        none = client.list_listings(list_kind=ListKind.KEY_SCRUTINY, region_prefix="33")
        assert list(none) == []


def test_watch_sees_existing_and_new_records(alliance: Alliance, database_url: str) -> None:
    amr, shop = alliance.members["zj-amr"], alliance.members["shop-a"]
    with (
        running_gateway(
            alliance.config(database_url), register=tuple(alliance.members.values())
        ) as gw,
        client_for(alliance, "zj-amr", gw) as authority,
        client_for(alliance, "shop-a", gw) as platform,
    ):
        existing = authority.submit(listing(amr))
        watch = platform.watch(0)
        seen = [next(watch) for _ in range(index(existing) + 1)]
        assert [e.log_index for e in seen] == list(range(index(existing) + 1))
        assert seen[-1].record_id == existing.record_id
        fresh = platform.submit(
            build.sanction(shop.member_id, existing.record_id, SanctionMeasure.CLOSE_STORE)
        )
        entry = next(watch)
        assert (entry.log_index, entry.record_id) == (fresh.log_index, fresh.record_id)
        watch.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_retries_until_the_gateway_is_up_and_watch_resumes_after_a_restart(
    alliance: Alliance, database_url: str
) -> None:
    amr = alliance.members["zj-amr"]
    members = tuple(alliance.members.values())
    port = _free_port()
    config = alliance.config(database_url, listen_address=f"127.0.0.1:{port}")
    path = write_profile(alliance, amr, f"127.0.0.1:{port}", config.log_origin)
    started: list[Gateway] = []

    def start_later() -> None:
        time.sleep(1.0)
        gw = Gateway(config)
        for m in members:
            gw.core.members.add(
                m.member_id,
                m.region,
                m.signing_key.public_key().raw,
                possession=prove_possession(m.signing_key, m.member_id),
            )
        started.append(gw.start(serve_metrics=False))

    late = threading.Thread(target=start_later)
    begun = time.monotonic()
    late.start()
    with AllianceClient(load_profile(path), retry=FAST_RETRY) as client:
        try:
            # Submitted before the gateway listens: retried until it does.
            first = client.submit(listing(amr))
            assert time.monotonic() - begun >= 0.9
            late.join()
            watch = client.watch(index(first))
            assert next(watch).record_id == first.record_id
            started.pop().stop(grace_s=0.5)
            with running_gateway(config) as again:
                assert again.port == port
                second = client.submit(listing(amr, uscc=USCC[1]))
                entry = next(watch)  # the watch reconnected from its cursor
                assert (entry.log_index, entry.record_id) == (second.log_index, second.record_id)
                watch.close()
        finally:
            late.join()
            for gw in started:
                gw.stop(grace_s=0.5)


def test_unreachable_gateway_raises_unavailable_with_advice(
    alliance: Alliance, tmp_path: Path
) -> None:
    amr = alliance.members["zj-amr"]
    path = write_profile(alliance, amr, f"127.0.0.1:{_free_port()}", "zj.alliance.test/log")
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    with (
        AllianceClient(load_profile(path), retry=policy, sleep=sleeps.append) as client,
        pytest.raises(ClientError) as err,
    ):
        client.checkpoint()
    assert err.value.code is grpc.StatusCode.UNAVAILABLE
    assert "is the gateway running?" in err.value.advice
    assert len(sleeps) == 2 and all(0.005 <= s <= 0.02 for s in sleeps)
