"""Working days and the monthly report's due date, from the shipped calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gateway.core.workdays import (
    REPORT_TZ,
    ReportMonth,
    WorkCalendar,
    YearCalendar,
    parse_year_calendar,
)
from gateway.errors import ConfigError, RecordError
from gateway.ops.workcalendar import SHIPPED_CALENDARS, load_work_calendar


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    return load_work_calendar()


# The last working day strictly before the 15th of the following month, worked out by
# hand from the State Council's 2026 schedule (and 2025's for January 2026).
DUE_2026 = {
    "2025-12": date(2026, 1, 14),  # Wednesday
    "2026-01": date(2026, 2, 14),  # Saturday, a make-up working day before Spring Festival
    "2026-02": date(2026, 3, 13),  # Friday (14th is a Saturday)
    "2026-03": date(2026, 4, 14),  # Tuesday
    "2026-04": date(2026, 5, 14),  # Thursday
    "2026-05": date(2026, 6, 12),  # Friday (13th, 14th weekend)
    "2026-06": date(2026, 7, 14),  # Tuesday
    "2026-07": date(2026, 8, 14),  # Friday
    "2026-08": date(2026, 9, 14),  # Monday
    "2026-09": date(2026, 10, 14),  # Wednesday
    "2026-10": date(2026, 11, 13),  # Friday (14th is a Saturday)
    "2026-11": date(2026, 12, 14),  # Monday
}


@pytest.mark.parametrize(("month", "due"), sorted(DUE_2026.items()))
def test_due_dates_2026(calendar: WorkCalendar, month: str, due: date) -> None:
    m = ReportMonth.parse(month)
    assert calendar.due_date(m) == due
    assert calendar.is_workday(due)
    # Nothing between the due date and the 15th is a working day.
    day = due + timedelta(days=1)
    while day.day < 15:
        assert not calendar.is_workday(day)
        day += timedelta(days=1)
    assert calendar.due_by(m) == datetime(
        due.year, due.month, due.day, tzinfo=REPORT_TZ
    ) + timedelta(days=1)


def test_missing_year_is_an_error_not_a_guess(calendar: WorkCalendar) -> None:
    assert 2027 not in calendar.years
    with pytest.raises(ConfigError, match="no holiday schedule for 2027") as err:
        calendar.due_date(ReportMonth(2026, 12))
    assert "cn-2027.toml" in err.value.advice
    with pytest.raises(ConfigError):
        calendar.is_workday(date(2024, 6, 3))


def test_holidays_and_makeup_days(calendar: WorkCalendar) -> None:
    assert not calendar.is_workday(date(2026, 10, 1))  # National Day, a Thursday
    assert not calendar.is_workday(date(2026, 2, 16))  # Spring Festival, a Monday
    assert calendar.is_workday(date(2026, 10, 10))  # make-up Saturday
    assert calendar.is_workday(date(2026, 9, 20))  # make-up Sunday
    assert not calendar.is_workday(date(2026, 10, 11))  # an ordinary Sunday
    assert calendar.is_workday(date(2026, 10, 12))  # an ordinary Monday
    assert calendar.last_workday_before(date(2026, 10, 8)) == date(2026, 9, 30)


def test_next_due(calendar: WorkCalendar) -> None:
    beijing = REPORT_TZ
    # Before October's due date is over, October's report is the next one due.
    assert calendar.next_due(datetime(2026, 11, 13, 23, 59, tzinfo=beijing)) == ReportMonth(
        2026, 10
    )
    assert calendar.next_due(datetime(2026, 11, 14, 0, 0, tzinfo=beijing)) == ReportMonth(2026, 11)
    assert calendar.next_due(datetime(2026, 11, 1, 0, 0, tzinfo=beijing)) == ReportMonth(2026, 10)
    # September's report is due on 14 October in Beijing, which ends at 16:00 UTC.
    assert calendar.next_due(datetime(2026, 10, 14, 15, 59, tzinfo=UTC)) == ReportMonth(2026, 9)
    assert calendar.next_due(datetime(2026, 10, 14, 16, 0, tzinfo=UTC)) == ReportMonth(2026, 10)


def test_report_month_period_in_shanghai() -> None:
    m = ReportMonth.parse("2026-10")
    assert m.start == datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
    assert m.end == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert m.contains(datetime(2026, 9, 30, 16, 0, tzinfo=UTC))
    assert not m.contains(datetime(2026, 10, 31, 16, 0, tzinfo=UTC))
    assert str(ReportMonth(2026, 12).next()) == "2027-01"
    assert str(ReportMonth(2026, 1).previous()) == "2025-12"
    assert ReportMonth.containing(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == ReportMonth(2027, 1)


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "26-10", "2026/10", "2026-1", "\uff12\uff10\uff12\uff16-10"]
)
def test_bad_months(text: str) -> None:
    with pytest.raises(RecordError):
        ReportMonth.parse(text)


def test_shipped_calendars_parse_and_name_their_year() -> None:
    files = sorted(SHIPPED_CALENDARS.glob("cn-*.toml"))
    assert [f.name for f in files] == ["cn-2025.toml", "cn-2026.toml"]
    for f in files:
        year = parse_year_calendar(f.read_text(encoding="utf-8"), name=f.name)
        assert f.name == f"cn-{year.year}.toml"
        assert year.source


def test_calendar_files_are_checked(tmp_path: Path) -> None:
    good = "year = 2030\n[[holidays]]\nname='x'\nfirst=2030-01-01\nlast=2030-01-01\n"
    assert not parse_year_calendar(good).is_workday(date(2030, 1, 1))
    bad = {
        "year = 2030\n[[makeup_workdays]]\ndate = 2030-01-02\n": "not a Saturday or Sunday",
        "year = 2030\n[[holidays]]\nfirst=2031-01-01\nlast=2031-01-01\n": "another year",
        "year = 2030\n[[holidays]]\nfirst='2030-01-01'\nlast=2030-01-01\n": "TOML date",
        "year = 2030\n[[holidays]]\nfirst=2030-01-03\nlast=2030-01-01\n": "before first",
        "year = '2030'\n": "integer",
        "year = 2030\nholiday = 1\n": "unknown setting",
        "year = 2030\n[[makeup_workdays]]\ndate = 2030-01-05\n[[holidays]]\nfirst=2030-01-05\n"
        "last=2030-01-05\n": "both a holiday and a workday",
        "year = [": "not valid TOML",
    }
    for text, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            parse_year_calendar(text)
    with pytest.raises(ConfigError, match="defined twice"):
        WorkCalendar([YearCalendar(2030), YearCalendar(2030)])
    (tmp_path / "a.toml").write_text(good)
    assert load_work_calendar(tmp_path).years == (2030,)
    with pytest.raises(ConfigError, match="is not a folder"):
        load_work_calendar(tmp_path / "a.toml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.toml"):
        load_work_calendar(tmp_path / "empty")
