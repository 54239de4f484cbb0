"""SubmitBatches: many records in one stream message, one answer per batch
(docs/PROTOCOL.md §5). Each record keeps the per-record semantics of SubmitRecords."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from gwtest import (
    USCC,
    Alliance,
    Member,
    confirmation,
    exchange,
    listing,
    running_gateway,
    submit,
    zhejiang,
)

from gateway import codec
from gateway.core import dsse
from gateway.pb.alliance.v1 import exchange_pb2 as ex

OK = grpc.StatusCode.OK.value[0]
INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED.value[0]


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def batch(envs: Sequence[dsse.Envelope]) -> ex.SubmitBatch:
    return ex.SubmitBatch(
        records=[ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs]
    )


def send(
    member: Member, port: int, batches: Sequence[ex.SubmitBatch]
) -> list[ex.SubmitBatchResult]:
    with member.channel(port) as ch:
        return list(exchange(ch).SubmitBatches(iter(batches), timeout=30))


def listings(member: Member, n: int, ref: str = "B") -> list[dsse.Envelope]:
    return [member.sign(listing(member, decision_ref=f"{ref}-{i}")) for i in range(n)]


def test_a_batch_reports_each_record_and_a_refusal_stops_nothing(
    alliance: Alliance, database_url: str
) -> None:
    amr = alliance.members["zj-amr"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        good = listings(amr, 5)
        bad = dsse.sign(good[0].payload_type, b"\xff\xff", amr.signing_key)
        forged = dsse.Envelope(good[4].payload + b"\x00", good[4].payload_type, good[4].signatures)
        first = [good[0], bad, good[1], good[0], forged]  # a duplicate within the batch
        second = [good[2], good[1], good[3]]  # a duplicate of the batch before
        answers = send(amr, gw.port, [batch(first), batch(second), batch([])])
        assert len(answers) == 3
        results = [r for a in answers for r in a.results]
        assert [len(a.results) for a in answers] == [5, 3, 0]
        assert [r.sequence for r in results] == list(range(8))
        assert [r.code for r in results] == [OK, INVALID, OK, OK, INVALID, OK, OK, OK]
        assert [r.record_id for r in results] == [
            e.record_id for e in [*first[:4], forged, *second]
        ]
        assert [r.duplicate for r in results] == [
            False,
            False,
            False,
            True,
            False,
            False,
            True,
            False,
        ]
        assert results[3].log_index == results[0].log_index
        assert results[6].log_index == results[2].log_index
        indexes = [r.log_index for r in results if r.code == OK and not r.duplicate]
        assert sorted(indexes) == list(range(indexes[0], indexes[0] + 4))
        for e in good[:4]:
            assert gw.core.store.record_by_id(e.record_id) is not None
        assert gw.core.store.record_by_id(forged.record_id) is None
        # The same records one at a time answer exactly as in the batch.
        with amr.channel(gw.port) as ch:
            again = submit(ch, good[3])
        assert again.duplicate and again.log_index == results[7].log_index


def test_a_batch_carries_a_listing_and_its_confirmations(
    alliance: Alliance, database_url: str
) -> None:
    """A confirmation behind its listing in the same batch, or in the next batch before
    the listing committed, finds the listing; one with no listing is NOT_FOUND."""
    amr, shop_a = alliance.members["zj-amr"], alliance.members["shop-a"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        listed = amr.sign(listing(amr))
        with amr.channel(gw.port) as ch:
            submit(ch, listed)
        own = shop_a.sign(listing(shop_a, uscc=USCC[2]))
        first = [
            own,
            shop_a.sign(confirmation(shop_a, own.record_id)),
            shop_a.sign(confirmation(shop_a, "0" * 64)),
        ]
        second = [shop_a.sign(confirmation(shop_a, listed.record_id))]
        answers = send(shop_a, gw.port, [batch(first), batch(second)])
        results = [r for a in answers for r in a.results]
        assert [r.code for r in results] == [OK, OK, NOT_FOUND, OK]
        sanctions = gw.core.store.sanctions_for([own.record_id, listed.record_id])
        assert [s.platform for s in sanctions[own.record_id]] == [shop_a.member_id]
        assert [s.platform for s in sanctions[listed.record_id]] == [shop_a.member_id]


def test_records_of_another_issuer_are_refused_in_their_results(
    alliance: Alliance, database_url: str
) -> None:
    amr, shop_a = alliance.members["zj-amr"], alliance.members["shop-a"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        mine, theirs = shop_a.sign(listing(shop_a)), amr.sign(listing(amr, uscc=USCC[1]))
        (answer,) = send(shop_a, gw.port, [batch([theirs, mine])])
        assert [r.code for r in answer.results] == [PERMISSION_DENIED, OK]
        assert gw.core.store.record_by_id(theirs.record_id) is None


def test_a_batch_over_the_limit_ends_the_stream_and_stores_none_of_it(
    alliance: Alliance, database_url: str
) -> None:
    amr = alliance.members["zj-amr"]
    config = alliance.config(database_url, max_submit_batch_records=3)
    with running_gateway(config, register=tuple(alliance.members.values())) as gw:
        envs = listings(amr, 7)
        answers: list[ex.SubmitBatchResult] = []
        with amr.channel(gw.port) as ch:
            call = exchange(ch).SubmitBatches(
                iter([batch(envs[:3]), batch(envs[3:7]), batch(envs[:1])]), timeout=30
            )
            with pytest.raises(grpc.RpcError) as err:
                answers.extend(call)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 3" in (err.value.details() or "")
        assert [[r.code for r in a.results] for a in answers] == [[OK] * 3]
        assert all(gw.core.store.record_by_id(e.record_id) for e in envs[:3])
        assert not any(gw.core.store.record_by_id(e.record_id) for e in envs[3:])


def test_the_stream_record_cap_counts_records_across_batches(
    alliance: Alliance, database_url: str
) -> None:
    amr = alliance.members["zj-amr"]
    config = alliance.config(database_url, max_stream_records=4)
    with running_gateway(config, register=tuple(alliance.members.values())) as gw:
        envs = listings(amr, 8)
        answers = send(amr, gw.port, [batch(envs[:3]), batch(envs[3:6]), batch(envs[6:])])
        assert [[r.code for r in a.results] for a in answers] == [[OK] * 3, [OK, INVALID, INVALID]]
        assert "at most 4 records" in answers[1].results[1].message
        assert gw.core.store.record_by_id(envs[3].record_id) is not None
        assert not any(gw.core.store.record_by_id(e.record_id) for e in envs[4:])


def test_a_message_that_is_not_a_batch_ends_the_stream(
    alliance: Alliance, database_url: str
) -> None:
    amr = alliance.members["zj-amr"]
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        envs = listings(amr, 2)

        def raw() -> Iterator[bytes]:
            yield batch(envs[:1]).SerializeToString()
            yield b"\x0a\xff"  # field 1, a length running past the end
            yield batch(envs[1:]).SerializeToString()

        with amr.channel(gw.port) as ch:
            method: grpc.StreamStreamMultiCallable[bytes, ex.SubmitBatchResult] = ch.stream_stream(
                "/alliance.v1.Exchange/SubmitBatches",
                response_deserializer=ex.SubmitBatchResult.FromString,
            )
            answers: list[ex.SubmitBatchResult] = []
            with pytest.raises(grpc.RpcError) as err:
                answers.extend(method(raw(), timeout=30))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [[r.code for r in a.results] for a in answers] == [[OK]]
        assert gw.core.store.record_by_id(envs[1].record_id) is None
