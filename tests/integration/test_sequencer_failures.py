"""When an append fails (``gateway/service/sequencer.py``): every record of the failed
batch is answered with the error, nothing of it is stored, and the sequencer goes on
appending once the cause is gone. The database refuses for real here (a trigger)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from gwtest import USCC, Alliance, exchange, listing, running_gateway, submit

from gateway import codec
from gateway.errors import StorageError
from gateway.ops.app import Core
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.ledger import Accepted
from gateway.service.sequencer import Sequencer


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    return a


_SQLITE_FAULT = (
    "CREATE TRIGGER disk_full BEFORE INSERT ON records "
    "BEGIN SELECT RAISE(ABORT, 'simulated: disk full'); END",
)
_POSTGRESQL_FAULT = (
    "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'simulated: disk full'; END $$",
    "CREATE TRIGGER disk_full BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION disk_full()",
)


def _execute(database_url: str, *statements: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def _fault(database_url: str) -> None:
    """From now on the database refuses every new log record."""
    sqlite = database_url.startswith("sqlite")
    _execute(database_url, *(_SQLITE_FAULT if sqlite else _POSTGRESQL_FAULT))


def _repair(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        _execute(database_url, "DROP TRIGGER disk_full")
    else:
        _execute(database_url, "DROP TRIGGER disk_full ON records", "DROP FUNCTION disk_full()")


def test_a_failed_append_is_unavailable_and_the_gateway_recovers(
    alliance: Alliance, database_url: str
) -> None:
    amr = alliance.members["zj-amr"]
    config = alliance.config(database_url)
    with running_gateway(config, register=(amr,)) as gw, amr.channel(gw.port) as ch:
        size = gw.core.store.log_size()
        first = amr.sign(listing(amr, uscc=USCC[0]))
        _fault(database_url)
        with pytest.raises(grpc.RpcError) as refused:
            submit(ch, first)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "database write failed" in (refused.value.details() or "")
        assert gw.core.store.log_size() == size and gw.core.ledger.size == size

        _repair(database_url)
        again = submit(ch, first)  # the retry the UNAVAILABLE invites
        assert (again.log_index, again.duplicate) == (size, False)
        later = submit(ch, amr.sign(listing(amr, uscc=USCC[1])))
        assert later.log_index == size + 1
        gw._tick()  # sign a checkpoint over what is stored now
        gw.core.ledger.verify_against_checkpoint()


def test_a_failed_batch_answers_each_record_unavailable_and_stores_none(
    alliance: Alliance, database_url: str
) -> None:
    amr = alliance.members["zj-amr"]
    with running_gateway(alliance.config(database_url), register=(amr,)) as gw:
        size = gw.core.store.log_size()
        envs = [amr.sign(listing(amr, uscc=u)) for u in USCC]
        batch = ex.SubmitBatch(
            records=[ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs]
        )
        _fault(database_url)
        with amr.channel(gw.port) as ch:
            (answer,) = exchange(ch).SubmitBatches(iter([batch]), timeout=30)
        unavailable = grpc.StatusCode.UNAVAILABLE.value[0]
        assert [r.code for r in answer.results] == [unavailable] * len(envs)
        assert [r.record_id for r in answer.results] == [e.record_id for e in envs]
        assert gw.core.store.log_size() == size and gw.core.ledger.size == size

        _repair(database_url)
        with amr.channel(gw.port) as ch:
            (again,) = exchange(ch).SubmitBatches(iter([batch]), timeout=30)
        assert [(r.code, r.log_index) for r in again.results] == [
            (0, size + i) for i in range(len(envs))
        ]


@pytest.fixture
def core(alliance: Alliance, database_url: str) -> Iterator[Core]:
    core = Core(alliance.config(database_url))
    try:
        yield core
    finally:
        core.close()


def test_an_unexpected_error_fails_its_batch_only(
    alliance: Alliance, core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in an append (here: a record handed in without its envelope) is logged
    with its traceback and answered as a generic StorageError; the sequencer lives on."""
    amr = alliance.members["zj-amr"]
    env = amr.sign(listing(amr))
    statement = listing(amr)
    good = Accepted(env, env.record_id, amr.member_id, statement, core.config.log_origin)
    broken = Accepted(None, "0" * 64, amr.member_id, statement, core.config.log_origin)  # type: ignore[arg-type]
    sequencer = Sequencer(core.ledger, max_batch=8, max_wait_ms=1.0)
    sequencer.start()
    caplog.set_level(logging.ERROR, logger="gateway.service.sequencer")
    try:
        size = core.store.log_size()
        with pytest.raises(StorageError, match="append failed: AttributeError"):
            sequencer.submit(broken).result(timeout=30)
        assert any(r.getMessage() == "append failed" and r.exc_info for r in caplog.records)
        assert core.store.log_size() == size
        appended = sequencer.submit(good).result(timeout=30)
        assert (appended.log_index, appended.duplicate) == (size, False)
    finally:
        sequencer.stop()
    with pytest.raises(StorageError, match="shutting down"):
        sequencer.submit(good).result(timeout=1)
