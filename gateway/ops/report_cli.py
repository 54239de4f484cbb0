"""``alliance-gateway report``: compute, sign and append the monthly report, and write
the written report (书面材料) as PDF, DOCX and HTML with the counts as JSON and CSV;
or print the narrative template, or when the next report is due.

    alliance-gateway report --config gateway.toml --month 2026-10 [--region 33]
        --narrative narrative-2026-10-33.toml [--out DIR] [--lang zh-CN|en]
        [--format json,csv,html,pdf,docx]
    alliance-gateway report --config gateway.toml --month 2026-10 --draft
    alliance-gateway report --month 2026-10 --region 33 --narrative-template
    alliance-gateway report --config gateway.toml --next-due
    alliance-gateway report --config gateway.toml --verify report-2026-10-33.pdf

A final report needs the working group's narrative (经验做法, 存在的问题); ``--draft``
writes the files without it and without signing or appending anything. The files are
rendered before the report is signed: the signed record names each by its SHA-256
(``MonthlyReport.files``), and ``--verify FILE`` checks a copy against the log.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from gateway.core.report import MonthData, canonical_json
from gateway.core.statements import ReportFile
from gateway.core.workdays import ReportMonth
from gateway.errors import RecordError
from gateway.ops.app import Core
from gateway.ops.compliance_app import report_service
from gateway.ops.config import Config, load_config
from gateway.ops.i18n import Locale
from gateway.ops.report_names import report_locale
from gateway.ops.report_narrative import Narrative, load_narrative, narrative_template
from gateway.ops.report_render import (
    FORMATS,
    check_engines,
    file_hashes,
    render_files,
    report_files,
    save_files,
)
from gateway.ops.report_view import build_view
from gateway.ops.submit_cli import add_submit_parser
from gateway.ops.workcalendar import load_work_calendar
from gateway.service.ledger import utc_now
from gateway.service.reports import Publisher, parse_unit
from gateway.storage.report_state import DraftStore

__all__ = ["add_subparsers", "run_report"]


def add_subparsers(sub: Any) -> None:
    """Add ``report`` to the ``alliance-gateway`` subcommands."""
    p = sub.add_parser(
        "report",
        help="compute, sign and append the monthly report and write the written report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="the gateway's TOML configuration")
    p.add_argument("--month", help="YYYY-MM in Asia/Shanghai (default: the previous month)")
    p.add_argument(
        "--region",
        help="one reporting unit: 2 digits (33) or a 6-digit region code (default: all 32)",
    )
    p.add_argument("--out", type=Path, default=Path(), help="folder for the files (default: .)")
    p.add_argument(
        "--format",
        default=",".join(FORMATS),
        help=f"comma-separated: {','.join(FORMATS)} (default all)",
    )
    p.add_argument("--lang", default="zh-CN", help="zh-CN (default) or en")
    p.add_argument(
        "--narrative",
        type=Path,
        help="the working group's narrative (TOML; see --narrative-template)",
    )
    p.add_argument(
        "--draft",
        action="store_true",
        help="write the files without a narrative; sign and append nothing",
    )
    p.add_argument(
        "--narrative-template",
        action="store_true",
        help="print the narrative template for --month and --region, and exit",
    )
    p.add_argument(
        "--next-due", action="store_true", help="print the next report's due date and exit"
    )
    p.add_argument(
        "--verify",
        type=Path,
        action="append",
        metavar="FILE",
        help="check that FILE is a file a signed report of this gateway names (repeatable)",
    )
    p.set_defaults(handler=run_report)
    add_submit_parser(p)


def _formats(text: str) -> list[str]:
    chosen = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise RecordError(
            f"--format: {', '.join(unknown) or 'nothing chosen'}; choose from {', '.join(FORMATS)}"
        )
    return chosen


def _config(args: argparse.Namespace) -> Path:
    if args.config is None:
        raise RecordError("--config is required", advice="pass the gateway's TOML file")
    path: Path = args.config
    return path


def run_report(args: argparse.Namespace) -> int:
    locale = report_locale(args.lang)
    _ = locale.gettext
    now = utc_now()
    month = ReportMonth.parse(args.month) if args.month else ReportMonth.containing(now).previous()
    unit = parse_unit(args.region)
    scope = unit or "all"
    if args.narrative_template:
        print(narrative_template(str(month), scope), end="")
        return 0
    config = load_config(_config(args))
    if args.verify:
        return verify_files(config, args.verify, locale)
    if args.next_due:
        calendar = load_work_calendar(config.calendar_dir)
        upcoming = calendar.next_due(now)
        print(
            _("next report: %(month)s, due %(date)s (late from %(late)s)")
            % {
                "month": locale.month(upcoming.start),
                "date": locale.date(calendar.due_date(upcoming)),
                "late": locale.datetime(calendar.due_by(upcoming)),
            }
        )
        return 0
    formats = _formats(args.format)
    if month.end > now:
        raise RecordError(
            f"--month: {month} has not ended yet (Asia/Shanghai)",
            advice="report a month once it is over; the default is the previous month",
        )
    narrative: Narrative | None = None
    if args.narrative is not None:
        narrative = load_narrative(args.narrative, month=str(month), scope=scope)
    elif not args.draft:
        raise RecordError(
            "a final report needs the working group's narrative (--narrative FILE)",
            advice="write it from `alliance-gateway report --narrative-template "
            f"--month {month}{' --region ' + unit if unit else ''}`, or pass --draft",
        )
    check_engines(formats)  # before anything is signed
    stem = f"report-{month}-{scope}" + ("-draft" if args.draft else "")
    rendered: list[tuple[str, bytes]] = []

    def publish(document: Mapping[str, Any], data: MonthData, content: bytes) -> list[ReportFile]:
        """The files, rendered before the record is signed: it names each by its SHA-256
        (so the documents cannot show the record's own id; they show its checkpoint)."""
        view = build_view(
            dict(document),
            locale=locale,
            ledger=data.ledger,
            members=data.members,
            narrative=narrative,
            generated_at=now,
            draft=args.draft,
        )
        rendered[:] = render_files(
            stem, content, document, formats, view=view, locale=locale, members=data.members
        )
        return report_files(rendered)

    report = _compute(config, month, unit, draft=args.draft, publish=publish)
    paths = save_files(args.out, rendered)
    _print_summary(locale, report, str(month), scope)
    for name, digest in file_hashes(paths).items():
        print(_("wrote %(path)s sha256 %(digest)s") % {"path": args.out / name, "digest": digest})
    return 0


@dataclass(frozen=True)
class _Computed:
    document: dict[str, Any]
    data: MonthData
    content: bytes
    checkpoint_size: int
    record_id: str | None  # None for a draft: nothing signed
    log_index: int | None


def _compute(
    config: Config, month: ReportMonth, unit: str | None, *, draft: bool, publish: Publisher
) -> _Computed:
    core = Core(config)
    try:
        service = report_service(core)
        if draft:
            checkpoint = service.checkpoint()
            document, data = service.compute_month(month, unit, checkpoint)
            content = canonical_json(document)
            publish(document, data, content)
            DraftStore(core.store.engine).note_draft(str(month), unit or "", core.clock())
            return _Computed(document, data, content, checkpoint.tree_size, None, None)
        result = service.generate(month, unit, publish=publish)
        return _Computed(
            result.document,
            result.data,
            result.statement.content,
            result.statement.checkpoint_size,
            result.record_id,
            result.log_index,
        )
    finally:
        core.close()


def _print_summary(locale: Locale, report: _Computed, month: str, scope: str) -> None:
    _ = locale.gettext
    values: dict[str, object] = {"month": month, "scope": scope, "size": report.checkpoint_size}
    if report.record_id is None:
        print(
            _("draft report %(month)s (%(scope)s) at checkpoint %(size)s: not signed, not appended")
            % values
        )
    else:
        values.update(record=report.record_id, index=report.log_index)
        print(
            _(
                "report %(month)s (%(scope)s) at checkpoint %(size)s: "
                "record %(record)s, log index %(index)s"
            )
            % values
        )
    due = report.document.get("due_date")
    if due:
        print(_("due %(date)s") % {"date": locale.date(date.fromisoformat(due))})
    else:
        print(_("due date unknown: the calendar lacks the year"))


def verify_files(config: Config, files: Sequence[Path], locale: Locale) -> int:
    """Is each file one that a monthly report signed by this gateway names (by its
    SHA-256)? 0 when every file is, 1 when any is not: its bytes differ from every
    file logged (changed, or never published)."""
    _ = locale.gettext
    digests = {path: _sha256(path) for path in files}
    core = Core(config)
    try:
        logged = [
            (ref, report, f) for ref, report in report_service(core).reports() for f in report.files
        ]
    finally:
        core.close()
    missing = 0
    for path, digest in digests.items():
        found = [(ref, report, f) for ref, report, f in logged if f.sha256 == digest]
        if not found:
            missing += 1
            print(
                _("%(path)s: NOT logged: no signed report names a file with SHA-256 %(digest)s")
                % {"path": path, "digest": digest.hex()}
            )
            continue
        for ref, report, f in found:
            print(
                _(
                    "%(path)s: logged as %(name)s (%(type)s) of the report %(month)s "
                    "(%(scope)s), record %(record)s at log index %(index)s"
                )
                % {
                    "path": path,
                    "name": f.name,
                    "type": f.media_type,
                    "month": report.month,
                    "scope": report.unit or "all",
                    "record": ref.record_id,
                    "index": ref.log_index,
                }
            )
    return 1 if missing else 0


def _sha256(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").digest()
    except OSError as e:
        raise RecordError(f"--verify: cannot read {path}: {e.strerror}") from None
