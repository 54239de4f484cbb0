"""Submission and lookup against a real gateway (mTLS on port 0, real database)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from gwtest import (
    USCC,
    Alliance,
    confirmation,
    exchange,
    listing,
    running_gateway,
    subject_pb,
    submit,
    zhejiang,
)

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey
from gateway.pb.alliance.v1 import exchange_pb2 as ex


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def test_listing_is_stored_checked_and_sanctioned(alliance: Alliance, database_url: str) -> None:
    amr, shop_a = alliance.members["zj-amr"], alliance.members["shop-a"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        env = amr.sign(listing(amr))
        with amr.channel(gw.port) as ch:
            first = submit(ch, env)
            again = submit(ch, env)
        assert first.record_id == env.record_id
        assert (again.record_id, again.log_index, again.duplicate) == (
            first.record_id,
            first.log_index,
            True,
        )
        assert not first.duplicate

        with shop_a.channel(gw.port) as ch:
            conf = submit(ch, shop_a.sign(confirmation(shop_a, first.record_id)))
            assert conf.log_index == first.log_index + 1
            reply = exchange(ch).CheckSubjects(
                ex.CheckSubjectsRequest(
                    subjects=[
                        subject_pb(listing(amr)),
                        subject_pb(listing(amr, uscc=USCC[1])),
                    ]
                ),
                timeout=10,
            )
        listed, clean = reply.results
        assert listed.listed and not clean.listed
        assert [s.listing_id for s in listed.listings] == [first.record_id]
        (state,) = listed.listings
        assert state.in_force and state.listing.decision_ref == "ZJ-AMR-2026-0042"
        assert [(s.platform, s.measure) for s in state.sanctions] == [(shop_a.member_id, 12)]


def test_platform_cannot_submit_as_another(alliance: Alliance, database_url: str) -> None:
    shop_a, shop_b = alliance.members["shop-a"], alliance.members["shop-b"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        size = gw.core.store.log_size()
        with shop_b.channel(gw.port) as ch, pytest.raises(grpc.RpcError) as err:
            submit(ch, shop_a.sign(listing(shop_a)))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert gw.core.store.log_size() == size


def test_tampered_envelope_is_invalid_and_not_stored(alliance: Alliance, database_url: str) -> None:
    amr = alliance.members["zj-amr"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        env = amr.sign(listing(amr))
        forged = dsse.Envelope(env.payload + b"\x00", env.payload_type, env.signatures)
        wrong_key = dsse.sign(env.payload_type, env.payload, SigningKey.generate())
        size = gw.core.store.log_size()
        with amr.channel(gw.port) as ch:
            for bad in (forged, wrong_key):
                with pytest.raises(grpc.RpcError) as err:
                    submit(ch, bad)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert gw.core.store.log_size() == size


def test_stream_reports_bad_record_and_stores_the_rest(
    alliance: Alliance, database_url: str
) -> None:
    amr = alliance.members["zj-amr"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        good = [amr.sign(listing(amr, uscc=u)) for u in USCC]
        bad = dsse.sign(good[0].payload_type, b"\xff\xff", amr.signing_key)
        envs = [good[0], bad, good[1], good[2], good[0]]
        with amr.channel(gw.port) as ch:
            results = list(
                exchange(ch).SubmitRecords(
                    iter([ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs]),
                    timeout=20,
                )
            )
        assert [r.sequence for r in results] == [0, 1, 2, 3, 4]
        assert [r.code for r in results] == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0], 0, 0, 0]
        assert results[4].duplicate and results[4].log_index == results[0].log_index
        assert all(gw.core.store.record_by_id(e.record_id) for e in good)


def test_a_listing_that_lands_between_the_two_looks_is_still_found(
    alliance: Alliance, database_url: str
) -> None:
    """The gateway looks for a confirmation's listing among the records in flight and in
    the store. A store read that missed the listing just before it committed, followed
    by a look in flight just after it left, refused the confirmation NOT_FOUND (a stream
    carrying a listing and its confirmation failed so under load). Here every store read
    made while the listing is in flight answers only once it has landed, as a read that
    lost that race would."""
    shop_a = alliance.members["shop-a"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        submit_service = gw.submit
        store = submit_service._store
        in_flight = submit_service._in_flight

        class StaleWhileInFlight:
            def __getattr__(self, name: str) -> Any:
                return getattr(store, name)

            def record_by_id(self, record_id: str) -> Any:
                if record_id not in in_flight:
                    return store.record_by_id(record_id)
                landed = threading.Event()
                while not landed.wait(0.01):  # until the append committed and left the map
                    if record_id not in in_flight:
                        landed.set()
                return None  # what the read saw before the commit

        submit_service._store = StaleWhileInFlight()  # type: ignore[assignment]
        own = shop_a.sign(listing(shop_a, uscc=USCC[2]))
        envs = [own, shop_a.sign(confirmation(shop_a, own.record_id))]
        with shop_a.channel(gw.port) as ch:
            results = list(
                exchange(ch).SubmitRecords(
                    iter([ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs]),
                    timeout=20,
                )
            )
        submit_service._store = store
        assert [(r.code, r.record_id) for r in results] == [(0, e.record_id) for e in envs]


def test_stream_carries_a_listing_and_its_confirmation(
    alliance: Alliance, database_url: str
) -> None:
    """A confirmation right behind its listing in one stream finds the listing even
    before the sequencer has committed it."""
    amr, shop_a = alliance.members["zj-amr"], alliance.members["shop-a"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        listed = amr.sign(listing(amr))
        with amr.channel(gw.port) as ch:
            submit(ch, listed)  # the authority lists; the platform streams its own records
        own = shop_a.sign(listing(shop_a, uscc=USCC[2]))
        envs = [
            own,
            shop_a.sign(confirmation(shop_a, own.record_id)),
            shop_a.sign(confirmation(shop_a, listed.record_id)),
        ]
        with shop_a.channel(gw.port) as ch:
            results = list(
                exchange(ch).SubmitRecords(
                    iter([ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs]),
                    timeout=20,
                )
            )
        assert [(r.code, r.record_id) for r in results] == [(0, e.record_id) for e in envs]
        sanctions = gw.core.store.sanctions_for([own.record_id])
        assert [s.platform for s in sanctions[own.record_id]] == [shop_a.member_id]
