"""Engine creation refuses what the storage layer cannot work with, with advice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event, make_url

from gateway.errors import StorageError
from gateway.storage import make_engine
from gateway.storage.base import autocommit
from gateway.storage.db import SQLITE_MINIMUM, check_sqlite_version, sqlite_file


def test_a_sqlite_library_too_old_for_the_queries_is_refused_with_advice() -> None:
    with pytest.raises(
        StorageError, match=r"SQLite 3\.37\.2 is too old: .* 3\.38\.0 or newer"
    ) as e:
        check_sqlite_version((3, 37, 2))
    assert "PostgreSQL" in e.value.advice


def test_the_minimum_and_this_python_s_sqlite_are_accepted(tmp_path: Path) -> None:
    check_sqlite_version(SQLITE_MINIMUM)
    assert sqlite3.sqlite_version_info >= SQLITE_MINIMUM
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with engine.connect() as conn:
        # The batched look-up's building block works on this library.
        rows = conn.exec_driver_sql('SELECT value FROM json_each(\'["a","b"]\')').all()
    engine.dispose()
    assert [r[0] for r in rows] == ["a", "b"]


def test_an_unusable_database_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="database_url: cannot use"):
        make_engine("nosuchdialect://x")


def test_a_file_database_keeps_a_connection_for_each_concurrent_reader(tmp_path: Path) -> None:
    """Twelve readers at once (RPC workers of a busy gateway) open twelve connections
    once; past SQLAlchemy's default pool of five, each extra one would be opened and
    closed again on every use, paying the pragmas and SQLite's schema parse."""
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    opened: list[object] = []
    event.listen(engine, "connect", lambda dbapi, record: opened.append(dbapi))

    def read_together() -> None:
        held = [engine.connect() for _ in range(12)]
        for conn in held:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            conn.close()

    read_together()
    assert len(opened) == 12
    read_together()
    engine.dispose()
    assert len(opened) == 12


def test_sqlite_reads_run_outside_a_transaction_and_see_each_commit(tmp_path: Path) -> None:
    """``autocommit`` sets no isolation level on SQLite (its driver begins only before
    a write): a reader holding its connection sees a commit made meanwhile."""
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with autocommit(engine) as reader:
        assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        with engine.begin() as writer:
            writer.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
        dbapi = reader.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection)
        assert not dbapi.in_transaction
    engine.dispose()


def test_an_in_memory_database_still_opens() -> None:
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "in_a_file"),
    [
        ("sqlite:////var/lib/alliance/gateway.db", True),
        ("sqlite:///gateway.db", True),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("sqlite:///file:shared?mode=memory&cache=shared&uri=true", False),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/test", False),
    ],
)
def test_only_a_sqlite_file_gets_a_wal_a_file_mode_and_kept_connections(
    url: str, in_a_file: bool
) -> None:
    assert sqlite_file(make_url(url)) is in_a_file
