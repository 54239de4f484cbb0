"""Hardening part 1, item 4: the access log must not fill the disk.

Each 10,000-subject CheckSubjects wrote ~260 KB of JSON with the subjects in clear,
and nothing bounded how much a member could read. Now the access log keeps per call
the keyed digests of the subjects or records read (never the subjects), 16 bytes each,
and counts other reads per member and day; a member's reads are capped by a daily
quota (RESOURCE_EXHAUSTED with the wait until midnight UTC), so the worst-case growth
per member per day is the quota times the bytes of a one-subject call's row
(docs/OPERATIONS.md, "Access log").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from availability_support import Code, code_of
from gwtest import Alliance, Member, audit, exchange, running_gateway
from sqlalchemy import text

from bench._data import uscc
from gateway import codec
from gateway.core.statements import Subject
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex

QUOTA = 5_000
BATCH = 1_000
# Bytes one subject read adds at most (docs/OPERATIONS.md, "Access log"), per backend,
# and what the per-day rows and page granularity add on top, once per member and day.
ITEM_BYTES = {"sqlite": 64, "postgresql": 128}
FIXED_BYTES = 96 * 1024
_TABLES = ("access_reads", "access_days", "access_members")


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("platform", "reader")
    a.member("platform", "calm")
    return a


@pytest.fixture
def gw(alliance: Alliance, database_url: str) -> Iterator[Gateway]:
    config = alliance.config(database_url, access_log_daily_quota=QUOTA)
    with running_gateway(config, register=tuple(alliance.members.values())) as g:
        yield g


def _check(channel: grpc.Channel, first: int, n: int) -> ex.CheckSubjectsResponse:
    subjects = [
        codec.subject_to_pb(Subject(uscc=uscc(first + i, region="110000"))) for i in range(n)
    ]
    response: ex.CheckSubjectsResponse = exchange(channel).CheckSubjects(
        ex.CheckSubjectsRequest(subjects=subjects), timeout=30
    )
    return response


def _check_code(channel: grpc.Channel, first: int) -> Code:
    return code_of(lambda: _check(channel, first, BATCH))


def _access_bytes(gw: Gateway) -> int:
    """Bytes the access-log tables (and their indexes) take in the database."""
    with gw.core.engine.connect() as conn:
        if gw.core.engine.dialect.name == "sqlite":
            names = [
                r[0]
                for r in conn.execute(
                    text("SELECT name FROM sqlite_master WHERE tbl_name IN (:a, :b, :c)"),
                    dict(zip("abc", _TABLES, strict=True)),
                )
            ]
            marks = ", ".join(f":n{i}" for i in range(len(names)))
            total = conn.execute(
                text(f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({marks})"),
                {f"n{i}": n for i, n in enumerate(names)},
            ).scalar()
        else:
            total = sum(
                conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar() or 0
                for t in _TABLES
            )
    return int(total or 0)


def test_a_member_past_its_daily_quota_is_refused_and_others_are_not(
    gw: Gateway, alliance: Alliance
) -> None:
    reader, calm = alliance.members["reader"], alliance.members["calm"]
    with reader.channel(gw.port) as ch, calm.channel(gw.port) as cch:
        for i in range(QUOTA // BATCH):
            _check(ch, i * BATCH, BATCH)
        with pytest.raises(grpc.RpcError) as refused:
            _check(ch, QUOTA, 1)
        assert refused.value.code() is Code.RESOURCE_EXHAUSTED
        assert "retry in" in (refused.value.details() or "")
        pushback = [
            int(m.value)
            for m in refused.value.trailing_metadata() or ()
            if m.key == "grpc-retry-pushback-ms"
        ]
        to_midnight_ms = (86_400 - time.time() % 86_400) * 1000
        assert len(pushback) == 1
        assert abs(pushback[0] - to_midnight_ms) < 60_000
        # GetRecord counts against the same quota.
        record = ex.GetRecordRequest(record_id="00" * 32)
        assert code_of(lambda: exchange(ch).GetRecord(record, timeout=5)) is Code.RESOURCE_EXHAUSTED
        assert len(_check(cch, 0, BATCH).results) == BATCH  # another member is served


def test_worst_case_growth_per_member_and_day_is_bounded(
    alliance: Alliance, database_url: str
) -> None:
    """The worst case is a member spending its whole quota one subject a call (a row
    each); half of it that way, half in one batch, then reads past it and every other
    read many times."""
    reader: Member = alliance.members["reader"]
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    quota = 2 * BATCH
    config = alliance.config(database_url, access_log_daily_quota=quota)
    with running_gateway(config, register=tuple(alliance.members.values())) as gw:
        gw.access_log.flush()
        before = _access_bytes(gw)
        with reader.channel(gw.port) as ch:
            for i in range(BATCH):
                _check(ch, i, 1)
            _check(ch, BATCH, BATCH)
            refused = [_check_code(ch, quota + i * BATCH) for i in range(3)]
            refused.append(code_of(lambda: _check(ch, 3 * quota, 1)))
            for _ in range(50):
                exchange(ch).ListListings(ex.ListListingsRequest(page_size=10), timeout=5)
            for _ in range(20):
                list(audit(ch).GetEntries(au.GetEntriesRequest(start=0, end=1), timeout=5))
        gw.access_log.flush()
        grown = _access_bytes(gw) - before
    assert refused == [Code.RESOURCE_EXHAUSTED] * 4
    bound = quota * ITEM_BYTES[backend] + FIXED_BYTES
    print(f"access log growth on {backend}: {grown} bytes for {quota} subjects")
    assert grown <= bound, f"{grown} bytes for {quota} subjects (bound {bound})"


def test_subjects_never_reach_the_database_in_clear(alliance: Alliance, tmp_path: Path) -> None:
    path = tmp_path / "clear.db"
    config = alliance.config(f"sqlite:///{path}")
    reader = alliance.members["reader"]
    with running_gateway(config, register=(reader,)) as gw:
        with reader.channel(gw.port) as ch:
            _check(ch, 900_000, 100)
        gw.access_log.flush()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("clear.db")]
    raw = b"".join(p.read_bytes() for p in files)
    for i in range(100):
        assert uscc(900_000 + i, region="110000").encode() not in raw
