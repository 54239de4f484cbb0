"""Retention on real gateways (issue 18 item 6): once the listing a redactable record
belongs to has been closed for its kind's retention, the gateway of the record's
trust domain signs an Erasure naming it; the record keeps its place in the log and its
signature but loses its disclosures everywhere. Time is the gateways' controllable
clock; waits are for events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from gwtest import (
    USCC,
    Alliance,
    Member,
    exchange,
    listing,
    pg_base_url,
    pg_schema_url,
    zhejiang,
)
from test_compliance import Clock, eventually, gateway_at, reserve_port, sanction, send, step, utc

from gateway import codec
from gateway.core.statements import (
    ERASURE_V1,
    Erasure,
    ErasureBasis,
    GovernmentMeasure,
    GovernmentMeasureKind,
    LifecycleStep,
    SanctionAction,
    StoreRef,
    Subject,
)
from gateway.core.workdays import ReportMonth
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.retention import (
    RecordKind,
    RetentionEraser,
    RetentionSettings,
    legal_basis,
    retention_day,
)

S = LifecycleStep
START = utc(2026, 6, 1)
# Listings close at midnight in China Standard Time, 11 June: the days of retention
# are then whole days of the calendar retention is judged on (retention_day).
CLOSED = utc(2026, 6, 10, 16)
# Thirty days for every kind but confirmations, kept sixty.
DAYS = {
    "retention_listing_days": 30,
    "retention_status_change_days": 30,
    "retention_sanction_confirmation_days": 60,
    "retention_government_measure_days": 30,
}
NAME = "杭州示例商贸有限公司"


def _erasures(gw: Gateway) -> list[tuple[str, Erasure]]:
    out = []
    for record in gw.core.store.records_of_types([ERASURE_V1]):
        stmt = codec.decode_statement(record.payload_type, record.payload)
        assert isinstance(stmt, Erasure)
        out.append((record.record_id, stmt))
    return out


def _holds(gw: Gateway, record_ids: tuple[str, ...], erasures: int = 0) -> bool:
    """Whether ``gw`` holds the records and (at least) so many erasures."""
    held = all(gw.core.store.record_by_id(r) is not None for r in record_ids)
    return held and len(_erasures(gw)) >= erasures


def _named(gw: Gateway) -> set[str]:
    return {rid for _, e in _erasures(gw) for rid in e.record_ids}


def _disclosures(member: Member, gw: Gateway, record_id: str) -> int:
    """How many disclosures GetRecord serves with the record."""
    with member.channel(gw.port) as ch:
        got = exchange(ch).GetRecord(ex.GetRecordRequest(record_id=record_id), timeout=10)
    return len(got.entry.envelope.disclosures)


def _found(member: Member, gw: Gateway, uscc: str) -> list[tuple[str, int]]:
    with member.channel(gw.port) as ch:
        reply = exchange(ch).CheckSubjects(
            ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(Subject(uscc=uscc))]),
            timeout=10,
        )
    return [(s.listing_id, s.step) for s in reply.results[0].listings]


def _counts(gw: Gateway, month: ReportMonth) -> tuple[Any, Any]:
    """The monthly report's units and totals for ``month``, computed now."""
    reports = gw.compliance.reports
    document = reports.compute(month, None, reports.checkpoint())
    return document["units"], document["totals"]


def _metric(gw: Gateway, name: str, **labels: str) -> float | None:
    return gw.metrics.registry.get_sample_value(name, labels)


def _erased(gw: Gateway, records: int) -> bool:
    return _metric(gw, "alliance_erased_records_total", basis="retention_ended") == records


