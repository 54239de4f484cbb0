"""Holiday calendars as signed records: reading the operator's file, and which record
decides a year.

The State Council publishes each year's holiday schedule in November; the gateway
ships the years it knows (``gateway/ops/calendars``), and the operator imports a new
one with ``alliance-gateway calendar import FILE``. The file becomes a
``HolidayCalendar`` statement (every date of the year with its kind), signed by the
gateway, appended to its log and replicated to its peers like member records.

**Which calendar decides a year.** The schedule is national: every alliance works by
the same State Council notice, and every gateway must compute the same report due
dates. So, for each year, the calendar record with the newest ``issued_at`` wins among
all the calendars in the log, whichever configured gateway signed them (ties: the
greater record id), and it replaces the shipped schedule of that year. Only a
configured gateway can have signed one (``gateway.core.policy``). The result depends
only on the set of records, never on the order they arrived in.

Two file formats (docs/OPERATIONS.md, "Calendars"):

* **CSV, every date**: a header ``date,kind`` (further columns, e.g. ``name``, are
  ignored), then one row per date of the year, each exactly once, in any order. Kinds:
  ``workday``/``工作日``, ``weekend``/``休息日``, ``holiday``/``节假日``,
  ``makeup_workday``/``调休上班``. Lines starting with ``#`` are comments.
* **TOML, the shipped format**: ``year``, ``source``, ``[[holidays]]`` ranges and
  ``[[makeup_workdays]]`` (``gateway.core.workdays.parse_year_calendar``); the days not
  named are working days Monday to Friday and weekend days otherwise.

A refusal names the bad date (and the line of a CSV file).
"""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from gateway.core.statements import DayKind, HolidayCalendar
from gateway.core.workdays import WorkCalendar, YearCalendar, parse_year_calendar
from gateway.errors import ConfigError

__all__ = [
    "KIND_NAMES",
    "WARN_DAYS",
    "CalendarFile",
    "days_of",
    "merge_calendars",
    "missing_years",
    "newest_per_year",
    "parse_calendar_file",
    "year_calendar",
]

_SATURDAY = 5
_MAX_FILE_BYTES = 256 * 1024

# The kind names a CSV file may use (English as in the protocol, and Chinese).
KIND_NAMES: Mapping[str, DayKind] = {
    "workday": DayKind.WORKDAY,
    "weekend": DayKind.WEEKEND,
    "holiday": DayKind.HOLIDAY,
    "makeup_workday": DayKind.MAKEUP_WORKDAY,
    "工作日": DayKind.WORKDAY,
    "休息日": DayKind.WEEKEND,
    "节假日": DayKind.HOLIDAY,
    "调休上班": DayKind.MAKEUP_WORKDAY,
}


@dataclass(frozen=True, slots=True)
class CalendarFile:
    """A year's calendar as read from a file, every date accounted for."""

    year: int
    days: tuple[DayKind, ...]
    source: str


def days_of(year: YearCalendar) -> tuple[DayKind, ...]:
    """Every date's kind of a schedule given as holidays and make-up working days."""
    first = date(year.year, 1, 1)
    length = 366 if calendar.isleap(year.year) else 365
    kinds = []
    for i in range(length):
        day = first + timedelta(days=i)
        if day in year.workdays:
            kinds.append(DayKind.MAKEUP_WORKDAY)
        elif day in year.holidays:
            kinds.append(DayKind.HOLIDAY)
        elif day.weekday() >= _SATURDAY:
            kinds.append(DayKind.WEEKEND)
        else:
            kinds.append(DayKind.WORKDAY)
    return tuple(kinds)


def year_calendar(record: HolidayCalendar) -> YearCalendar:
    """The schedule a calendar record states, for due-date arithmetic."""
    return YearCalendar(record.year, record.holidays, record.makeup_workdays, source=record.source)


def parse_calendar_file(data: bytes, *, name: str, source: str | None = None) -> CalendarFile:
    """Read a calendar file (CSV or TOML, told apart by ``name``'s suffix).

    ``source`` (where the schedule comes from) overrides the TOML file's own; a CSV file
    has none, so it is required then. ``ConfigError`` names the file, the line and the
    date when the file is not a complete, consistent year.
    """
    if len(data) > _MAX_FILE_BYTES:
        raise ConfigError(f"{name}: larger than {_MAX_FILE_BYTES} bytes: not a calendar")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{name}: not UTF-8 ({e})", advice="save the file as UTF-8") from None
    lower = name.lower()
    if lower.endswith(".toml"):
        parsed = parse_year_calendar(text, name=name)
        chosen = source if source is not None else parsed.source
        result = CalendarFile(parsed.year, days_of(parsed), chosen)
    elif lower.endswith(".csv"):
        if source is None:
            raise ConfigError(
                f"{name}: a CSV calendar needs --source",
                advice='say where the schedule comes from, e.g. --source "国务院办公厅 '
                '2027 年部分节假日安排的通知"',
            )
        year, days = _parse_csv(text, name)
        result = CalendarFile(year, days, source)
    else:
        raise ConfigError(
            f"{name}: unknown calendar format",
            advice="name the file *.csv (every date with its kind) or *.toml (holidays "
            "and make-up working days), docs/OPERATIONS.md 'Calendars'",
        )
    if not result.source.strip():
        raise ConfigError(f"{name}: the calendar needs a source (the notice it comes from)")
    return result


