"""Write a monthly report as JSON, CSV, HTML, PDF and DOCX.

- JSON: the exact signed bytes (canonical JSON), so a reader can hash-compare the file
  with the ``MonthlyReport`` record's content.
- CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese): one row
  per reporting unit, one per prefecture-level city (``-cities.csv``) and the sanctions
  by unit, action, measure and platform (``-sanctions.csv``); headers in the report's
  language, codes beside the names.
- HTML and PDF: the written report (``report_view``) from one Jinja2 template with
  autoescaping (``templates/report.html.j2``); WeasyPrint prints that same page as an
  A4 PDF with embedded CJK fonts and page numbers. No scripts, no external requests.
- DOCX: the same view as an editable Word document (``report_docx``).

``file_hashes`` gives the SHA-256 of every file written, for the signed record of
the files a recipient gets.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from gateway.core.report import CITY_COUNTERS, DUE_PROCESS_COUNTERS, PUBLICATION_COUNTERS
from gateway.core.statements import MemberRecord, ReportFile
from gateway.errors import ConfigError
from gateway.ops.i18n import Locale
from gateway.ops.report_names import Names
from gateway.ops.report_view import ReportView, member_name

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "check_engines",
    "file_hashes",
    "render_cities_csv",
    "render_csv",
    "render_files",
    "render_html",
    "render_pdf",
    "render_sanctions_csv",
    "report_files",
    "save_files",
    "write_report",
]

FORMATS = ("json", "csv", "html", "pdf", "docx")

_UNIT_COUNTERS = (
    *CITY_COUNTERS,
    "outstanding_confirmations",
    "outstanding_lifts_total",
    "not_applicable_answers",
    "notices_served",
    "notices_late",
    "commitments_signed",
    "government_measures_total",
    *DUE_PROCESS_COUNTERS,
    *PUBLICATION_COUNTERS,
)


# --- CSV -----------------------------------------------------------------------------


def _labels(loc: Locale) -> dict[str, str]:
    _ = loc.gettext
    return {
        "month": _("Month"),
        "unit": _("Unit code"),
        "name": _("Reporting unit"),
        "city": _("City code"),
        "city_name": _("City"),
        "new_listings_total": _("New listings"),
        "corrected_in_time": _("Corrected in time"),
        "corrected_late": _("Corrected late"),
        "removed": _("Removed"),
        "withdrawn": _("Withdrawn"),
        "escalated": _("Escalated"),
        "identified": _("Platform reports identified"),
        "disputes_opened": _("Objections received"),
        "disputes_upheld": _("Objections rejected (listing upheld)"),
        "disputes_withdrawn": _("Objections accepted (listing withdrawn)"),
        "disputes_open_at_month_end": _("Objections open at month end"),
        "disputes_overdue_at_month_end": _("Objections not decided in time at month end"),
        "retired": _("Retired (publication period ended)"),
        "overdue_at_month_end": _("Overdue at month end"),
        "in_force_at_month_end": _("Listed at month end"),
        "outstanding_confirmations": _("Sanction confirmations overdue"),
        "outstanding_lifts_total": _("Lifts overdue"),
        "not_applicable_answers": _("Not applicable (no account)"),
        "notices_served": _("Correction notices served"),
        "notices_late": _("Correction notices late"),
        "commitments_signed": _("Credit commitments signed"),
        "government_measures_total": _("Government measures"),
        "sanctions_applied": _("Measures applied"),
        "sanctions_lifted": _("Measures lifted"),
        "action": _("Action"),
        "action_name": _("Action name"),
        "measure": _("Measure code"),
        "measure_name": _("Measure"),
        "platform": _("Platform member id"),
        "platform_name": _("Platform"),
        "count": _("Count"),
    }


def _sum(table: Mapping[str, Mapping[str, int]]) -> int:
    return sum(sum(p.values()) for p in table.values())


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def render_csv(document: Mapping[str, Any], loc: Locale) -> str:
    """One row per reporting unit with every counter."""
    labels, names = _labels(loc), Names(loc)
    keys = ("month", "unit", "name", *_UNIT_COUNTERS, "sanctions_applied", "sanctions_lifted")
    rows = (
        [
            document["month"],
            u["unit"],
            names.unit(u["unit"]),
            # Reports signed before protocol revision 3 lack the due-process counters.
            *(u.get(k, 0) for k in _UNIT_COUNTERS),
            _sum(u["sanctions_applied"]),
            _sum(u["sanctions_lifted"]),
        ]
        for u in document["units"]
    )
    return _csv([labels[k] for k in keys], rows)


def render_cities_csv(document: Mapping[str, Any], loc: Locale) -> str:
    """One row per prefecture-level city with a non-zero counter."""
    labels, names = _labels(loc), Names(loc)
    keys = ("month", "unit", "name", "city", "city_name", *CITY_COUNTERS)
    rows = (
        [
            document["month"],
            u["unit"],
            names.unit(u["unit"]),
            code,
            names.city(code),
            *(counts.get(k, 0) for k in CITY_COUNTERS),
        ]
        for u in document["units"]
        for code, counts in u.get("by_city", {}).items()
    )
    return _csv([labels[k] for k in keys], rows)


def render_sanctions_csv(
    document: Mapping[str, Any], loc: Locale, members: Mapping[str, MemberRecord]
) -> str:
    """Sanction confirmations by unit, action, measure and platform (long format)."""
    labels, names = _labels(loc), Names(loc)
    keys = (
        "month",
        "unit",
        "name",
        "action",
        "action_name",
        "measure",
        "measure_name",
        "platform",
        "platform_name",
        "count",
    )
    rows = []
    for u in document["units"]:
        for action, table in (
            ("APPLIED", u["sanctions_applied"]),
            ("LIFTED", u["sanctions_lifted"]),
        ):
            for measure in sorted(table):
                for platform in sorted(table[measure]):
                    rows.append(
                        [
                            document["month"],
                            u["unit"],
                            names.unit(u["unit"]),
                            action,
                            names.action(action),
                            measure,
                            names.measure(measure),
                            platform,
                            member_name(platform, members),
                            table[measure][platform],
                        ]
                    )
    return _csv([labels[k] for k in keys], rows)


# --- HTML and PDF ----------------------------------------------------------------------


def _lines(text: str) -> Markup:
    """A table cell: escaped, its newlines as line breaks."""
    return Markup("<br>").join(escape(line) for line in str(text).split("\n"))


def _css_counters(label: str) -> Markup:
    """``Page {page} of {pages}`` as a CSS ``content`` value with page counters."""
    parts: list[str] = []
    rest = label
    while rest:
        at = [(rest.find(t), t) for t in ("{page}", "{pages}") if rest.find(t) >= 0]
        if not at:
            parts.append(_css_string(rest))
            break
        index, token = min(at)
        if index:
            parts.append(_css_string(rest[:index]))
        parts.append(f"counter({token[1:-1]})")
        rest = rest[index + len(token) :]
    return Markup(" ".join(parts) or '""')  # noqa: S704 - built from escaped CSS strings


def _css_string(text: str) -> str:
    escaped = "".join(c if c.isalnum() or c in " ,.:;/-" else f"\\{ord(c):06x}" for c in text)
    return f'"{escaped}"'


@lru_cache(maxsize=4)
def _environment(locale: Locale) -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.ops", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(locale.translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters["lines"] = _lines
    env.filters["css_counters"] = _css_counters
    return env


def render_html(view: ReportView, locale: Locale) -> str:
    return _environment(locale).get_template("report.html.j2").render(view=view)


def check_engines(formats: Iterable[str]) -> None:
    """Fail early, with advice, when the PDF engine cannot load (WeasyPrint needs the
    Pango library of the operating system)."""
    if "pdf" not in formats:
        return
    try:
        import weasyprint  # noqa: F401, PLC0415
    except (ImportError, OSError) as e:
        raise ConfigError(
            f"--format pdf: WeasyPrint cannot load: {e}",
            advice="install Pango and the CJK fonts (Debian: libpango-1.0-0 libpangoft2-1.0-0 "
            "fonts-noto-cjk), or leave pdf out of --format",
        ) from None


def render_pdf(html: str) -> bytes:
    """Print the report page as an A4 PDF (fonts embedded, subset)."""
    from weasyprint import HTML  # noqa: PLC0415 - heavy; only when a PDF is asked for
    from weasyprint.urls import URLFetcher  # noqa: PLC0415

    # The page is self-contained: the engine fetches nothing, not even a local file (a
    # URL could only come from text that escaped the template's autoescaping).
    nothing = URLFetcher(allowed_protocols=frozenset())
    pdf: bytes = HTML(string=html, url_fetcher=nothing).write_pdf()
    return pdf


# --- files -----------------------------------------------------------------------------


def render_files(
    stem: str,
    content: bytes,
    document: Mapping[str, Any],
    formats: Iterable[str],
    *,
    view: ReportView,
    locale: Locale,
    members: Mapping[str, MemberRecord],
) -> list[tuple[str, bytes]]:
    """Render the chosen formats as ``<stem>.json``, ``<stem>.csv`` (+ ``-cities.csv``,
    ``-sanctions.csv``), ``<stem>.html``, ``<stem>.pdf`` and ``<stem>.docx``: the
    ``(name, bytes)`` of each, in memory (hashed into the signed record before any is
    written)."""
    from gateway.ops.report_docx import render_docx  # noqa: PLC0415 - python-docx is heavy

    files: list[tuple[str, bytes]] = []
    html: str | None = None
    for fmt in formats:
        if fmt == "json":
            files.append((f"{stem}.json", content))
        elif fmt == "csv":
            bom = "\ufeff"
            files.append((f"{stem}.csv", (bom + render_csv(document, locale)).encode()))
            cities = bom + render_cities_csv(document, locale)
            files.append((f"{stem}-cities.csv", cities.encode()))
            sanctions = bom + render_sanctions_csv(document, locale, members)
            files.append((f"{stem}-sanctions.csv", sanctions.encode()))
        elif fmt in ("html", "pdf"):
            html = html or render_html(view, locale)
            if fmt == "html":
                files.append((f"{stem}.html", html.encode()))
            else:
                files.append((f"{stem}.pdf", render_pdf(html)))
        elif fmt == "docx":
            files.append((f"{stem}.docx", render_docx(view)))
        else:
            raise ValueError(f"unknown report format {fmt!r}")
    return files


def save_files(folder: Path, files: Iterable[tuple[str, bytes]]) -> list[Path]:
    """Write rendered files into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files:
        path = folder / name
        path.write_bytes(data)
        written.append(path)
    return written


def write_report(
    folder: Path,
    stem: str,
    content: bytes,
    document: Mapping[str, Any],
    formats: Iterable[str],
    *,
    view: ReportView,
    locale: Locale,
    members: Mapping[str, MemberRecord],
) -> list[Path]:
    """Render the chosen formats (``render_files``) and write them; every file is
    rendered before any is written, so a rendering error leaves no partial set."""
    files = render_files(
        stem, content, document, formats, view=view, locale=locale, members=members
    )
    return save_files(folder, files)


# Media types of the files a report is published as, by suffix.
MEDIA_TYPES: Mapping[str, str] = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".html": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def report_files(files: Iterable[tuple[str, bytes]]) -> list[ReportFile]:
    """What the signed record says of each rendered file: name, media type, SHA-256."""
    return [
        ReportFile(name, MEDIA_TYPES[Path(name).suffix], hashlib.sha256(data).digest())
        for name, data in files
    ]


def file_hashes(paths: Iterable[Path]) -> dict[str, str]:
    """``{file name: lowercase hex SHA-256 of its bytes}`` for the files given."""
    out = {}
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                digest.update(chunk)
        out[path.name] = digest.hexdigest()
    return out