def _measure(amr: Member, listing_id: str, at: datetime) -> GovernmentMeasure:
    return GovernmentMeasure(
        issuer=amr.member_id,
        listing_id=listing_id,
        kind=GovernmentMeasureKind.SUMMONS,
        decision_ref="ZJ-AMR-2026-M1",
        effective_at=at,
        note="约谈法定代表人",
    )


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def test_records_are_erased_when_their_retention_ends(
    alliance: Alliance, database_url: str
) -> None:
    m = alliance.members
    amr, shop_a, ndrc = m["zj-amr"], m["shop-a"], m["ndrc"]
    clock = Clock(START)
    with gateway_at(alliance.config(database_url, **DAYS), clock, tuple(m.values())) as gw:
        subject = Subject(uscc=USCC[0], name=NAME, stores=(StoreRef(shop_a.member_id, "a-1"),))
        closed = send(amr, gw, listing(amr, subject=subject, listed_at=START))
        in_force = send(amr, gw, listing(amr, uscc=USCC[1], listed_at=START))
        applied = send(shop_a, gw, sanction(shop_a, closed, SanctionAction.APPLIED, START))
        measure = send(amr, gw, _measure(amr, closed, START))
        clock.set(CLOSED)
        corrected = send(amr, gw, step(amr, closed, S.CORRECTED, CLOSED))
        records = (closed, in_force, applied, measure, corrected)
        assert all(_disclosures(ndrc, gw, r) > 0 for r in records)
        assert _found(ndrc, gw, USCC[0]) == [(closed, S.CORRECTED)]
        months = (ReportMonth(2026, 6), ReportMonth(2026, 7))
        before = {month: _counts(gw, month) for month in months}

        # The last day of the retention (China Standard Time): nothing is erased yet.
        clock.set(utc(2026, 7, 10, 16) - timedelta(seconds=1))
        gw.run_retention()
        assert _erasures(gw) == []

        # The next day the listing, its step and the measure go; the confirmation is kept
        # 60 days, and the listing in force (older than 30 days too) stays.
        clock.set(utc(2026, 7, 10, 16))
        eventually(lambda: len(_erasures(gw)) == 3, "the gateway erases three kinds")
        erasures = _erasures(gw)
        assert _named(gw) == {closed, corrected, measure}
        kinds = [RecordKind.LISTING, RecordKind.STATUS_CHANGE, RecordKind.GOVERNMENT_MEASURE]
        for (_, erasure), kind in zip(erasures, kinds, strict=True):
            assert erasure.issuer == alliance.gateway_id
            assert erasure.basis is ErasureBasis.RETENTION_ENDED
            assert erasure.effective_at == retention_day(clock()) == utc(2026, 7, 10, 16)
            assert erasure.legal_basis == legal_basis(kind, 30)
            assert f"{kind.setting} = 30" in erasure.legal_basis
        for r in (closed, corrected, measure):
            assert _disclosures(ndrc, gw, r) == 0
        assert _disclosures(ndrc, gw, applied) > 0
        assert _disclosures(ndrc, gw, in_force) > 0
        assert _found(ndrc, gw, USCC[0]) == []
        assert _found(ndrc, gw, USCC[1]) == [(in_force, S.LISTED)]
        # Counted once each append committed (the ticker's round may still be finishing).
        eventually(partial(_erased, gw, 3), "three records counted as erased")
        assert _metric(gw, "alliance_erased_records_total", basis="decision") == 0
        for kind in RecordKind:
            assert _metric(gw, "alliance_retention_overdue_records", kind=kind.label) == 0

        # Sixty days after the closing, the confirmation.
        clock.set(utc(2026, 8, 9, 16))
        eventually(lambda: len(_erasures(gw)) == 4, "the confirmation is erased")
        (last_id, last) = _erasures(gw)[-1]
        assert last.record_ids == (applied,)
        assert last.legal_basis == legal_basis(RecordKind.SANCTION_CONFIRMATION, 60)
        assert _disclosures(ndrc, gw, applied) == 0
        eventually(partial(_erased, gw, 4), "the fourth counted")

        # The reports count what they counted: the fields they read are signed in the clear.
        assert {month: _counts(gw, month) for month in before} == before

        # Exactly once: more rounds, and an eraser that starts afresh (a restart, a
        # replica on the same database), sign nothing.
        size = gw.core.ledger.size
        gw.run_retention()
        gw.run_retention()
        again = RetentionEraser(
            gw.core.store,
            gw.core.ledger,
            gw.core.key,
            RetentionSettings(days={k: DAYS[k.setting] for k in RecordKind}),
            gateway_id=gw.config.member_id,
            origin=gw.config.log_origin,
        )
        assert again.run(clock()).appended == []
        assert gw.core.ledger.size == size and _erasures(gw)[-1][0] == last_id
        assert _disclosures(ndrc, gw, in_force) > 0