def _parse_csv(text: str, name: str) -> tuple[int, tuple[DayKind, ...]]:
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise ConfigError(f"{name}: empty calendar")
    rows = csv.reader(io.StringIO("\n".join(line for _, line in lines)))
    numbers = [n for n, _ in lines]
    header = [h.strip().lower() for h in next(rows)]
    if header[:2] != ["date", "kind"]:
        raise ConfigError(
            f"{name} line {numbers[0]}: the header must begin with date,kind, not "
            f"{','.join(header[:2])!r}"
        )
    seen: dict[date, int] = {}
    kinds: dict[date, DayKind] = {}
    year: int | None = None
    for line_no, row in zip(numbers[1:], rows, strict=True):
        where = f"{name} line {line_no}"
        if len(row) < 2:
            raise ConfigError(f"{where}: needs a date and a kind")
        raw_date, raw_kind = row[0].strip(), row[1].strip()
        try:
            day = date.fromisoformat(raw_date)
        except ValueError:
            raise ConfigError(f"{where}: {raw_date!r} is not a date (YYYY-MM-DD)") from None
        if len(raw_date) != 10:
            raise ConfigError(f"{where}: {raw_date!r} is not a date (YYYY-MM-DD)")
        if year is None:
            year = day.year
        elif day.year != year:
            raise ConfigError(f"{where}: {day.isoformat()} is not in {year}, the file's year")
        if day in seen:
            raise ConfigError(
                f"{where}: {day.isoformat()} is listed twice (first on line {seen[day]})"
            )
        kind = KIND_NAMES.get(raw_kind.lower())
        if kind is None:
            raise ConfigError(
                f"{where}: {day.isoformat()}: unknown kind {raw_kind!r}",
                advice=f"kinds: {', '.join(KIND_NAMES)}",
            )
        _check_weekday(day, kind, where)
        seen[day] = line_no
        kinds[day] = kind
    if year is None:
        raise ConfigError(f"{name}: the calendar lists no date")
    first = date(year, 1, 1)
    length = 366 if calendar.isleap(year) else 365
    every = [first + timedelta(days=i) for i in range(length)]
    missing = [d for d in every if d not in kinds]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ConfigError(
            f"{name}: {missing[0].isoformat()}{more} missing: every date of {year} needs a row"
        )
    return year, tuple(kinds[d] for d in every)


def _check_weekday(day: date, kind: DayKind, where: str) -> None:
    weekend = day.weekday() >= _SATURDAY
    if weekend and kind is DayKind.WORKDAY:
        raise ConfigError(
            f"{where}: {day.isoformat()} is a {day:%A}: a worked weekend day is "
            "makeup_workday (调休上班), not workday"
        )
    if not weekend and kind in (DayKind.WEEKEND, DayKind.MAKEUP_WORKDAY):
        raise ConfigError(
            f"{where}: {day.isoformat()} is a {day:%A}: it is a workday or a holiday, "
            f"not {kind.name.lower()}"
        )


def newest_per_year(
    records: Iterable[tuple[str, HolidayCalendar]],
) -> dict[int, tuple[str, HolidayCalendar]]:
    """The deciding calendar of each year: newest ``issued_at``, then greatest record id."""
    best: dict[int, tuple[str, HolidayCalendar]] = {}
    for record_id, record in records:
        current = best.get(record.year)
        if current is None or (record.issued_at, record_id) > (
            current[1].issued_at,
            current[0],
        ):
            best[record.year] = (record_id, record)
    return best


def merge_calendars(shipped: WorkCalendar, records: Iterable[HolidayCalendar]) -> WorkCalendar:
    """The shipped schedules with each year a record decides replaced by it.

    ``records`` are the deciding records (one per year, ``newest_per_year``).
    """
    years: dict[int, YearCalendar] = {y: shipped.year(y) for y in shipped.years}
    for record in records:
        years[record.year] = year_calendar(record)
    return WorkCalendar(years.values())


WARN_DAYS = 60


def missing_years(
    calendar: WorkCalendar, today: date, *, horizon_days: int = WARN_DAYS
) -> list[int]:
    """The years from ``today`` to ``horizon_days`` ahead that the calendar lacks.

    A report due date in such a year cannot be computed (the due date of December's
    report falls in January), so ``alliance-gateway schedule`` warns this long before.
    """
    last = today + timedelta(days=horizon_days)
    return [y for y in range(today.year, last.year + 1) if y not in calendar.years]
