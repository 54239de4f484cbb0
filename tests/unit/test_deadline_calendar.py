"""Default correction deadlines count calendar months in China Standard Time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.core.statements import CHINA_STANDARD_TIME, add_months

CST = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("listed", "months", "due"),
    [
        # Midnight in Beijing is the previous day in UTC: the month still counts in Beijing.
        (datetime(2026, 10, 1, tzinfo=CST), 3, datetime(2027, 1, 1, tzinfo=CST)),
        (datetime(2026, 11, 30, 23, 30, tzinfo=CST), 3, datetime(2027, 2, 28, 23, 30, tzinfo=CST)),
        (datetime(2023, 11, 30, tzinfo=CST), 3, datetime(2024, 2, 29, tzinfo=CST)),
        (datetime(2024, 2, 29, 12, tzinfo=CST), 12, datetime(2025, 2, 28, 12, tzinfo=CST)),
        (datetime(2026, 1, 31, tzinfo=CST), 1, datetime(2026, 2, 28, tzinfo=CST)),
        # 2026-03-31 20:00 UTC is already April 1st in Beijing.
        (datetime(2026, 3, 31, 20, tzinfo=UTC), 3, datetime(2026, 7, 1, 4, tzinfo=CST)),
    ],
)
def test_add_months_counts_in_china_standard_time(
    listed: datetime, months: int, due: datetime
) -> None:
    result = add_months(listed, months)
    assert result == due
    assert result.tzinfo is UTC


def test_the_zone_is_utc_plus_eight() -> None:
    assert CHINA_STANDARD_TIME.utcoffset(None) == timedelta(hours=8)
