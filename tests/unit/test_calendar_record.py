"""Holiday calendars: the statement's rules, the import file formats, which record
decides a year, and the due date it gives."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway import codec
from gateway.core.calendar_record import (
    days_of,
    merge_calendars,
    missing_years,
    newest_per_year,
    parse_calendar_file,
    year_calendar,
)
from gateway.core.statements import PAYLOAD_TYPES, DayKind, HolidayCalendar
from gateway.core.workdays import ReportMonth, WorkCalendar, YearCalendar
from gateway.errors import ConfigError, RecordError
from gateway.ops.workcalendar import load_work_calendar
from gateway.pb.alliance.v1 import statements_pb2 as pb

CALENDAR = PAYLOAD_TYPES[HolidayCalendar]
GW = "spiffe://zj.alliance.test/gateway/gw"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
SOURCE = "test schedule"


def plain_days(
    year: int,
    holidays: frozenset[date] | set[date] = frozenset(),
    makeup: frozenset[date] | set[date] = frozenset(),
) -> tuple[DayKind, ...]:
    """Weekdays worked, weekends off, but for ``holidays`` and ``makeup`` days."""
    return days_of(YearCalendar(year, frozenset(holidays), frozenset(makeup)))


def csv_text(
    year: int, days: tuple[DayKind, ...], *, kinds: dict[DayKind, str] | None = None
) -> str:
    names = kinds or {k: k.name.lower() for k in DayKind}
    first = date(year, 1, 1)
    rows = [f"{first + timedelta(days=i)},{names[k]}" for i, k in enumerate(days)]
    return "date,kind,name\n# a comment\n" + "\n".join(rows) + "\n"


NEW_YEAR_2027 = {date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)}


def calendar_2027(issued_at: datetime = T0) -> HolidayCalendar:
    return HolidayCalendar(GW, 2027, plain_days(2027, NEW_YEAR_2027), SOURCE, issued_at)


# --- the statement -------------------------------------------------------------------


def test_round_trip_and_due_date_of_december_2026() -> None:
    record = calendar_2027()
    payload_type, payload = codec.encode_statement(record)
    assert payload_type == "application/vnd.alliance.holiday-calendar.v1+protobuf"
    assert codec.decode_statement(payload_type, payload) == record
    calendar = merge_calendars(load_work_calendar(), [record])
    # Due the last working day before 15 January 2027: Thursday the 14th.
    assert calendar.due_date(ReportMonth(2026, 12)) == date(2027, 1, 14)
    assert calendar.years == (2025, 2026, 2027)


@pytest.mark.parametrize(
    ("index", "kind", "message"),
    [
        # 2027-01-09 is a Saturday, 2027-01-11 a Monday.
        (8, DayKind.WORKDAY, r"days\[8\]: 2027-01-09 is a Saturday: a worked weekend day is a"),
        (10, DayKind.WEEKEND, r"days\[10\]: 2027-01-11 is a Monday, not a Saturday or Sunday"),
        (10, DayKind.MAKEUP_WORKDAY, r"days\[10\]: 2027-01-11 is a Monday, .*MAKEUP_WORKDAY"),
    ],
)
def test_a_day_of_the_wrong_kind_is_refused_by_its_date(
    index: int, kind: DayKind, message: str
) -> None:
    days = list(plain_days(2027))
    days[index] = kind
    with pytest.raises(RecordError, match=message):
        HolidayCalendar(GW, 2027, tuple(days), SOURCE, T0)


def test_every_date_must_be_listed() -> None:
    with pytest.raises(RecordError, match=r"2027 has 365 days, the calendar lists 364"):
        HolidayCalendar(GW, 2027, plain_days(2027)[:-1], SOURCE, T0)
    with pytest.raises(RecordError, match=r"2028 has 366 days, the calendar lists 365"):
        HolidayCalendar(GW, 2028, plain_days(2027), SOURCE, T0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("issuer", "spiffe://zj.alliance.test/platform/shop", r"issuer: must be a gateway"),
        ("year", 0, r"year: 0 is not a year"),
        ("source", "", r"source: must not be empty"),
        ("issued_at", datetime(2026, 12, 1), r"issued_at: must be timezone-aware"),
    ],
)
def test_field_rules(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {
        "issuer": GW,
        "year": 2027,
        "days": plain_days(2027),
        "source": SOURCE,
        "issued_at": T0,
    }
    fields[field] = value
    with pytest.raises(RecordError, match=rf"^holiday_calendar\.{message}"):
        HolidayCalendar(**fields)  # type: ignore[arg-type]


def test_wire_refusals_name_the_date() -> None:
    msg = codec.statement_to_pb(calendar_2027())
    assert isinstance(msg, pb.HolidayCalendar)
    msg.days[40] = pb.DAY_KIND_UNSPECIFIED
    with pytest.raises(RecordError, match=r"days\[40\] \(2027-02-10\): must be set"):
        codec.decode_statement(CALENDAR, msg.SerializeToString())
    msg.days[40] = pb.DayKind.ValueType(9)
    with pytest.raises(RecordError, match=r"days\[40\] \(2027-02-10\): unknown DayKind value 9"):
        codec.decode_statement(CALENDAR, msg.SerializeToString())
    whole = codec.statement_to_pb(calendar_2027())
    assert isinstance(whole, pb.HolidayCalendar)
    whole.ClearField("issued_at")
    with pytest.raises(RecordError, match=r"holiday_calendar\.issued_at: must be set"):
        codec.decode_statement(CALENDAR, whole.SerializeToString())
    # A field holiday-calendar.v1 does not define is refused.
    extra = codec.statement_to_pb(calendar_2027()).SerializeToString()
    extra += b"\x32\x01x"  # field 6 (not part of holiday-calendar.v1), length 1
    with pytest.raises(RecordError, match=r"holiday_calendar: unknown fields"):
        codec.decode_statement(CALENDAR, extra)


# --- which calendar decides a year -----------------------------------------------------


def test_newest_issued_at_decides_whatever_the_order() -> None:
    first = ("a" * 64, calendar_2027(T0))
    newer = (
        "b" * 64,
        HolidayCalendar(
            "spiffe://gd.alliance.test/gateway/gw",
            2027,
            plain_days(2027, NEW_YEAR_2027 | {date(2027, 1, 14)}),
            "peer's corrected schedule",
            T0 + timedelta(days=1),
        ),
    )
    tie = ("0" * 64, calendar_2027(T0 + timedelta(days=1)))
    for order in itertools.permutations([first, newer, tie]):
        chosen = newest_per_year(order)
        assert chosen[2027] == newer  # same issued_at as `tie`: the greater record id
    calendar = merge_calendars(load_work_calendar(), [newer[1]])
    assert calendar.due_date(ReportMonth(2026, 12)) == date(2027, 1, 13)


def test_a_record_replaces_the_shipped_year() -> None:
    shipped = load_work_calendar()
    assert shipped.is_workday(date(2026, 10, 7)) is False  # National Day break
    days = list(days_of(shipped.year(2026)))
    days[(date(2026, 10, 7) - date(2026, 1, 1)).days] = DayKind.WORKDAY
    record = HolidayCalendar(GW, 2026, tuple(days), SOURCE, T0)
    merged = merge_calendars(shipped, [record])
    assert merged.is_workday(date(2026, 10, 7)) is True
    assert year_calendar(record).holidays == shipped.year(2026).holidays - {date(2026, 10, 7)}


def test_the_shipped_toml_converts_without_loss() -> None:
    shipped = load_work_calendar()
    for year in shipped.years:
        record = HolidayCalendar(GW, year, days_of(shipped.year(year)), SOURCE, T0)
        first = date(year, 1, 1)
        for i in range(len(record.days)):
            day = first + timedelta(days=i)
            assert year_calendar(record).is_workday(day) == shipped.is_workday(day)


def test_warning_sixty_days_before_a_missing_year() -> None:
    shipped = load_work_calendar()
    assert missing_years(shipped, date(2026, 11, 1)) == []
    assert missing_years(shipped, date(2026, 11, 2)) == [2027]  # 2027-01-01 is 60 days on
    assert missing_years(merge_calendars(shipped, [calendar_2027()]), date(2026, 12, 6)) == []
    assert missing_years(WorkCalendar([]), date(2026, 12, 6)) == [2026, 2027]


# --- the import files -------------------------------------------------------------------


def test_csv_with_every_date_imports() -> None:
    days = plain_days(2027, NEW_YEAR_2027, {date(2027, 2, 6)})
    parsed = parse_calendar_file(csv_text(2027, days).encode(), name="cn-2027.csv", source=SOURCE)
    assert (parsed.year, parsed.days, parsed.source) == (2027, days, SOURCE)
    chinese = {
        DayKind.WORKDAY: "工作日",
        DayKind.WEEKEND: "休息日",
        DayKind.HOLIDAY: "节假日",
        DayKind.MAKEUP_WORKDAY: "调休上班",
    }
    text = csv_text(2027, days, kinds=chinese)
    lines = text.splitlines()
    shuffled = "\n".join([lines[0], *reversed(lines[2:])])  # any order
    again = parse_calendar_file(("\ufeff" + shuffled).encode(), name="x.CSV", source=SOURCE)
    assert again.days == days


def _bad_csv(edit: str) -> str:
    text = csv_text(2027, plain_days(2027, NEW_YEAR_2027))
    lines = text.splitlines()
    if edit == "missing":
        del lines[2 + 45]  # 2027-02-15
    elif edit == "twice":
        lines.append("2027-03-05,workday")
    elif edit == "weekday-as-weekend":
        lines[2 + 10] = "2027-01-11,weekend"
    elif edit == "makeup-on-weekday":
        lines[2 + 10] = "2027-01-11,makeup_workday"
    elif edit == "worked-saturday":
        lines[2 + 8] = "2027-01-09,workday"
    elif edit == "other-year":
        lines.append("2028-01-01,holiday")
    elif edit == "unknown-kind":
        lines[2 + 10] = "2027-01-11,holliday"
    elif edit == "bad-date":
        lines[2 + 10] = "2027-02-30,workday"
    elif edit == "header":
        lines[0] = "day,type"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("missing", r"2027-02-15 missing: every date of 2027 needs a row"),
        ("twice", r"line 368: 2027-03-05 is listed twice \(first on line 66\)"),
        ("weekday-as-weekend", r"line 13: 2027-01-11 is a Monday: .* not weekend"),
        ("makeup-on-weekday", r"line 13: 2027-01-11 is a Monday: .* not makeup_workday"),
        ("worked-saturday", r"line 11: 2027-01-09 is a Saturday: a worked weekend day is"),
        ("other-year", r"line 368: 2028-01-01 is not in 2027"),
        ("unknown-kind", r"line 13: 2027-01-11: unknown kind 'holliday'"),
        ("bad-date", r"line 13: '2027-02-30' is not a date"),
        ("header", r"line 1: the header must begin with date,kind"),
    ],
)
def test_malformed_csv_is_refused_naming_the_date(edit: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_calendar_file(_bad_csv(edit).encode(), name="cn-2027.csv", source=SOURCE)


def test_other_file_refusals() -> None:
    good = csv_text(2027, plain_days(2027)).encode()
    with pytest.raises(ConfigError, match=r"a CSV calendar needs --source"):
        parse_calendar_file(good, name="cn-2027.csv")
    with pytest.raises(ConfigError, match=r"unknown calendar format"):
        parse_calendar_file(good, name="cn-2027.xlsx", source=SOURCE)
    with pytest.raises(ConfigError, match=r"not UTF-8"):
        parse_calendar_file("date,kind\n".encode("utf-16"), name="c.csv", source=SOURCE)
    with pytest.raises(ConfigError, match=r"lists no date"):
        parse_calendar_file(b"date,kind\n", name="c.csv", source=SOURCE)


def test_toml_in_the_shipped_format() -> None:
    text = (
        'year = 2027\nsource = "notice"\n'
        '[[holidays]]\nname = "元旦"\nfirst = 2027-01-01\nlast = 2027-01-03\n'
        '[[makeup_workdays]]\ndate = 2027-02-06\nfor = "春节"\n'
    )
    parsed = parse_calendar_file(text.encode(), name="cn-2027.toml")
    assert parsed.days == plain_days(2027, NEW_YEAR_2027, {date(2027, 2, 6)})
    assert parsed.source == "notice"
    bad = text.replace("2027-02-06", "2027-02-08")  # a Monday
    with pytest.raises(ConfigError, match=r"make-up working day 2027-02-08 is not a Saturday"):
        parse_calendar_file(bad.encode(), name="cn-2027.toml")
