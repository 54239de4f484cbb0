"""Working days in mainland China and the monthly report's due date.

The governing notice (section VI) has every provincial working group report the
previous month "by the working day before the 15th": the due date is the **last
working day strictly before the 15th** of the following month. Working days follow the
State Council's yearly holiday schedule, which moves days: a holiday can fall on a
weekday, and a weekend day can be a make-up working day (调休). The schedule is
published each November for the next year, so it cannot be computed: it is data, one
TOML file per year (``gateway/ops/calendars/``), and a year without a file is an error,
never a guess.

Periods are calendar months in Asia/Shanghai.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from gateway.errors import ConfigError, RecordError

__all__ = [
    "REPORT_DAY",
    "REPORT_TZ",
    "ReportMonth",
    "WorkCalendar",
    "YearCalendar",
    "parse_year_calendar",
]

REPORT_TZ = ZoneInfo("Asia/Shanghai")
# Reports are due on the last working day strictly before this day of the next month.
REPORT_DAY = 15
_SATURDAY = 5


@dataclass(frozen=True, slots=True, order=True)
class ReportMonth:
    """A calendar month in Asia/Shanghai, the reporting period."""

    year: int
    month: int

    def __post_init__(self) -> None:
        year = self.year  # datetime's years: so 9999-12 has no next month
        if isinstance(year, bool) or not isinstance(year, int) or not MINYEAR <= year <= MAXYEAR:
            raise RecordError(f"month: year {year!r} is not valid")
        if isinstance(self.month, bool) or not isinstance(self.month, int):
            raise RecordError(f"month: {self.month!r} is not a month number")
        if not 1 <= self.month <= 12:
            raise RecordError(f"month: {self.month} is not 1 to 12")

    @classmethod
    def parse(cls, text: str) -> ReportMonth:
        """``"2026-10"``."""
        year, sep, month = text.strip().partition("-")
        if (
            not sep
            or len(year) != 4
            or len(month) != 2
            or not (year.isascii() and year.isdigit() and month.isascii() and month.isdigit())
        ):
            raise RecordError(f"month: {text!r} must be YYYY-MM")
        return cls(int(year), int(month))

    @classmethod
    def containing(cls, instant: datetime) -> ReportMonth:
        """The month (in Asia/Shanghai) that contains an aware instant."""
        if instant.tzinfo is None:
            raise RecordError("instant: must be timezone-aware")
        local = instant.astimezone(REPORT_TZ)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> ReportMonth:
        return ReportMonth(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> ReportMonth:
        return ReportMonth(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def start(self) -> datetime:
        """The first instant of the month in Asia/Shanghai (aware)."""
        return datetime(self.year, self.month, 1, tzinfo=REPORT_TZ)

    @property
    def end(self) -> datetime:
        """The first instant of the following month: the period is ``[start, end)``."""
        return self.next().start

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


@dataclass(frozen=True, slots=True)
class YearCalendar:
    """One year's schedule: days off on weekdays and make-up working days on weekends.

    ``holidays`` may also list the weekend days inside a break (they are days off
    anyway); ``workdays`` may only hold Saturdays and Sundays.
    """

    year: int
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    source: str = ""

    def __post_init__(self) -> None:
        for d in self.holidays | self.workdays:
            if d.year != self.year:
                raise ConfigError(f"calendar {self.year}: {d.isoformat()} is in another year")
        for d in self.workdays:
            if d.weekday() < _SATURDAY:
                raise ConfigError(
                    f"calendar {self.year}: make-up working day {d.isoformat()} is not a "
                    f"Saturday or Sunday"
                )
        both = self.holidays & self.workdays
        if both:
            first = min(both).isoformat()
            raise ConfigError(f"calendar {self.year}: {first} is both a holiday and a workday")

    def is_workday(self, d: date) -> bool:
        if d in self.workdays:
            return True
        return d.weekday() < _SATURDAY and d not in self.holidays


class WorkCalendar:
    """Working days over the years it has schedules for; other years raise."""

    def __init__(self, years: Iterable[YearCalendar]) -> None:
        table: dict[int, YearCalendar] = {}
        for y in years:
            if y.year in table:
                raise ConfigError(f"calendar: year {y.year} is defined twice")
            table[y.year] = y
        self._years: Mapping[int, YearCalendar] = MappingProxyType(table)

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(sorted(self._years))

    def year(self, year: int) -> YearCalendar:
        found = self._years.get(year)
        if found is None:
            have = ", ".join(str(y) for y in self.years) or "none"
            raise ConfigError(
                f"calendar: no holiday schedule for {year} (have: {have})",
                advice=f"add the State Council's {year} schedule as cn-{year}.toml to the "
                "calendar folder (docs/OPERATIONS.md, 'Calendars')",
            )
        return found

    def is_workday(self, d: date) -> bool:
        return self.year(d.year).is_workday(d)

    def last_workday_before(self, d: date) -> date:
        """The last working day strictly before ``d``."""
        day = d - timedelta(days=1)
        while not self.is_workday(day):
            day -= timedelta(days=1)
        return day

    def add_workdays(self, start: datetime, n: int) -> datetime:
        """The instant ``n`` working days after ``start`` end: 00:00 Asia/Shanghai after
        the ``n``-th working day following ``start``'s date (its own day not counted)."""
        day = start.astimezone(REPORT_TZ).date()
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            counted += self.is_workday(day)
        end = day + timedelta(days=1)
        return datetime(end.year, end.month, end.day, tzinfo=REPORT_TZ)

    def due_date(self, month: ReportMonth) -> date:
        """When the report of ``month`` is due: the last working day before the 15th of
        the following month."""
        following = month.next()
        return self.last_workday_before(date(following.year, following.month, REPORT_DAY))

    def due_by(self, month: ReportMonth) -> datetime:
        """The instant the report of ``month`` becomes late (00:00 after the due date)."""
        d = self.due_date(month) + timedelta(days=1)
        return datetime(d.year, d.month, d.day, tzinfo=REPORT_TZ)

    def next_due(self, now: datetime) -> ReportMonth:
        """The month whose report is the next one due at ``now``.

        That is last month's report until its due date has passed, then this month's.
        """
        current = ReportMonth.containing(now)
        previous = current.previous()
        return previous if now < self.due_by(previous) else current