def test_batches_are_bounded_and_resume(alliance: Alliance, database_url: str) -> None:
    m = alliance.members
    amr, ndrc = m["zj-amr"], m["ndrc"]
    clock = Clock(START)
    config = alliance.config(
        database_url,
        **{k: 30 for k in DAYS},
        retention_max_records_per_erasure=2,
        retention_max_erasures_per_tick=1,
        # No ticker round in between: each round is the test's.
        checkpoint_interval_s=3600,
    )
    with gateway_at(config, clock, tuple(m.values())) as gw:
        listings = [send(amr, gw, listing(amr, uscc=u, listed_at=START)) for u in USCC]
        clock.set(CLOSED)
        steps = [send(amr, gw, step(amr, lid, S.REMOVED, CLOSED)) for lid in listings]
        clock.set(utc(2026, 7, 11))

        seen = []
        for _ in range(4):
            gw.run_retention()
            seen.append(
                (
                    len(_erasures(gw)),
                    _metric(gw, "alliance_retention_overdue_records", kind="listing"),
                    _metric(gw, "alliance_retention_overdue_records", kind="status_change"),
                    _metric(gw, "alliance_erased_records_total", basis="retention_ended"),
                )
            )
        # One erasure a round, two records at most; listings first, then their steps.
        assert seen == [(1, 1, 3, 2), (2, 0, 3, 3), (3, 0, 1, 5), (4, 0, 0, 6)]
        erasures = [e for _, e in _erasures(gw)]
        assert [e.record_ids for e in erasures] == [
            tuple(listings[:2]),
            tuple(listings[2:]),
            tuple(steps[:2]),
            tuple(steps[2:]),
        ]
        assert all(_disclosures(ndrc, gw, r) == 0 for r in listings + steps)
        size = gw.core.ledger.size
        gw.run_retention()
        assert gw.core.ledger.size == size


def test_retention_off_erases_nothing(alliance: Alliance, database_url: str) -> None:
    m = alliance.members
    amr, ndrc = m["zj-amr"], m["ndrc"]
    clock = Clock(START)
    config = alliance.config(database_url, retention_enabled=False, **DAYS)
    with gateway_at(config, clock, tuple(m.values())) as gw:
        closed = send(amr, gw, listing(amr, listed_at=START))
        clock.set(CLOSED)
        send(amr, gw, step(amr, closed, S.CORRECTED, CLOSED))
        clock.set(utc(2026, 9, 1))
        gw.run_retention()
        assert gw.retention is None and _erasures(gw) == []
        assert _disclosures(ndrc, gw, closed) > 0
        assert _metric(gw, "alliance_retention_overdue_records", kind="listing") is None
        # An erasure its issuer signs is counted all the same, by its basis.
        own = Erasure(
            issuer=amr.member_id,
            record_ids=(closed,),
            basis=ErasureBasis.PURPOSE_ACHIEVED,
            legal_basis="PIPL art. 47(1): corrected, publication ended",
            effective_at=clock(),
        )
        send(amr, gw, own)
        assert _disclosures(ndrc, gw, closed) == 0
        eventually(
            lambda: _metric(gw, "alliance_erased_records_total", basis="purpose_achieved") == 1,
            "the member's erasure counted",
        )
        assert _metric(gw, "alliance_erased_records_total", basis="retention_ended") == 0


# --- two trust domains ---------------------------------------------------------------


