"""Bulk submission from a file: CSV or JSON Lines, one statement per row or line.

Both formats carry the same fields; an empty or absent field is unset. The issuer is
always the profile's member (members sign only as themselves).

``type``
    ``listing`` (the default), ``status-change`` or ``sanction``.
Listing fields
    ``uscc`` or ``resident_id`` (hashed with the alliance key before it leaves this
    machine), ``name``, ``stores`` (``PLATFORM_MEMBER_ID:STORE_ID`` items separated by
    spaces; in JSON also a list), ``list`` (``blacklist``, ``key-scrutiny``),
    ``conduct`` (e.g. ``fake-transactions``, ``other``), ``conduct_other``, ``region``
    (default: the profile's region_code), ``decision_ref``, ``listed_at``,
    ``deadline``, ``summary``, ``legal_basis``.
Status-change fields
    ``listing_id``, ``step`` (``notice-served``, ``commitment-signed``, ``corrected``,
    ``removed``, ``escalated``), ``effective_at``, ``decision_ref``, ``reason``,
    ``decided_by``.
Sanction fields
    ``listing_id``, ``measure`` (e.g. ``close-store``, ``other``), ``measure_other``,
    ``action`` (``applied``, the default, or ``lifted``), ``effective_at``,
    ``store_id``, ``note``.

Times are ISO 8601 with an offset, or a date (midnight Beijing time). ``listed_at``
and ``effective_at`` are required, so that submitting the same file again yields the
same records (a record's id is the hash of its bytes) and reports duplicates rather
than new records. A field that does not belong to the row's type is an error.

CSV: UTF-8 (a BOM is allowed), a header row naming the fields, then one row per
statement; line numbers count the header as line 1. JSON Lines: one JSON object per
line with string values; blank lines are skipped.

``submit_file`` streams the rows to the gateway (``AllianceClient.submit_many``) and
returns a ``BulkReport``: stored, duplicates, and every rejected row with its line
number and reason, whether the file or the gateway refused it.
"""

from __future__ import annotations

import csv
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from clients import statements as build
from clients.client import AllianceClient
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    ListKind,
    SanctionAction,
    SanctionMeasure,
    Statement,
)
from gateway.errors import GatewayError, RecordError

__all__ = [
    "FORMATS",
    "BulkReport",
    "Format",
    "Progress",
    "Rejection",
    "Row",
    "count_rows",
    "detect_format",
    "read_rows",
    "submit_file",
]

Format = Literal["csv", "jsonl"]
FORMATS: Final[tuple[Format, ...]] = ("csv", "jsonl")

_KIND_FIELDS: Final = {
    "listing": {
        "uscc",
        "resident_id",
        "name",
        "stores",
        "list",
        "conduct",
        "conduct_other",
        "region",
        "decision_ref",
        "listed_at",
        "deadline",
        "summary",
        "legal_basis",
    },
    "status-change": {"listing_id", "step", "effective_at", "decision_ref", "reason", "decided_by"},
    "sanction": {
        "listing_id",
        "measure",
        "measure_other",
        "action",
        "effective_at",
        "store_id",
        "note",
    },
}
_ALL_FIELDS: Final = {"type"}.union(*_KIND_FIELDS.values())
_SUFFIXES: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One parsed row: a statement, or the reason it is not one."""

    line: int
    statement: Statement | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str
    code: str  # "file" when the row did not parse, else the gRPC status name


@dataclass(frozen=True, slots=True)
class Progress:
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
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


def detect_format(path: Path, explicit: str | None = None) -> Format:
    value = explicit or _SUFFIXES.get(path.suffix.lower())
    for known in FORMATS:
        if value == known:
            return known
    raise RecordError(
        f"format: cannot tell the format of {path.name}",
        advice="name the file .csv or .jsonl, or pass --format csv|jsonl",
    )


# --- reading -------------------------------------------------------------------------


def _raw_rows(path: Path, fmt: Format) -> Iterator[tuple[int, Mapping[str, object] | str]]:
    """``(line, fields)`` per row, or ``(line, error)`` when a row is not even a mapping."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as e:
        raise RecordError(f"file: cannot open {path}: {e}") from e
    with handle:
        try:
            if fmt == "csv":
                yield from _csv_rows(handle)
            else:
                yield from _jsonl_rows(handle)
        except UnicodeDecodeError as e:
            raise RecordError(f"file: {path} is not UTF-8: {e}") from e


