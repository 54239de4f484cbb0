"""``alliance-gateway calendar`` and ``alliance-gateway schedule``: import a year's
holiday calendar as a signed record, show the calendars in force, and show where each
recent month's report stands.

    alliance-gateway calendar import FILE --config gateway.toml [--source TEXT] [--dry-run]
    alliance-gateway calendar list --config gateway.toml
    alliance-gateway schedule --config gateway.toml [--months N] [--until YYYY-MM]
        [--as-of YYYY-MM-DD]

The calendar file formats are in docs/OPERATIONS.md, "Calendars".
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.core.calendar_record import WARN_DAYS, missing_years, parse_calendar_file
from gateway.core.report_state import MonthState
from gateway.core.statements import DayKind
from gateway.core.workdays import REPORT_TZ, ReportMonth
from gateway.errors import ConfigError, RecordError
from gateway.ops.app import Core
from gateway.ops.compliance_app import calendar_book, submission_service
from gateway.ops.config import load_config
from gateway.service.calendars import import_calendar

__all__ = ["add_subparsers"]


def add_subparsers(sub: Any) -> None:
    """Add ``calendar`` and ``schedule`` to the ``alliance-gateway`` subcommands."""
    cal = sub.add_parser("calendar", help="holiday calendars (working days for report due dates)")
    csub = cal.add_subparsers(dest="calendar_command", required=True)
    imp = csub.add_parser(
        "import",
        help="sign a year's holiday calendar (CSV or TOML) and append it to the log",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("file", type=Path, help="the calendar: *.csv (every date) or *.toml")
    imp.add_argument("--config", type=Path, required=True)
    imp.add_argument("--source", help="where the schedule comes from (required for CSV)")
    imp.add_argument(
        "--dry-run", action="store_true", help="check the file and print it; sign nothing"
    )
    imp.set_defaults(handler=run_import)
    ls = csub.add_parser("list", help="the calendar in force for each year, and where from")
    ls.add_argument("--config", type=Path, required=True)
    ls.set_defaults(handler=run_list)

    sched = sub.add_parser(
        "schedule",
        help="where each recent month's report stands (due, drafted, finalised, submitted)",
    )
    sched.add_argument("--config", type=Path, required=True)
    sched.add_argument(
        "--months", type=int, default=3, help="how many ended months to show (default 3)"
    )
    sched.add_argument("--until", help="the latest month shown, YYYY-MM (default: last month)")
    sched.add_argument(
        "--as-of",
        help="show the schedule as it stands at 00:00 (Beijing) of this day, YYYY-MM-DD "
        "(default: now), e.g. to see which calendar will be missing",
    )
    sched.set_defaults(handler=run_schedule)


def _summary(days: tuple[DayKind, ...]) -> str:
    counts = {k: days.count(k) for k in DayKind}
    return (
        f"{counts[DayKind.WORKDAY] + counts[DayKind.MAKEUP_WORKDAY]} working days "
        f"({counts[DayKind.MAKEUP_WORKDAY]} make-up), {counts[DayKind.HOLIDAY]} holidays, "
        f"{counts[DayKind.WEEKEND]} weekend days"
    )


def run_import(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the calendar: {e.strerror}") from None
    parsed = parse_calendar_file(data, name=str(path), source=args.source)
    if args.dry_run:
        print(f"{path}: {parsed.year}, {_summary(parsed.days)}; source {parsed.source!r}")
        print("dry run: nothing signed")
        return 0
    core = Core(load_config(args.config))
    try:
        config = core.config
        result = import_calendar(
            parsed,
            ledger=core.ledger,
            key=core.key,
            gateway_id=config.member_id,
            origin=config.log_origin,
            clock=core.clock,
        )
    finally:
        core.close()
    print(
        f"calendar {parsed.year} imported: {_summary(parsed.days)}; record {result.record_id}, "
        f"log index {result.log_index}"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    core = Core(load_config(args.config))
    try:
        book = calendar_book(core)
        deciding = book.deciding()
        years = book.current().years
        shipped = book.shipped
    finally:
        core.close()
    for year in years:
        chosen = deciding.get(year)
        if chosen is None:
            print(f"{year}: shipped ({shipped.year(year).source or 'no source stated'})")
        else:
            s = chosen.statement
            print(
                f"{year}: record {chosen.record_id} (log index {chosen.log_index}), signed by "
                f"{s.issuer} at {s.issued_at.isoformat()}: {s.source}"
            )
    return 0


def _state_line(s: MonthState) -> str:
    due = "due date unknown (no calendar)" if s.due_date is None else f"due {s.due_date}"
    line = f"report {s.month}: {due}, {s.state.label}"
    if s.overdue and s.due_by is not None:
        late = s.due_by.astimezone(REPORT_TZ).isoformat(timespec="minutes")
        line += f", OVERDUE (late since {late}, not submitted)"
    return line


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise RecordError(f"--as-of: {text!r} is not a date (YYYY-MM-DD)") from None
    return datetime(day.year, day.month, day.day, tzinfo=REPORT_TZ)


def run_schedule(args: argparse.Namespace) -> int:
    if not 1 <= args.months <= 24:
        raise RecordError("--months: 1 to 24")
    until = ReportMonth.parse(args.until) if args.until else None
    as_of = _as_of(args.as_of)
    core = Core(load_config(args.config))
    try:
        book = calendar_book(core)
        submissions = submission_service(core, book)
        now = as_of or core.clock()
        calendar = book.current()
        latest = until or ReportMonth.containing(now).previous()
        months = [latest]
        for _ in range(args.months - 1):
            months.insert(0, months[0].previous())
        states = submissions.states(months, now=now)
    finally:
        core.close()
    today = now.astimezone(REPORT_TZ).date()
    for year in missing_years(calendar, today):
        start = max(today, today.replace(year=year, month=1, day=1))
        days = (start - today).days
        print(
            f"warning: no holiday calendar for {year}: report due dates from {start} "
            f"(in {days} days) cannot be computed\n"
            f"hint: import the State Council's {year} schedule: alliance-gateway calendar "
            f"import FILE --config {args.config}",
            file=sys.stderr,
        )
    for s in states:
        print(_state_line(s))
    try:
        upcoming = calendar.next_due(now)
        print(f"next report due: {upcoming} by {calendar.due_date(upcoming)}")
    except ConfigError as e:
        print(f"next report due: unknown ({e})")
    horizon = today + timedelta(days=WARN_DAYS)
    print(f"calendars: {', '.join(str(y) for y in calendar.years)} (checked to {horizon})")
    return 0