def parse_year_calendar(text: str, *, name: str = "calendar") -> YearCalendar:
    """Parse one year's schedule (TOML)::

    year = 2026
    source = "State Council General Office, 2026 holiday schedule"
    [[holidays]]
    name = "Spring Festival"
    first = 2026-02-15
    last = 2026-02-23
    [[makeup_workdays]]
    date = 2026-02-14
    for = "Spring Festival"
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: not valid TOML: {e}") from e
    unknown = set(raw) - {"year", "source", "holidays", "makeup_workdays"}
    if unknown:
        raise ConfigError(f"{name}: unknown setting(s) {', '.join(sorted(unknown))}")
    year = raw.get("year")
    if isinstance(year, bool) or not isinstance(year, int):
        raise ConfigError(f"{name}: year must be an integer")
    holidays: set[date] = set()
    for i, h in enumerate(_tables(raw.get("holidays", []), f"{name}: holidays")):
        first, last = (
            _date(h.get("first"), f"{name}: holidays[{i}].first"),
            _date(h.get("last"), f"{name}: holidays[{i}].last"),
        )
        if last < first:
            raise ConfigError(f"{name}: holidays[{i}]: last is before first")
        if not isinstance(h.get("name", ""), str) or set(h) - {"name", "first", "last"}:
            raise ConfigError(f"{name}: holidays[{i}]: only name, first and last are allowed")
        holidays.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    workdays: set[date] = set()
    for i, w in enumerate(_tables(raw.get("makeup_workdays", []), f"{name}: makeup_workdays")):
        if set(w) - {"date", "for"}:
            raise ConfigError(f"{name}: makeup_workdays[{i}]: only date and for are allowed")
        workdays.add(_date(w.get("date"), f"{name}: makeup_workdays[{i}].date"))
    source = raw.get("source", "")
    if not isinstance(source, str):
        raise ConfigError(f"{name}: source must be a string")
    return YearCalendar(year, frozenset(holidays), frozenset(workdays), source)


def _tables(value: object, where: str) -> list[dict[str, object]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: must be an array of tables ([[...]])")
    return value


def _date(value: object, where: str) -> date:
    # TOML local dates parse to datetime.date; a datetime is a date too, refuse it.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ConfigError(f"{where}: must be a TOML date (YYYY-MM-DD, unquoted)")
    return value
