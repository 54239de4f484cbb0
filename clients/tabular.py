"""Reading a list file into rows of fields: CSV, XLSX or JSON Lines.

CSV
    Text in UTF-8 (a BOM is allowed) or GB18030 (which contains GBK and GB2312, what
    Excel and WPS write on Chinese Windows). ``encoding="auto"`` decides before the first
    row is read: a UTF-8 BOM means UTF-8; else a file that decodes as UTF-8 throughout
    is UTF-8; else one that decodes as GB18030 throughout is GB18030; else the file is
    refused with the offset of the first bad byte. UTF-16 files are refused. Line
    numbers are physical lines, the header's first line being line 1.
XLSX
    The first sheet (or a named one), read with openpyxl in read-only mode; cell values
    are the values Excel shows (the cached results of formulas). Line numbers are the
    sheet's row numbers. The older .xls format is not read.
JSON Lines
    One JSON object per line (keys are fields or headers, as in a header row); blank
    lines are skipped. Text decoding as for CSV.

Headers (CSV and XLSX): the first non-empty row is the header, except that rows holding
a single cell of text that names no column (a title above the table) are skipped. Every
header must name a field (``vocabulary.column_for``): an unknown or repeated one refuses
the file before any row is read. A column without a header is ignored, but a value in
it is a problem of its row; empty rows are skipped.

Values come as the file holds them: strings from CSV; strings, numbers, dates and
booleans from XLSX; any JSON value from JSON Lines. ``clients.importing`` turns them
into statement fields.
"""

from __future__ import annotations

import codecs
import csv
import json
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TextIO

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from clients.import_messages import ImportFileError, Message
from clients.vocabulary import COLUMNS, IGNORED, column_for

__all__ = [
    "ENCODINGS",
    "FORMATS",
    "Cells",
    "Format",
    "Table",
    "count_rows",
    "detect_encoding",
    "detect_format",
    "open_table",
]

Format = Literal["csv", "xlsx", "jsonl"]
FORMATS: Final[tuple[Format, ...]] = ("csv", "xlsx", "jsonl")
ENCODINGS: Final = ("auto", "utf-8", "gb18030", "gbk")
_SUFFIXES: Final[Mapping[str, Format]] = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_GB: Final = ("gb18030", "gbk", "gb2312", "cp936")
_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Cells:
    """One row of the file: field -> value, or the problem that keeps it from being one."""

    line: int
    values: Mapping[str, object] | None
    problem: Message | None = None
    column: str = ""  # the field a problem concerns ("" for the row as a whole)


@dataclass
class Table:
    """A file opened for reading: its header labels and its rows (read once)."""

    labels: dict[str, str]  # field -> the header as the file writes it (empty for JSON)
    rows: Iterator[Cells]
    encoding: str = ""  # the text encoding used ("" for XLSX)
    sheet: str = ""  # the sheet read (XLSX)
    ignored: list[str] = field(default_factory=list)  # headers of ignored columns


def detect_format(path: Path, explicit: str | None = None) -> Format:
    value = explicit or _SUFFIXES.get(path.suffix.lower())
    for known in FORMATS:
        if value == known:
            return known
    if path.suffix.lower() == ".xls":
        raise ImportFileError(
            Message("xlsx_unreadable", {"name": path.name, "detail": ".xls"}),
            Message("xlsx_advice"),
        )
    raise ImportFileError(Message("no_format", {"name": path.name}), Message("format_advice"))


