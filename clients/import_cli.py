"""``alliance submit-file``: import a list file, or check it with ``--dry-run``.

The command around ``clients.bulk``: its options, the progress display (tqdm, on a
terminal only) and the summary in the user's language. Wired into ``clients.cli`` with
``add_subparser(sub, connect)``, where ``connect`` makes the member's client from the
parsed arguments (``--profile``, ``--timeout``, ``--retries``). Exit status: 0 every
row good, 1 a row was refused, 2 the file (or the profile) cannot be used; a file-level
error is printed in the user's language.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

from tqdm import tqdm

from clients import bulk, i18n, import_messages, importing, tabular
from clients.client import AllianceClient
from clients.i18n import N_, _
from clients.profile import Profile, load_profile
from gateway.errors import RecordError

__all__ = ["ProgressDisplay", "add_subparser"]

EXIT_REFUSED = 1  # as clients.cli
EXIT_USAGE = 2

_Connect = Callable[[argparse.Namespace], tuple[Profile, AllianceClient]]

_HELP = N_(
    "Submit many statements from a list file, one statement per row, streamed to the\n"
    "gateway: CSV (UTF-8, or GB18030/GBK as Excel and WPS save it on Chinese Windows:\n"
    "detected, or named with --encoding), an Excel workbook (.xlsx: the first sheet, or\n"
    "--sheet), or JSON Lines. The format follows the file name or --format.\n"
    "\n"
    "Columns (English field names or Chinese headers; empty = unset):\n"
    "  type            listing (default) | status-change | sanction\n"
    "  listing:        uscc 统一社会信用代码 | resident_id 身份证号, name 主体名称,\n"
    '                  stores 店铺 ("PLATFORM_ID:STORE_ID ..."), list 列入名单,\n'
    "                  conduct 失信行为, conduct_other, region 所属地区 (6-digit code or\n"
    "                  province; default: profile), decision_ref 决定文书号,\n"
    "                  listed_at 列入日期 (required), deadline, summary 列入原因/摘要,\n"
    "                  legal_basis 法律依据\n"
    "  status-change:  listing_id, step, effective_at (required), decision_ref, reason,\n"
    "                  decided_by\n"
    "  sanction:       listing_id, measure, measure_other, action (applied|lifted),\n"
    "                  effective_at (required), store_id, note\n"
    "Values in English (blacklist, fake-transactions) or Chinese (黑名单, 刷单炒信). Dates\n"
    "as 2026-10-01, 2026/10/1, 2026年10月1日 or Excel dates (midnight Beijing time), or ISO\n"
    "8601 times with an offset; fixed times make a second run of the same file report\n"
    "duplicates instead of new records. The full tables: docs/OPERATIONS.md §10.\n"
    "\n"
    "A listing dated more than --window-days (30, the gateway's default backdating window)\n"
    "ago is refused unless the file is an existing list imported with --historical.\n"
    "\n"
    "--dry-run validates every row as a real run would and submits nothing. The summary\n"
    "names every rejected row with its line, column and reason, in Chinese when LANG starts\n"
    "with zh (or --lang); --report PATH also writes them as CSV. A progress display goes to\n"
    "stderr when it is a terminal. Exit 1 if any row was rejected.\n"
    "\n"
    "CSV example:\n"
    "  统一社会信用代码,主体名称,列入名单,失信行为,决定文书号,列入日期,所属地区\n"
    "  91330100716105852F,杭州某某贸易有限公司,黑名单,刷单炒信,"
    "浙市监〔2026〕42号,2026/11/20,浙江省\n"
    "JSON Lines example:\n"
    '  {"uscc": "91330100716105852F", "list": "blacklist", "conduct": "counterfeit",\n'
    '   "decision_ref": "ZJ-AMR-2026-7", "listed_at": "2026-11-20T00:00:00+08:00"}'
)


def add_subparser(sub: Any, connect: _Connect) -> None:
    """Add ``submit-file`` to the ``alliance`` parser's subcommands."""
    sf = sub.add_parser(
        "submit-file",
        help=_("bulk submit (or --dry-run check) a list file: CSV, XLSX or JSON Lines"),
        description=_(_HELP),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sf.add_argument("file", type=Path, metavar="FILE")
    sf.add_argument("--format", choices=bulk.FORMATS)
    sf.add_argument(
        "--encoding",
        default="auto",
        choices=tabular.ENCODINGS,
        help=_("text encoding of a CSV or JSON Lines file (default: auto, UTF-8 else GB18030)"),
    )
    sf.add_argument("--sheet", help=_("the sheet of an .xlsx file to read (default: the first)"))
    sf.add_argument("--dry-run", action="store_true", help=_("validate every row, submit nothing"))
    sf.add_argument("--report", type=Path, metavar="PATH", help=_("write the rejected rows as CSV"))
    sf.add_argument(
        "--historical",
        action="store_true",
        help=_("the file is an existing list: its listings may be older than the window"),
    )
    sf.add_argument(
        "--window-days",
        type=int,
        default=importing.DEFAULT_WINDOW.days,
        metavar="N",
        help=_("refuse listings older than N days without --historical (default: %(default)s)"),
    )
    # The language is read before parsing (clients.cli); here only so the flag parses.
    sf.add_argument(
        "--lang", default=argparse.SUPPRESS, metavar="zh-CN|en", help=_("as alliance --lang")
    )
    sf.set_defaults(handler=functools.partial(_submit_file, connect=connect))


def _submit_file(args: argparse.Namespace, *, connect: _Connect) -> int:
    language = import_messages.current_language()
    if args.window_days < 0:
        raise RecordError(_("--window-days: must not be negative"))
    try:
        options = bulk.ImportOptions(
            fmt=bulk.detect_format(args.file, args.format),
            encoding=args.encoding,
            sheet=args.sheet,
            historical=args.historical,
            window_days=args.window_days,
        )
        if args.dry_run:
            ctx = bulk.row_context(load_profile(args.profile), window_days=args.window_days)
            report = bulk.check_file(args.file, ctx, options)
        else:
            _profile, client = connect(args)
            with client, ProgressDisplay(sys.stderr, language) as display:
                report = bulk.submit_file(client, args.file, options, on_progress=display.update)
    except import_messages.ImportFileError as e:
        text, advice = e.text(language)
        sys.stderr.write(i18n.error_lines(text, advice or e.advice))
        return EXIT_USAGE
    if args.report is not None:  # first: the file is the record, the screen may be a pipe
        with args.report.open("w", encoding="utf-8-sig", newline="") as out:
            bulk.write_report(report, out, language)
    _print_import(report, language)
    if args.report is not None:
        print(import_messages.Message("report_written", {"path": args.report}).text(language))
    return 0 if report.ok else EXIT_REFUSED


def _print_import(report: bulk.BulkReport, language: import_messages.Language) -> None:
    def say(key: str, **params: object) -> str:
        return import_messages.Message(key, params).text(language)

    if report.dry_run:
        print(say("summary_dry", total=report.total, valid=report.valid, refused=report.refused))
    else:
        print(
            say(
                "summary",
                total=report.total,
                stored=report.stored,
                duplicates=report.duplicates,
                refused=report.refused,
            )
        )
    for r in report.rejected:
        reason = r.message.text(language)
        if r.where():
            print("  " + say("report.entry", line=r.line, column=r.where(), reason=reason))
        else:
            print("  " + say("report.entry_row", line=r.line, reason=reason))
    if report.historical and not importing.HISTORICAL_MARK_SIGNED:
        print(say("historical_unmarked", count=report.historical), file=sys.stderr)


class ProgressDisplay:
    """Rows done of the total, and how many were stored, duplicates and refused.

    Drawn by tqdm on ``out`` when it is a terminal, and not at all otherwise (a log
    file or a pipe gets the summary only).
    """

    def __init__(self, out: TextIO, language: import_messages.Language) -> None:
        self._out = out
        self._words = import_messages.table(language)
        self._bar: tqdm[NoReturn] | None = None

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, p: bulk.Progress) -> None:
        bar = self._bar
        if bar is None:
            if not self._out.isatty():
                return
            bar = self._bar = tqdm(total=p.total, file=self._out, unit="row", dynamic_ncols=True)
        w = self._words
        bar.set_postfix_str(
            f"{w['progress.stored']} {p.stored}  {w['progress.duplicates']} {p.duplicates}  "
            f"{w['progress.refused']} {p.rejected}",
            refresh=False,
        )
        bar.update(p.done - bar.n)
