"""Folds kept beside the log read only what was appended since their last read
(gateway.service.new_records), and a record they cannot read is read again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway import codec
from gateway.core.calendar_record import days_of
from gateway.core.statements import PAYLOAD_TYPES, HolidayCalendar
from gateway.core.workdays import WorkCalendar, YearCalendar
from gateway.errors import RecordError
from gateway.service.calendars import CalendarBook
from gateway.service.new_records import NewRecords

CALENDAR = PAYLOAD_TYPES[HolidayCalendar]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def calendar_2027(issued_at: datetime = T0) -> HolidayCalendar:
    days = days_of(YearCalendar(2027, frozenset({date(2027, 1, 1)}), frozenset()))
    return HolidayCalendar("spiffe://zj.alliance.test/gateway/gw", 2027, days, "test", issued_at)


class _Log:
    """Rows of each payload type, as ``records_of_type_after`` returns them."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[int, str, bytes]]] = {}

    def append(self, payload_type: str, index: int, payload: bytes) -> None:
        self.rows.setdefault(payload_type, []).append((index, f"{index:064x}", payload))

    def after(self, payload_type: str, after: int) -> list[tuple[int, str, bytes]]:
        return [r for r in self.rows.get(payload_type, []) if r[0] > after]


def test_each_read_returns_only_what_was_appended_since_type_by_type() -> None:
    log = _Log()
    log.append("a", 0, b"a0")
    log.append("b", 1, b"b1")
    log.append("a", 2, b"a2")
    new = NewRecords(log.after, ("a", "b"))
    assert [(t, i) for t, i, _, _ in new.read()] == [("a", 0), ("a", 2), ("b", 1)]
    assert list(new.read()) == []
    log.append("b", 3, b"b3")
    assert [(t, i, p) for t, i, _, p in new.read()] == [("b", 3, b"b3")]


def test_a_record_the_reader_stops_at_is_read_again() -> None:
    log = _Log()
    for i in range(3):
        log.append("a", i, b"a%d" % i)
    new = NewRecords(log.after, ("a",))
    for _, index, _, _ in new.read():
        if index == 1:
            break  # the fold failed on this one
    assert [i for _, i, _, _ in new.read()] == [1, 2]


def test_a_calendar_record_that_cannot_be_read_is_not_skipped() -> None:
    """The book stops at an unreadable record and reports it on every refresh; it does
    not quietly move past it: once the record reads, the book resumes there."""
    log = _Log()
    log.append(CALENDAR, 0, codec.encode_statement(calendar_2027())[1])
    log.append(CALENDAR, 1, b"\xff")
    book = CalendarBook(log.after, WorkCalendar(()))
    for _ in range(2):
        with pytest.raises(RecordError):
            book.refresh()
    newer = calendar_2027(issued_at=T0 + timedelta(days=1))
    log.rows[CALENDAR][1] = (1, f"{1:064x}", codec.encode_statement(newer)[1])
    assert [(s.log_index, s.statement) for s in book.signed()] == [
        (0, calendar_2027()),
        (1, newer),
    ]