def _csv_rows(handle: Iterator[str]) -> Iterator[tuple[int, Mapping[str, object] | str]]:
    reader = csv.reader(handle, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as e:
        raise RecordError(f"line 1: {e}") from e
    names = [h.strip() for h in header]
    unknown = [n for n in names if n not in _ALL_FIELDS]
    if unknown:
        raise RecordError(
            f"line 1: unknown column {unknown[0]!r}",
            advice=f"columns are: {', '.join(sorted(_ALL_FIELDS))}",
        )
    if len(set(names)) != len(names):
        raise RecordError("line 1: a column is repeated")
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield line, str(e)
            return
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            yield line, f"{len(cells)} cells, but the header has {len(names)} columns"
            continue
        yield line, dict(zip(names, cells, strict=True))


def _jsonl_rows(handle: Iterator[str]) -> Iterator[tuple[int, Mapping[str, object] | str]]:
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            yield line, f"not valid JSON: {e.msg} (column {e.colno})"
            continue
        if not isinstance(value, dict):
            yield line, "a line must hold one JSON object"
            continue
        yield line, value


def count_rows(path: Path, fmt: Format) -> int:
    """How many rows the file holds (for a progress bar)."""
    return sum(1 for _ in _raw_rows(path, fmt))


@dataclass(frozen=True, slots=True)
class _Context:
    issuer: str
    region_code: str
    hmac_key: Callable[[], bytes]


def read_rows(
    path: Path,
    fmt: Format,
    *,
    issuer: str,
    region_code: str,
    hmac_key: Callable[[], bytes],
) -> Iterator[Row]:
    """Parse every row of ``path`` into a statement signed later by ``issuer``."""
    ctx = _Context(issuer, region_code, hmac_key)
    for line, raw in _raw_rows(path, fmt):
        if isinstance(raw, str):
            yield Row(line, None, raw)
            continue
        try:
            yield Row(line, _statement(raw, ctx))
        except GatewayError as e:
            yield Row(line, None, str(e))


def _text(raw: Mapping[str, object], name: str) -> str:
    value = raw.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{name}: must be a string, got {type(value).__name__}")
    return value.strip()


def _required(raw: Mapping[str, object], name: str) -> str:
    value = _text(raw, name)
    if not value:
        raise RecordError(f"{name}: required")
    return value


def _statement(raw: Mapping[str, object], ctx: _Context) -> Statement:
    unknown = sorted(set(raw) - _ALL_FIELDS)
    if unknown:
        raise RecordError(f"{unknown[0]}: unknown field")
    kind = _text(raw, "type") or "listing"
    fields = _KIND_FIELDS.get(kind)
    if fields is None:
        raise RecordError(f"type: {kind!r} is not one of {', '.join(_KIND_FIELDS)}")
    stray = sorted(n for n in set(raw) - fields - {"type"} if _present(raw[n]))
    if stray:
        raise RecordError(f"{stray[0]}: not a field of a {kind}")
    if kind == "listing":
        return _listing(raw, ctx)
    if kind == "status-change":
        return build.status_change(
            ctx.issuer,
            _required(raw, "listing_id"),
            build.parse_enum(LifecycleStep, _required(raw, "step"), field="step"),
            effective_at=build.parse_time(_required(raw, "effective_at"), field="effective_at"),
            decision_ref=_text(raw, "decision_ref"),
            reason=_text(raw, "reason"),
            decided_by=_text(raw, "decided_by"),
        )
    return build.sanction(
        ctx.issuer,
        _required(raw, "listing_id"),
        build.parse_enum(SanctionMeasure, _required(raw, "measure"), field="measure"),
        action=build.parse_enum(SanctionAction, _text(raw, "action") or "applied", field="action"),
        measure_other=_text(raw, "measure_other"),
        effective_at=build.parse_time(_required(raw, "effective_at"), field="effective_at"),
        store_id=_text(raw, "store_id"),
        note=_text(raw, "note"),
    )


def _present(value: object) -> bool:
    return value not in (None, "", [])


def _stores(raw: Mapping[str, object]) -> list[str]:
    value = raw.get("stores", "")
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise RecordError("stores: a list of PLATFORM_MEMBER_ID:STORE_ID strings")
        return [v for v in value if v.strip()]
    return _text(raw, "stores").split()


def _listing(raw: Mapping[str, object], ctx: _Context) -> Statement:
    stores = [build.parse_store(s, field="stores") for s in _stores(raw)]
    uscc, resident = _text(raw, "uscc"), _text(raw, "resident_id")
    if bool(uscc) == bool(resident):
        raise RecordError("uscc, resident_id: give exactly one")
    if uscc:
        subject = build.company_subject(uscc, name=_text(raw, "name"), stores=stores)
    else:
        if _text(raw, "name"):
            raise RecordError("name: only for enterprises (uscc), never for natural persons")
        subject = build.person_subject(resident, ctx.hmac_key(), stores=stores)
    deadline = _text(raw, "deadline")
    return build.new_listing(
        ctx.issuer,
        subject,
        list_kind=build.parse_enum(ListKind, _required(raw, "list"), field="list"),
        conduct=build.parse_enum(ConductType, _required(raw, "conduct"), field="conduct"),
        conduct_other=_text(raw, "conduct_other"),
        decision_ref=_required(raw, "decision_ref"),
        region_code=_text(raw, "region") or ctx.region_code,
        listed_at=build.parse_time(_required(raw, "listed_at"), field="listed_at"),
        correction_deadline=build.parse_time(deadline, field="deadline") if deadline else None,
        summary=_text(raw, "summary"),
        legal_basis=_text(raw, "legal_basis"),
    )


# --- submitting ----------------------------------------------------------------------


def submit_file(
    client: AllianceClient,
    path: Path,
    *,
    fmt: Format | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> BulkReport:
    """Stream every row of ``path`` to the gateway; report what became of each."""
    fmt = fmt or detect_format(path)
    profile = client.profile
    report = BulkReport(total=count_rows(path, fmt))
    lock = threading.Lock()
    lines: deque[int] = deque()  # lines of rows sent, in order, awaiting their result
    bad_rows: list[Rejection] = []  # filled by gRPC's request thread

    def statements() -> Iterator[Statement]:
        rows = read_rows(
            path,
            fmt,
            issuer=profile.member_id,
            region_code=profile.region_code,
            hmac_key=profile.hmac_key,
        )
        for row in rows:
            if row.statement is None:
                with lock:
                    bad_rows.append(Rejection(row.line, row.error, "file"))
                continue
            lines.append(row.line)
            yield row.statement

    def progress() -> None:
        if on_progress is not None:
            with lock:
                refused = len(report.rejected) + len(bad_rows)
            done = report.stored + report.duplicates + refused
            on_progress(Progress(done, report.total, report.stored, report.duplicates, refused))

    for result in client.submit_many(statements()):
        line = lines.popleft()
        if not result.ok:
            with lock:
                report.rejected.append(Rejection(line, result.message, result.code.name))
        elif result.duplicate:
            report.duplicates += 1
        else:
            report.stored += 1
        progress()
    progress()
    # Only now do the rows the file refused join the gateway's refusals: progress()
    # counts the two lists apart, so merging earlier counted each such row twice.
    report.rejected = sorted([*report.rejected, *bad_rows], key=lambda r: r.line)
    return report