# --- text encodings ------------------------------------------------------------------


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    """The offset of the first byte that does not decode, or None if all of it does."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    return offset + e.start
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:
        return offset + e.start
    except OSError as e:
        raise _cannot_open(path, e) from e
    return None


def _cannot_open(path: Path, e: OSError) -> ImportFileError:
    return ImportFileError(
        Message("cannot_open", {"path": str(path), "detail": e.strerror or str(e)})
    )


def detect_encoding(path: Path, explicit: str = "auto") -> str:
    """The Python codec to read ``path`` with: ``utf-8-sig`` or ``gb18030``."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise _cannot_open(path, e) from e
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(Message("utf16", {"name": path.name}), Message("encoding_advice"))
    name = explicit.lower().replace("_", "-")
    if name in ("utf-8", "utf8"):
        candidates = ["utf-8-sig"]
    elif name in _GB:
        candidates = ["gb18030"]
    elif name == "auto":
        utf8_bom = head.startswith(codecs.BOM_UTF8)
        candidates = ["utf-8-sig"] if utf8_bom else ["utf-8-sig", "gb18030"]
    else:
        raise ImportFileError(
            Message("unknown_value", {"value": explicit, "known": ENCODINGS}),
            Message("encoding_advice"),
        )
    first_offset: int | None = None
    for encoding in candidates:
        offset = _first_bad_byte(path, encoding)
        if offset is None:
            return encoding
        first_offset = offset if first_offset is None else first_offset
    if len(candidates) == 1:
        shown = "UTF-8" if candidates[0] == "utf-8-sig" else "GB18030"
        what = Message(
            "not_encoding", {"name": path.name, "encoding": shown, "offset": first_offset}
        )
    else:
        what = Message("no_encoding", {"name": path.name, "offset": first_offset})
    raise ImportFileError(what, Message("encoding_advice"))


# --- headers -------------------------------------------------------------------------


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True, slots=True)
class _Header:
    line: int
    fields: list[str | None]  # per position: the field, or None (ignored / no header)
    headerless: list[bool]  # per position: the column has no header at all
    labels: dict[str, str]
    ignored: list[str]


def _is_title(cells: list[object]) -> bool:
    filled = [c for c in cells if not _blank(c)]
    return len(filled) == 1 and isinstance(filled[0], str) and column_for(filled[0]) is None


def _header(line: int, cells: list[object]) -> _Header:
    fields: list[str | None] = []
    headerless: list[bool] = []
    labels: dict[str, str] = {}
    ignored: list[str] = []
    for cell in cells:
        label = "" if cell is None else str(cell).strip()
        headerless.append(not label)
        if not label:
            fields.append(None)
            continue
        name = column_for(label)
        if name is None:
            raise ImportFileError(
                Message("unknown_column", {"line": line, "label": label}),
                Message("column_advice", {"fields": ", ".join(COLUMNS)}),
            )
        if name == IGNORED:
            ignored.append(label)
            fields.append(None)
            continue
        if name in labels:
            raise ImportFileError(
                Message(
                    "repeated_column",
                    {"line": line, "first": labels[name], "second": label, "field": name},
                ),
                Message("repeated_advice"),
            )
        labels[name] = label
        fields.append(name)
    return _Header(line, fields, headerless, labels, ignored)


def _rows(
    lines: Iterable[tuple[int, list[object]]], *, ragged: bool
) -> tuple[_Header | None, Iterator[Cells]]:
    """Find the header in ``lines``, then turn each later line into ``Cells``.

    ``ragged``: a short row is padded with empty cells (a spreadsheet has no short
    rows, only empty cells); otherwise (CSV) it is a problem of its row.
    """
    source = iter(lines)
    header: _Header | None = None
    first: tuple[int, list[object]] | None = None  # the first non-empty row
    for line, cells in source:
        if all(_blank(c) for c in cells):
            continue
        first = first or (line, cells)
        if _is_title(cells):
            continue
        header = _header(line, cells)
        break
    if header is None:
        if first is not None:  # only "titles": the first names an unknown column
            _header(*first)
        return None, iter(())
    return header, _data(header, source, ragged=ragged)


def _data(
    header: _Header, source: Iterator[tuple[int, list[object]]], *, ragged: bool
) -> Iterator[Cells]:
    width = len(header.fields)
    for line, cells in source:
        if all(_blank(c) for c in cells):
            continue
        extra = cells[width:]
        if any(not _blank(c) for c in extra):
            yield Cells(line, None, Message("cells", {"cells": len(cells), "columns": width}))
            continue
        if len(cells) < width and not ragged:
            yield Cells(line, None, Message("cells", {"cells": len(cells), "columns": width}))
            continue
        row = list(cells[:width]) + [None] * (width - len(cells))
        if any(h and not _blank(c) for h, c in zip(header.headerless, row, strict=True)):
            yield Cells(line, None, Message("headerless"))
            continue
        values = {f: c for f, c in zip(header.fields, row, strict=True) if f is not None}
        yield Cells(line, values)


