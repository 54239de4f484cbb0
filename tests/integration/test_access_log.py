"""Who read what: reads of records and subjects land in the access log, kept 3 years."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gwtest import USCC, Alliance, audit, exchange, listing, running_gateway, submit

from gateway import codec
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex


def test_reads_are_logged_with_member_rpc_and_subjects(tmp_path: Path, database_url: str) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = a.member("authority", "zj-amr", region="330000")
    shop = a.member("platform", "shop-a")
    monitor = a.member("monitor", "ndrc", region="110000")
    with running_gateway(a.config(database_url), register=(amr, shop, monitor)) as gw:
        with amr.channel(gw.port) as ch:
            listed = submit(ch, amr.sign(listing(amr)))
        subjects = [listing(amr).subject, listing(amr, uscc=USCC[1]).subject]
        with shop.channel(gw.port) as ch:
            exchange(ch).CheckSubjects(
                ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(s) for s in subjects]),
                timeout=10,
            )
            exchange(ch).GetRecord(ex.GetRecordRequest(record_id=listed.record_id), timeout=10)
        with monitor.channel(gw.port) as ch:
            list(audit(ch).GetEntries(au.GetEntriesRequest(start=0, end=2), timeout=10))
        gw.access_log.flush()
        shop_reads = gw.core.store.access_log(shop.member_id)
        assert [(rpc, json.loads(detail)) for _, _, rpc, detail in shop_reads] == [
            ("CheckSubjects", {"subjects": [f"uscc:{USCC[0]}", f"uscc:{USCC[1]}"]}),
            ("GetRecord", {"record_id": listed.record_id}),
        ]
        monitor_reads = gw.core.store.access_log(monitor.member_id)
        assert [(rpc, json.loads(d)) for _, _, rpc, d in monitor_reads] == [
            ("GetEntries", {"start": 0, "end": 2})
        ]
        assert gw.core.store.access_log(amr.member_id) == []  # writes are in the log itself


def test_prune_keeps_three_years(tmp_path: Path) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    with running_gateway(a.config(f"sqlite:///{tmp_path / 'gw.db'}")) as gw:
        now = datetime.now(UTC)
        store = gw.core.store
        store.log_access(
            [
                (
                    now - timedelta(days=3 * 366 + 1),
                    "spiffe://zj.alliance.test/platform/x",
                    "GetRecord",
                    "{}",
                ),
                (
                    now - timedelta(days=3 * 365),
                    "spiffe://zj.alliance.test/platform/y",
                    "GetRecord",
                    "{}",
                ),
            ]
        )
        assert gw.access_log.prune() == 1
        assert [m for _, m, _, _ in store.access_log()] == ["spiffe://zj.alliance.test/platform/y"]
