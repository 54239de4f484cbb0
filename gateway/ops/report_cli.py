"""``alliance-gateway report``: compute, sign and append the monthly report, write it as
JSON, CSV and HTML; or print when the next report is due.

    alliance-gateway report --config gateway.toml --month 2026-10 [--region 33]
        [--out DIR] [--format json,csv,html]
    alliance-gateway report --config gateway.toml --next-due
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.core.workdays import ReportMonth
from gateway.errors import RecordError
from gateway.ops.app import Core
from gateway.ops.compliance_app import report_service
from gateway.ops.config import load_config
from gateway.ops.report_render import FORMATS, write_report
from gateway.ops.workcalendar import load_work_calendar
from gateway.service.ledger import utc_now
from gateway.service.reports import parse_unit

__all__ = ["add_subparsers", "run_report"]


def add_subparsers(sub: Any) -> None:
    """Add ``report`` to the ``alliance-gateway`` subcommands."""
    p = sub.add_parser(
        "report",
        help="compute, sign and append the monthly report (or show the next due date)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--month", help="YYYY-MM in Asia/Shanghai (default: the previous month)")
    p.add_argument(
        "--region",
        help="one reporting unit: 2 digits (33) or a 6-digit region code (default: all 32)",
    )
    p.add_argument("--out", type=Path, default=Path(), help="folder for the files (default: .)")
    p.add_argument(
        "--format", default=",".join(FORMATS), help="comma-separated: json,csv,html (default all)"
    )
    p.add_argument(
        "--next-due", action="store_true", help="print the next report's due date and exit"
    )
    p.set_defaults(handler=run_report)


def _formats(text: str) -> list[str]:
    chosen = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise RecordError(
            f"--format: {', '.join(unknown) or 'nothing chosen'}; choose from {', '.join(FORMATS)}"
        )
    return chosen


def run_report(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = utc_now()
    if args.next_due:
        calendar = load_work_calendar(config.calendar_dir)
        month = calendar.next_due(now)
        print(
            f"next report: {month}, due {calendar.due_date(month).isoformat()} "
            f"(late from {calendar.due_by(month).isoformat()})"
        )
        return 0
    formats = _formats(args.format)
    month = ReportMonth.parse(args.month) if args.month else ReportMonth.containing(now).previous()
    if month.end > now:
        raise RecordError(
            f"--month: {month} has not ended yet (Asia/Shanghai)",
            advice="report a month once it is over; the default is the previous month",
        )
    unit = parse_unit(args.region)
    core = Core(config)
    try:
        result = report_service(core).generate(month, unit)
    finally:
        core.close()
    paths = write_report(
        args.out,
        f"report-{month}-{unit or 'all'}",
        result.statement.content,
        result.document,
        formats,
        record_id=result.record_id,
        log_index=result.log_index,
    )
    print(
        f"report {month} ({unit or 'all units'}) at checkpoint "
        f"{result.statement.checkpoint_size}: record {result.record_id}, "
        f"log index {result.log_index}"
    )
    due = result.document.get("due_date")
    print(f"due {due}" if due else "due date unknown: the calendar lacks the year")
    for path in paths:
        print(f"wrote {path}")
    return 0
