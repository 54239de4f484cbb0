"""The subject lookup reads times in their stored form and converts only those it
answers with: they must come out as the typed reads of the same rows do."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gwtest import USCC, Alliance, confirmation, listing, running_gateway, submit

from gateway.core.statements import SanctionMeasure, Subject


def test_subject_lookup_times_match_the_typed_reads(tmp_path: Path, database_url: str) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = a.member("authority", "zj-amr", region="330000")
    shop = a.member("platform", "shop-a")
    with running_gateway(a.config(database_url), register=(amr, shop)) as gw:
        listed_at = datetime(2026, 10, 1, 3, 4, 5, 123456, tzinfo=UTC)
        with amr.channel(gw.port) as ch:
            listing_id = submit(ch, amr.sign(listing(amr, listed_at=listed_at))).record_id
            other_id = submit(ch, amr.sign(listing(amr, uscc=USCC[1]))).record_id
        with shop.channel(gw.port) as ch:
            for measure in (SanctionMeasure.CLOSE_STORE, SanctionMeasure.RESTRICT_PUBLISHING):
                effective_at = datetime(2026, 10, 2, 1, 2, 3, 654321, tzinfo=UTC)
                submit(
                    ch,
                    shop.sign(
                        confirmation(shop, listing_id, measure=measure, effective_at=effective_at)
                    ),
                )
        store = gw.core.store
        keys = [Subject(uscc=u).key for u in (USCC[0], USCC[1], USCC[2])]
        found = store.listings_for_subjects(keys)
        assert sorted(found) == sorted(keys[:2])
        (first,) = found[keys[0]]
        (second,) = found[keys[1]]
        for got, lid in ((first, listing_id), (second, other_id)):
            typed = store.listing(lid)
            assert typed is not None
            assert (got.listing_id, got.step, got.in_force) == (lid, typed.step, typed.in_force)
            assert got.deadline == typed.deadline and got.deadline.tzinfo is UTC
            assert got.payload == store.payloads_by_ids([lid])[lid]
        assert list(first.sanctions) == store.sanctions_for([listing_id])[listing_id]
        assert [s.effective_at.tzinfo for s in first.sanctions] == [UTC, UTC]
        assert second.sanctions == ()
        assert store.listings_for_subjects([]) == {}