@pytest.fixture
def regions(tmp_path: Path, database_url: str) -> Iterator[tuple[Gateway, Gateway, Clock, Any]]:
    zj = Alliance(tmp_path / "zj", "zj.alliance.test", region="330100")
    gd = Alliance(tmp_path / "gd", "gd.alliance.test", region="440300")
    members = {
        "zj-amr": zj.member("authority", "zj-amr", region="330000"),
        "zj-monitor": zj.member("monitor", "zj-monitor", region="110000"),
        "gd-shop": gd.member("platform", "gd-shop"),
    }
    ports = {a.trust_domain: reserve_port() for a in (zj, gd)}
    clock = Clock(START)
    with ExitStack() as stack:
        urls = {"zj": f"sqlite:///{tmp_path / 'zj'}.db", "gd": f"sqlite:///{tmp_path / 'gd'}.db"}
        if not database_url.startswith("sqlite"):
            urls["zj"] = database_url
            urls["gd"] = stack.enter_context(pg_schema_url(pg_base_url() or ""))
        a, b = (
            stack.enter_context(
                gateway_at(
                    ours.config(
                        urls[name],
                        listen_address=f"127.0.0.1:{ports[ours.trust_domain]}",
                        federation_backoff_initial_s=0.1,
                        federation_backoff_max_s=0.5,
                        peers=[theirs.peer_entry(ports[theirs.trust_domain])],
                        **{k: 30 for k in DAYS},
                    ),
                    clock,
                    registered,
                )
            )
            for name, ours, theirs, registered in (
                ("zj", zj, gd, (members["zj-amr"], members["zj-monitor"])),
                ("gd", gd, zj, (members["gd-shop"],)),
            )
        )
        yield a, b, clock, members


def test_each_gateway_erases_its_own_trust_domains_records(
    regions: tuple[Gateway, Gateway, Clock, dict[str, Member]], caplog: pytest.LogCaptureFixture
) -> None:
    zj, gd, clock, m = regions
    amr, monitor, gd_shop = m["zj-amr"], m["zj-monitor"], m["gd-shop"]
    subject = Subject(uscc=USCC[0], stores=(StoreRef(gd_shop.member_id, "g-1"),))
    lid = send(amr, zj, listing(amr, subject=subject, listed_at=START))
    eventually(lambda: gd.core.store.record_by_id(lid) is not None, "GD holds the listing")
    applied = send(gd_shop, gd, sanction(gd_shop, lid, SanctionAction.APPLIED, START))
    clock.set(CLOSED)
    corrected = send(amr, zj, step(amr, lid, S.CORRECTED, CLOSED))
    held = (lid, applied, corrected)
    for gw in (zj, gd):
        eventually(partial(_holds, gw, held), f"{gw.config.member_id} holds every record")

    clock.set(utc(2026, 7, 11))
    # Zhejiang erases the listing and its step, Guangdong its platform's confirmation;
    # each erasure replicates and both gateways apply both.
    for gw in (zj, gd):
        eventually(partial(_holds, gw, held, erasures=3), "three erasures reach both")
    by_issuer: dict[str, set[str]] = {}
    for _, erasure in _erasures(zj):
        by_issuer.setdefault(erasure.issuer, set()).update(erasure.record_ids)
    assert by_issuer == {
        zj.config.member_id: {lid, corrected},
        gd.config.member_id: {applied},
    }
    assert {rid for rid, _ in _erasures(zj)} == {rid for rid, _ in _erasures(gd)}
    for gw in (zj, gd):
        for record_id in (lid, corrected, applied):
            record = gw.core.store.record_by_id(record_id)
            assert record is not None and record.disclosures == ()
    assert _found(monitor, zj, USCC[0]) == []
    # Each counts the records it erased, by its own erasures and by replicated ones.
    for gw in (zj, gd):
        eventually(partial(_erased, gw, 3), f"{gw.config.member_id} counted three records")
    # Neither tried to erase the other's records (the policy would have refused it).
    assert not [r for r in caplog.records if r.name == "gateway.ops.app" and r.exc_info]
