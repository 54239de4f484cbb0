"""Who read what: reads of records and subjects land in the access log, kept 3 years,
per member and day and per call, with subjects and records as keyed digests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gwtest import USCC, Alliance, audit, exchange, listing, running_gateway, submit
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gateway import codec
from gateway.core.crypto import load_signing_key
from gateway.core.statements import Subject
from gateway.ops.app import Core
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.access_log import DIGEST_INFO, RPC_CODES, read_digest
from gateway.storage import AccessEntry, AccessStore
from gateway.storage.models import AccessLogRow


def test_reads_are_logged_per_member_and_day_with_digests(
    tmp_path: Path, database_url: str
) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = a.member("authority", "zj-amr", region="330000")
    shop = a.member("platform", "shop-a")
    monitor = a.member("monitor", "ndrc", region="110000")
    with running_gateway(a.config(database_url), register=(amr, shop, monitor)) as gw:
        with amr.channel(gw.port) as ch:
            listed = submit(ch, amr.sign(listing(amr)))
        subjects = [Subject(uscc=USCC[0]), Subject(uscc=USCC[1])]
        with shop.channel(gw.port) as ch:
            for _ in range(3):  # each call is kept, with when and what it read
                exchange(ch).CheckSubjects(
                    ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(s) for s in subjects]),
                    timeout=10,
                )
            exchange(ch).GetRecord(ex.GetRecordRequest(record_id=listed.record_id), timeout=10)
        with monitor.channel(gw.port) as ch:
            list(audit(ch).GetEntries(au.GetEntriesRequest(start=0, end=2), timeout=10))
        gw.access_log.flush()
        store = AccessStore(gw.core.engine)
        days = {(d.rpc, d.calls, d.items) for d in store.days(shop.member_id)}
        assert days == {(RPC_CODES["CheckSubjects"], 3, 6), (RPC_CODES["GetRecord"], 1, 1)}
        key = load_signing_key(a.gw_dir / "signing-key.pem").derive_secret(DIGEST_INFO)
        expected = {
            read_digest(key, b"subject", f"uscc:{USCC[0]}"),
            read_digest(key, b"subject", f"uscc:{USCC[1]}"),
            read_digest(key, b"record", listed.record_id),
        }
        reads = store.reads(shop.member_id)
        assert [(r.rpc, len(r.digests)) for r in reads] == [
            (RPC_CODES["CheckSubjects"], 2),
            (RPC_CODES["CheckSubjects"], 2),
            (RPC_CODES["CheckSubjects"], 2),
            (RPC_CODES["GetRecord"], 1),
        ]
        assert {d for r in reads for d in r.digests} == expected
        assert [(d.rpc, d.calls, d.items) for d in store.days(monitor.member_id)] == [
            (RPC_CODES["GetEntries"], 1, 0)
        ]
        assert store.days(amr.member_id) == []  # writes are in the log itself


def test_prune_keeps_three_years(tmp_path: Path) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    with running_gateway(a.config(f"sqlite:///{tmp_path / 'gw.db'}")) as gw:
        now = datetime.now(UTC)
        store = AccessStore(gw.core.engine)
        store.append(
            [
                AccessEntry(
                    now - timedelta(days=3 * 366 + 1),
                    "spiffe://zj.alliance.test/platform/x",
                    RPC_CODES["GetRecord"],
                    (b"\x01" * 16,),
                ),
                AccessEntry(
                    now - timedelta(days=3 * 365),
                    "spiffe://zj.alliance.test/platform/y",
                    RPC_CODES["GetRecord"],
                    (b"\x02" * 16,),
                ),
            ]
        )
        assert gw.access_log.prune() == 2  # the old day row and its call
        assert [d.member_id for d in store.days()] == ["spiffe://zj.alliance.test/platform/y"]
        assert [r.member_id for r in store.reads()] == ["spiffe://zj.alliance.test/platform/y"]


def test_old_entries_are_converted_to_digests_at_start(tmp_path: Path, database_url: str) -> None:
    """Schema 0003 kept one JSON row per call with the subjects in clear; the gateway,
    which holds the digest key, converts them at start and empties the old table."""
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    config = a.config(database_url)
    core = Core(config)
    at = datetime(2026, 11, 30, 8, 0, 5, tzinfo=UTC)
    shop = "spiffe://zj.alliance.test/platform/shop-a"
    with Session(core.engine) as s, s.begin():
        s.execute(
            insert(AccessLogRow),
            [
                {
                    "at": at,
                    "member_id": shop,
                    "rpc": "CheckSubjects",
                    "detail": f'{{"subjects":["uscc:{USCC[0]}","uscc:{USCC[1]}"]}}',
                },
                {"at": at, "member_id": shop, "rpc": "GetRecord", "detail": '{"record_id":"ab"}'},
                {"at": at, "member_id": shop, "rpc": "ListListings", "detail": '{"filter":{}}'},
            ],
        )
    core.close()
    with running_gateway(config) as gw:
        with Session(gw.core.engine) as s:
            assert list(s.scalars(select(AccessLogRow))) == []
        store = AccessStore(gw.core.engine)
        key = load_signing_key(a.gw_dir / "signing-key.pem").derive_secret(DIGEST_INFO)
        reads = store.reads(shop)
        assert [(r.rpc, r.second, r.digests) for r in reads] == [
            (
                RPC_CODES["CheckSubjects"],
                8 * 3600 + 5,
                (
                    read_digest(key, b"subject", f"uscc:{USCC[0]}"),
                    read_digest(key, b"subject", f"uscc:{USCC[1]}"),
                ),
            ),
            (RPC_CODES["GetRecord"], 8 * 3600 + 5, (read_digest(key, b"record", "ab"),)),
        ]
        assert sorted((d.rpc, d.calls, d.items) for d in store.days(shop)) == [
            (RPC_CODES["CheckSubjects"], 1, 2),
            (RPC_CODES["GetRecord"], 1, 1),
            (RPC_CODES["ListListings"], 1, 0),
        ]
