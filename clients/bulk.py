"""Bulk submission from a list file, and its dry run.

A file (CSV in UTF-8 or GB18030/GBK, XLSX, or JSON Lines: ``clients.tabular``) holds
one statement per row, under English or Chinese headers (``clients.vocabulary``); each
row becomes a statement through ``clients.importing.row_to_statement``. The issuer is
always the profile's member (members sign only as themselves).

``check_file`` is the dry run: it reads and validates every row exactly as a real run
does and submits nothing. ``submit_file`` streams the good rows to the gateway
(``AllianceClient.submit_many``). Both return a ``BulkReport``: rows read, stored,
duplicates, and a ``Rejection`` per problem, naming the line, the column and the reason
(a row the file refuses may have several problems; the gateway refuses a row once).
Rows with problems are never sent. Submitting the same file again yields the same
records (times are required, so the bytes are the same) and reports duplicates.

``write_report`` writes the rejections as CSV (line, column, reason) in the user's
language, UTF-8 with a BOM so that Excel opens it.
"""

from __future__ import annotations

import csv
import functools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from clients import statements
from clients.client import AllianceClient
from clients.import_messages import Language, Message, table
from clients.importing import (
    DEFAULT_WINDOW,
    RowContext,
    RowProblems,
    row_to_statement,
)
from clients.profile import Profile
from clients.tabular import FORMATS, Format, count_rows, detect_format, open_table
from gateway.core.statements import Listing, Statement

__all__ = [
    "FORMATS",
    "BulkReport",
    "Format",
    "ImportOptions",
    "Progress",
    "Rejection",
    "Row",
    "check_file",
    "count_rows",
    "detect_format",
    "read_rows",
    "row_context",
    "submit_file",
    "write_report",
]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One problem of one row: where, and why."""

    line: int
    column: str  # the field ("" for the row as a whole)
    message: Message
    code: str = "file"  # "file" when the row was not sent, else the gRPC status name
    label: str = ""  # the column as the file heads it

    @property
    def reason(self) -> str:
        return self.message.text()

    def where(self) -> str:
        return self.label or self.column


@dataclass(frozen=True, slots=True)
class Row:
    """One row read: a statement, or its problems."""

    line: int
    statement: Statement | None
    problems: tuple[Rejection, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to read a file, and whether it is an existing list being imported."""

    fmt: Format | None = None  # None: from the file name
    encoding: str = "auto"
    sheet: str | None = None
    historical: bool = False
    window_days: int = DEFAULT_WINDOW.days


@dataclass(frozen=True, slots=True)
class Progress:
    """Rows done so far; each row is counted once, as stored, duplicate or rejected."""

    done: int
    total: int
    stored: int
    duplicates: int
    rejected: int


@dataclass
class BulkReport:
    total: int = 0
    stored: int = 0
    duplicates: int = 0
    valid: int = 0  # rows that passed every check of the file (all a dry run knows)
    historical: int = 0  # listings that went in as a historical import
    dry_run: bool = False
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def refused(self) -> int:
        """Rows with at least one problem."""
        return len({r.line for r in self.rejected})

    @property
    def ok(self) -> bool:
        return not self.rejected


def row_context(profile: Profile, *, window_days: int = DEFAULT_WINDOW.days) -> RowContext:
    """The context rows of ``profile``'s member are read in (the alliance key read once)."""
    return RowContext(
        profile.member_id,
        profile.region_code,
        functools.cache(profile.hmac_key),
        window=timedelta(days=window_days),
    )


def read_rows(
    path: Path,
    ctx: RowContext,
    options: ImportOptions = ImportOptions(),
    *,
    imported_at: datetime | None = None,
) -> Iterator[Row]:
    """Read and validate every row of ``path``; one ``Row`` per row of the file."""
    fmt = options.fmt or detect_format(path)
    now = imported_at or statements.now()
    with open_table(path, fmt, encoding=options.encoding, sheet=options.sheet) as source:
        labels = source.labels
        for cells in source.rows:
            if cells.values is None:
                assert cells.problem is not None
                label = labels.get(cells.column, cells.column)
                problem = Rejection(cells.line, cells.column, cells.problem, label=label)
                yield Row(cells.line, None, (problem,))
                continue
            try:
                statement = row_to_statement(
                    cells.values, ctx, historical=options.historical, imported_at=now
                )
            except RowProblems as e:
                problems = tuple(
                    Rejection(cells.line, p.column, p.message, label=labels.get(p.column, ""))
                    for p in e.problems
                )
                yield Row(cells.line, None, problems)
                continue
            yield Row(cells.line, statement)


def check_file(
    path: Path,
    ctx: RowContext,
    options: ImportOptions = ImportOptions(),
    *,
    imported_at: datetime | None = None,
) -> BulkReport:
    """The dry run: validate every row as ``submit_file`` would, and submit nothing."""
    report = BulkReport(dry_run=True)
    for row in read_rows(path, ctx, options, imported_at=imported_at):
        report.total += 1
        if row.statement is None:
            report.rejected.extend(row.problems)
            continue
        report.valid += 1
        if options.historical and isinstance(row.statement, Listing):
            report.historical += 1
    return report


def submit_file(
    client: AllianceClient,
    path: Path,
    options: ImportOptions = ImportOptions(),
    *,
    on_progress: Callable[[Progress], None] | None = None,
    imported_at: datetime | None = None,
) -> BulkReport:
    """Stream every good row of ``path`` to the gateway; report what became of each."""
    fmt = options.fmt or detect_format(path)
    options = ImportOptions(
        fmt, options.encoding, options.sheet, options.historical, options.window_days
    )
    ctx = row_context(client.profile, window_days=options.window_days)
    report = BulkReport(total=count_rows(path, fmt, encoding=options.encoding, sheet=options.sheet))
    lock = threading.Lock()
    lines: deque[int] = deque()  # lines of rows sent, in order, awaiting their result
    file_problems: list[Rejection] = []  # filled by gRPC's request thread
    file_refused = 0  # rows the file refused (each may have several problems)

    def statements() -> Iterator[Statement]:
        nonlocal file_refused
        for row in read_rows(path, ctx, options, imported_at=imported_at):
            if row.statement is None:
                with lock:
                    file_problems.extend(row.problems)
                    file_refused += 1
                continue
            if options.historical and isinstance(row.statement, Listing):
                report.historical += 1
            report.valid += 1
            lines.append(row.line)
            yield row.statement

    gateway_refused: list[Rejection] = []

    def progress() -> None:
        if on_progress is None:
            return
        with lock:
            refused = len(gateway_refused) + file_refused
        done = report.stored + report.duplicates + refused
        on_progress(Progress(done, report.total, report.stored, report.duplicates, refused))

    for result in client.submit_many(statements()):
        line = lines.popleft()
        if not result.ok:
            detail = {"status": result.code.name, "detail": result.message}
            with lock:
                gateway_refused.append(
                    Rejection(line, "", Message("refused", detail), result.code.name)
                )
        elif result.duplicate:
            report.duplicates += 1
        else:
            report.stored += 1
        progress()
    progress()
    report.rejected = sorted([*gateway_refused, *file_problems], key=lambda r: r.line)
    return report


def write_report(report: BulkReport, out: TextIO, language: Language) -> None:
    """The rejections as CSV: line, column (as the file heads it), reason."""
    words = table(language)
    writer = csv.writer(out)
    writer.writerow([words["report.line"], words["report.column"], words["report.reason"]])
    for r in report.rejected:
        writer.writerow([r.line, r.where(), r.message.text(language)])
