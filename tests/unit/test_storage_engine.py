"""Engine creation refuses what the storage layer cannot work with, with advice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StorageError
from gateway.storage import make_engine
from gateway.storage.db import SQLITE_MINIMUM, check_sqlite_version


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
