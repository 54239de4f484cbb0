"""``alliance-gateway report submit``: record, signed and logged, that a month's report
was sent: to whom, when, and the SHA-256 of each file sent.

    alliance-gateway report submit --config gateway.toml --month 2026-12 [--unit 33]
        --to "国家发展改革委财金司" --file report-2026-12-all.pdf [--file …] [--at ISO-8601]

The month's report must have been finalised (signed) first; the submission names it.
"""

from __future__ import annotations

import argparse
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.core.workdays import ReportMonth
from gateway.errors import ConfigError, RecordError
from gateway.ops.app import Core
from gateway.ops.compliance_app import submission_service
from gateway.ops.config import load_config
from gateway.service.reports import parse_unit

__all__ = ["add_submit_parser", "file_digest"]

_CHUNK = 1 << 20


def add_submit_parser(report: Any) -> None:
    """Add ``submit`` under ``alliance-gateway report``."""
    sub = report.add_subparsers(dest="report_command")
    p = sub.add_parser(
        "submit",
        help="record, signed and logged, that the month's report was sent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, required=True, help="the gateway's TOML configuration")
    p.add_argument("--month", required=True, help="YYYY-MM, the reported month")
    p.add_argument("--unit", help="one reporting unit (2 digits) if the report covers one")
    p.add_argument("--to", dest="recipient", required=True, help="to whom the report was sent")
    p.add_argument(
        "--file",
        dest="files",
        type=Path,
        action="append",
        required=True,
        help="a file sent (repeat for each); its SHA-256 is recorded",
    )
    p.add_argument("--at", help="when it was sent, ISO 8601 with zone (default: now)")
    p.set_defaults(handler=run_submit)


def file_digest(path: Path) -> bytes:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as e:
        raise ConfigError(f"--file {path}: cannot read it: {e.strerror}") from None
    return digest.digest()


def _at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"--at: {text!r} is not ISO 8601 (e.g. 2027-01-12T16:30+08:00)") from None
    if at.tzinfo is None:
        raise RecordError(f"--at: {text!r} has no time zone (e.g. +08:00)")
    return at


def run_submit(args: argparse.Namespace) -> int:
    month = ReportMonth.parse(args.month)
    unit = parse_unit(args.unit)
    at = _at(args.at)
    files = [(path.name, file_digest(path)) for path in args.files]
    core = Core(load_config(args.config))
    try:
        result = submission_service(core).submit(
            month, unit, recipient=args.recipient, files=files, submitted_at=at
        )
    finally:
        core.close()
    s = result.statement
    print(
        f"report {s.month} ({s.unit or 'all units'}) submitted to {s.recipient} at "
        f"{s.submitted_at.isoformat()}: record {result.record_id}, log index {result.log_index}"
    )
    for name, digest in files:
        print(f"  {name} sha256 {digest.hex()}")
    return 0
