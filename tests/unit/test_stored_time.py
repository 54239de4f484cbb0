"""The SQLite write path formats times itself (gateway.storage.models.sqlite_stored_time):
it must store exactly what a UtcDateTime column stores through SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from gateway.storage.models import UtcDateTime, sqlite_stored_time

_DIALECT = sqlite.dialect()
_SQLALCHEMY = UtcDateTime().dialect_impl(_DIALECT).bind_processor(_DIALECT)

_TIMES = [
    datetime(2026, 12, 7, 7, 10, 31, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 12, 7, 7, 10, 31, 5, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2027, 1, 1, 7, 30, tzinfo=timezone(timedelta(hours=8))),  # Beijing time
    datetime(2026, 3, 1, 0, 0, tzinfo=timezone(timedelta(hours=-5))),  # crosses a day
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a year of three digits
]


@pytest.mark.parametrize("value", _TIMES, ids=str)
def test_a_time_is_stored_as_sqlalchemy_stores_it(value: datetime) -> None:
    assert _SQLALCHEMY is not None
    assert sqlite_stored_time(value) == _SQLALCHEMY(value)


def test_none_stays_none() -> None:
    assert sqlite_stored_time(None) is None


@pytest.mark.parametrize("value", [datetime(2026, 12, 7, 7, 10), "2026-12-07 07:10:00"])
def test_a_naive_or_foreign_value_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_stored_time(value)
