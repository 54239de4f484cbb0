"""CheckSubjects over several listings and sanctions of one subject (real gateway)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from gwtest import (
    USCC,
    Alliance,
    confirmation,
    exchange,
    listing,
    running_gateway,
    submit,
    zhejiang,
)

from gateway.core.statements import SanctionMeasure
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import statements_pb2 as pb


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def test_each_subject_gets_its_listings_oldest_first_with_sorted_sanctions(
    alliance: Alliance, database_url: str
) -> None:
    amr, shop_a, shop_b = (alliance.members[n] for n in ("zj-amr", "shop-a", "shop-b"))
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        october = amr.sign(listing(amr))
        september = amr.sign(
            listing(
                amr, decision_ref="ZJ-AMR-2026-0007", listed_at=datetime(2026, 9, 1, tzinfo=UTC)
            )
        )
        other = amr.sign(listing(amr, uscc=USCC[1]))
        with amr.channel(gw.port) as ch:
            for env in (october, september, other):
                submit(ch, env)
        # Stored in an order other than the one answered: platform, then measure.
        close = SanctionMeasure.CLOSE_STORE
        publishing = SanctionMeasure.RESTRICT_PUBLISHING
        with shop_b.channel(gw.port) as ch:
            submit(ch, shop_b.sign(confirmation(shop_b, october.record_id, measure=close)))
        with shop_a.channel(gw.port) as ch:
            for measure in (close, publishing):
                submit(ch, shop_a.sign(confirmation(shop_a, october.record_id, measure=measure)))

        sent = [
            pb.Subject(
                uscc=USCC[0],
                name="Hangzhou Example Trading Co.",
                stores=[pb.StoreRef(platform=shop_a.member_id, store_id="s-1")],
            ),
            pb.Subject(uscc=USCC[2]),
            pb.Subject(uscc=USCC[1]),
            pb.Subject(uscc=USCC[0]),
        ]
        with alliance.members["ndrc"].channel(gw.port) as ch:
            reply = exchange(ch).CheckSubjects(ex.CheckSubjectsRequest(subjects=sent), timeout=10)

    assert [r.subject for r in reply.results] == sent
    assert [r.listed for r in reply.results] == [True, False, True, True]
    assert [[s.listing_id for s in r.listings] for r in reply.results] == [
        [september.record_id, october.record_id],
        [],
        [other.record_id],
        [september.record_id, october.record_id],
    ]
    first = reply.results[0].listings
    assert first[0].listing.decision_ref == "ZJ-AMR-2026-0007" and not first[0].sanctions
    assert [(s.platform, int(s.measure)) for s in first[1].sanctions] == [
        (shop_a.member_id, publishing),
        (shop_a.member_id, close),
        (shop_b.member_id, close),
    ]
    assert reply.results[3] == ex.SubjectStatus(subject=sent[3], listed=True, listings=first)


def test_a_bad_credit_code_names_its_position(alliance: Alliance, database_url: str) -> None:
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        subjects = [pb.Subject(uscc=USCC[0]), pb.Subject(uscc="91110108551385082R")]
        with alliance.members["ndrc"].channel(gw.port) as ch, pytest.raises(grpc.RpcError) as err:
            exchange(ch).CheckSubjects(ex.CheckSubjectsRequest(subjects=subjects), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = "subjects[1]: subject.uscc: check character is R, expected Q"
    assert (err.value.details() or "").startswith(f"{message} (hint: ")