# --- the three formats ---------------------------------------------------------------


def _csv_lines(handle: TextIO, problems: list[Cells]) -> Iterator[tuple[int, list[object]]]:
    reader = csv.reader(handle, strict=True)
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            problems.append(Cells(line, None, Message("bad_csv", {"detail": str(e)})))
            return
        yield line, list(cells)


def _csv_table(handle: TextIO) -> tuple[_Header | None, Iterator[Cells]]:
    broken: list[Cells] = []  # a CSV error ends the file; it is reported as a row
    header, rows = _rows(_csv_lines(handle, broken), ragged=False)
    if header is None and broken:
        raise ImportFileError(broken[0].problem or Message("bad_csv", {"detail": ""}))

    def all_rows() -> Iterator[Cells]:
        yield from rows
        yield from broken

    return header, all_rows()


def _jsonl_rows(handle: TextIO) -> Iterator[Cells]:
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            detail = f"{e.msg} (column {e.colno})"
            yield Cells(line, None, Message("bad_json", {"detail": detail}))
            continue
        if not isinstance(value, dict):
            yield Cells(line, None, Message("not_object"))
            continue
        values: dict[str, object] = {}
        problem: Cells | None = None
        for key, item in value.items():
            name = column_for(key)
            if name is None:
                problem = Cells(line, None, Message("unknown_field"), str(key))
                break
            if name in values:
                repeated = {"first": name, "second": key, "field": name}
                problem = Cells(line, None, Message("repeated_field", repeated), name)
                break
            if name != IGNORED:
                values[name] = item
        yield problem or Cells(line, values)


@contextmanager
def open_table(
    path: Path, fmt: Format, *, encoding: str = "auto", sheet: str | None = None
) -> Iterator[Table]:
    """Open ``path``; the ``Table``'s rows are read while the context is open."""
    if fmt == "xlsx":
        with _open_xlsx(path, sheet) as table:
            yield table
        return
    codec = detect_encoding(path, encoding)
    try:
        handle = path.open(encoding=codec, newline="" if fmt == "csv" else None)
    except OSError as e:
        raise _cannot_open(path, e) from e
    with handle:
        if fmt == "jsonl":
            yield Table({}, _jsonl_rows(handle), encoding=codec)
            return
        header, rows = _csv_table(handle)
        labels = header.labels if header else {}
        ignored = header.ignored if header else []
        yield Table(labels, rows, encoding=codec, ignored=ignored)


@contextmanager
def _open_xlsx(path: Path, sheet: str | None) -> Iterator[Table]:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except OSError as e:
        raise _cannot_open(path, e) from e
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ImportFileError(
            Message("xlsx_unreadable", {"name": path.name, "detail": str(e) or type(e).__name__}),
            Message("xlsx_advice"),
        ) from e
    try:
        names = book.sheetnames
        if sheet is not None and sheet not in names:
            raise ImportFileError(
                Message("no_sheet", {"name": path.name, "sheet": sheet}),
                Message("sheet_advice", {"sheets": ", ".join(names)}),
            )
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        # Writers do not always record the sheet's size correctly: read all of it.
        ws.reset_dimensions()
        lines = (
            (line, list[object](cells))
            for line, cells in enumerate(
                ws.iter_rows(min_row=1, min_col=1, values_only=True), start=1
            )
        )
        header, rows = _rows(lines, ragged=True)
        yield Table(
            header.labels if header else {},
            rows,
            sheet=ws.title,
            ignored=header.ignored if header else [],
        )
    finally:
        book.close()


def count_rows(path: Path, fmt: Format, *, encoding: str = "auto", sheet: str | None = None) -> int:
    """How many rows ``path`` holds (for a progress display)."""
    with open_table(path, fmt, encoding=encoding, sheet=sheet) as table:
        return sum(1 for _ in table.rows)
