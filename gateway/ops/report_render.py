"""Render a monthly report document as JSON, CSV and one self-contained HTML page.

- JSON: the exact signed bytes (canonical JSON), so a reader can hash-compare the file
  with the ``MonthlyReport`` record's content.
- CSV: one row per reporting unit with every counter; a second file lists sanctions
  by unit, action, measure and platform (long format, for spreadsheets).
- HTML: inline CSS and inline SVG bar charts, no scripts, no external requests; it
  reads at a glance and prints on A4.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "render_csv", "render_html", "render_sanctions_csv", "write_report"]

FORMATS = ("json", "csv", "html")

_UNIT_COLUMNS = (
    ("new_listings_total", "New listings"),
    ("corrected_in_time", "Corrected in time"),
    ("corrected_late", "Corrected late"),
    ("removed", "Removed"),
    ("escalated", "Escalated"),
    ("overdue_at_month_end", "Overdue at month end"),
    ("in_force_at_month_end", "In force at month end"),
    ("outstanding_confirmations", "Outstanding confirmations"),
    ("outstanding_lifts_total", "Outstanding lifts"),
)


def _applied_total(unit: Mapping[str, Any]) -> int:
    return sum(sum(p.values()) for p in unit["sanctions_applied"].values())


def _lifted_total(unit: Mapping[str, Any]) -> int:
    return sum(sum(p.values()) for p in unit["sanctions_lifted"].values())


# --- CSV -----------------------------------------------------------------------------


def render_csv(document: Mapping[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "month",
            "unit",
            "name",
            *[k for k, _ in _UNIT_COLUMNS],
            "sanctions_applied",
            "sanctions_lifted",
        ]
    )
    for u in document["units"]:
        w.writerow(
            [
                document["month"],
                u["unit"],
                u["name"],
                *[u[k] for k, _ in _UNIT_COLUMNS],
                _applied_total(u),
                _lifted_total(u),
            ]
        )
    return out.getvalue()


def render_sanctions_csv(document: Mapping[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["month", "unit", "action", "measure", "platform", "count"])
    for u in document["units"]:
        for action, table in (
            ("APPLIED", u["sanctions_applied"]),
            ("LIFTED", u["sanctions_lifted"]),
        ):
            for measure in sorted(table):
                for platform in sorted(table[measure]):
                    w.writerow(
                        [
                            document["month"],
                            u["unit"],
                            action,
                            measure,
                            platform,
                            table[measure][platform],
                        ]
                    )
    return out.getvalue()


# --- HTML ----------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC",sans-serif;
margin:0;color:#1d2733;background:#f4f6f8}
main{max-width:1120px;margin:0 auto;padding:28px 32px 48px}
header{border-bottom:3px solid #1f4e79;padding-bottom:12px;margin-bottom:20px}
h1{font-size:26px;margin:0 0 4px;color:#1f4e79}
h2{font-size:19px;margin:32px 0 10px;color:#1f4e79;border-bottom:1px solid #d5dde5;
padding-bottom:4px}
.meta{color:#4a5a6a;font-size:13.5px;margin:2px 0}
.meta b{color:#1d2733}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d5dde5;border-radius:8px;padding:12px 14px}
.card .n{font-size:28px;font-weight:700;line-height:1.1}
.card .l{font-size:13px;color:#4a5a6a}
.card.warn{border-left:5px solid #c0392b}.card.warn .n{color:#c0392b}
.card.ok{border-left:5px solid #2e7d32}
.card.info{border-left:5px solid #1f4e79}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.chart{background:#fff;border:1px solid #d5dde5;border-radius:8px;padding:12px 14px}
.chart h3{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13.5px}
th,td{border:1px solid #d5dde5;padding:5px 8px;text-align:right}
th{background:#e9eef3;font-weight:600}
td.t,th.t{text-align:left}
tr.total td{font-weight:700;background:#f0f3f6}
td.bad{color:#c0392b;font-weight:700}
.muted{color:#6b7a89;font-size:13px}
.empty{color:#6b7a89;font-style:italic}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
footer{margin-top:36px;font-size:12.5px;color:#6b7a89}
@media print{body{background:#fff}main{padding:0}.chart,.card{break-inside:avoid}}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


# Longer chart labels are cut with an ellipsis (the bar's tooltip has the full label).
_LABEL_CHARS = 28


def _bar_chart(rows: Sequence[tuple[str, int]], *, color: str, empty: str, width: int = 500) -> str:
    """A horizontal bar chart as inline SVG (no scripts, no external fonts)."""
    rows = [r for r in rows if r[1] > 0]
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    label_w, bar_h, gap = 200, 18, 6
    top = max(n for _, n in rows)
    plot = width - label_w - 50
    height = len(rows) * (bar_h + gap) + gap
    parts = [
        f'<svg role="img" xmlns="http://www.w3.org/2000/svg" width="100%" '
        f'viewBox="0 0 {width} {height}" font-family="system-ui,sans-serif" font-size="12">'
    ]
    for i, (label, n) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(2, round(plot * n / top))
        short = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h - 5}" text-anchor="end" '
            f'fill="#1d2733">{_e(short)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" rx="3" fill="{color}">'
            f"<title>{_e(label)}: {n}</title></rect>"
            f'<text x="{label_w + w + 6}" y="{y + bar_h - 5}" fill="#1d2733">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _card(value: int, label: str, kind: str) -> str:
    return (
        f'<div class="card {kind}"><div class="n">{value}</div>'
        f'<div class="l">{_e(label)}</div></div>'
    )


def _name(enum_name: str) -> str:
    """``IP_INFRINGEMENT`` -> ``IP infringement``."""
    words = enum_name.lower().split("_")
    words = [w.upper() if w == "ip" else w for w in words]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _unit_label(u: Mapping[str, Any]) -> str:
    return f"{u['unit']} {u['name']}"


def _active(u: Mapping[str, Any]) -> bool:
    return any(u[k] for k, _ in _UNIT_COLUMNS) or bool(_applied_total(u) or _lifted_total(u))


def _units_table(units: Sequence[Mapping[str, Any]], totals: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for _, label in _UNIT_COLUMNS)
    rows = []
    for u in units:
        cells = []
        for key, _ in _UNIT_COLUMNS:
            bad = key in {
                "overdue_at_month_end",
                "outstanding_confirmations",
                "outstanding_lifts_total",
                "corrected_late",
            }
            cls = ' class="bad"' if bad and u[key] else ""
            cells.append(f"<td{cls}>{u[key]}</td>")
        rows.append(f'<tr><td class="t">{_e(_unit_label(u))}</td>{"".join(cells)}</tr>')
    total_cells = "".join(f"<td>{totals[k]}</td>" for k, _ in _UNIT_COLUMNS)
    rows.append(f'<tr class="total"><td class="t">Total</td>{total_cells}</tr>')
    return (
        f'<table><thead><tr><th class="t">Reporting unit</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _new_listings_table(units: Sequence[Mapping[str, Any]]) -> str:
    merged: dict[tuple[str, str], int] = {}
    for u in units:
        for kind, by_conduct in u["new_listings"].items():
            for conduct, n in by_conduct.items():
                merged[(kind, conduct)] = merged.get((kind, conduct), 0) + n
    if not merged:
        return '<p class="empty">No new listings in this month.</p>'
    rows = "".join(
        f'<tr><td class="t">{_e(_name(k))}</td><td class="t">{_e(_name(c))}</td><td>{n}</td></tr>'
        for (k, c), n in sorted(merged.items())
    )
    return (
        '<table><thead><tr><th class="t">List</th><th class="t">Conduct</th><th>Listings</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _sanctions_table(units: Sequence[Mapping[str, Any]]) -> str:
    merged: dict[tuple[str, str, str], int] = {}
    for u in units:
        for action, table in (
            ("Applied", u["sanctions_applied"]),
            ("Lifted", u["sanctions_lifted"]),
        ):
            for measure, by_platform in table.items():
                for platform, n in by_platform.items():
                    key = (measure, platform, action)
                    merged[key] = merged.get(key, 0) + n
    if not merged:
        return '<p class="empty">No sanction confirmations in this month.</p>'
    rows = "".join(
        f'<tr><td class="t">{_e(_name(m))}</td><td class="t"><code>{_e(p)}</code></td>'
        f'<td class="t">{a}</td><td>{n}</td></tr>'
        for (m, p, a), n in sorted(merged.items())
    )
    return (
        '<table><thead><tr><th class="t">Measure</th><th class="t">Platform</th>'
        f'<th class="t">Action</th><th>Confirmations</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _lifts(owed: Mapping[str, int]) -> str:
    return ", ".join(f"{_name(m)}: {n}" for m, n in sorted(owed.items()))


def _outstanding_table(units: Sequence[Mapping[str, Any]]) -> str:
    owing = [u for u in units if u["outstanding_confirmations"] or u["outstanding_lifts"]]
    if not owing:
        return '<p class="empty">Nothing outstanding at month end.</p>'
    rows = "".join(
        f'<tr><td class="t">{_e(_unit_label(u))}</td>'
        f'<td class="bad">{u["outstanding_confirmations"] or ""}</td>'
        f'<td class="t">{_e(_lifts(u["outstanding_lifts"]))}</td></tr>'
        for u in owing
    )
    return (
        '<table><thead><tr><th class="t">Reporting unit</th><th>Confirmations owed</th>'
        f'<th class="t">Lifts owed, by measure</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _federation(fed: Mapping[str, Any]) -> str:
    if not fed.get("available"):
        return f'<p class="empty">Not available: {_e(fed.get("note", "no data"))}</p>'
    peers = fed.get("peers", [])
    if not peers:
        return '<p class="empty">No federation peers are configured.</p>'
    rows = "".join(
        f'<tr><td class="t"><code>{_e(p["peer"])}</code></td><td>{_e(p["entries_behind"])}</td>'
        f"<td>{_e('—' if p.get('seconds_behind') is None else p['seconds_behind'])}</td>"
        f"<td>{_e(p.get('consecutive_failures', 0))}</td>"
        f"<td>{_e(p.get('forks_recorded', 0))}</td>"
        f'<td class="t">{_e(p.get("last_success_at") or "never")}</td></tr>'
        for p in peers
    )
    return (
        '<table><thead><tr><th class="t">Peer</th><th>Entries behind</th><th>Seconds behind</th>'
        '<th>Failures in a row</th><th>Forks recorded</th><th class="t">Last success</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        '<p class="muted">Observed when the report was computed '
        f"({_e(fed.get('observed_at', ''))}); not part of what a replay of the log can "
        "recompute.</p>"
    )


def _warn(n: int) -> str:
    return "warn" if n else "ok"


def _cards(totals: Mapping[str, Any]) -> str:
    applied = sum(totals["sanctions_applied_by_measure"].values())
    lifted = sum(totals["sanctions_lifted_by_measure"].values())
    return "".join(
        [
            _card(totals["new_listings_total"], "New listings", "info"),
            _card(totals["corrected_in_time"], "Corrected within the deadline", "ok"),
            _card(
                totals["corrected_late"],
                "Corrected after the deadline",
                _warn(totals["corrected_late"]),
            ),
            _card(
                totals["overdue_at_month_end"],
                "Overdue at month end",
                _warn(totals["overdue_at_month_end"]),
            ),
            _card(totals["escalated"], "Escalated", "info"),
            _card(totals["removed"], "Removed", "info"),
            _card(applied, "Sanctions applied", "info"),
            _card(lifted, "Sanctions lifted", "info"),
            _card(
                totals["outstanding_confirmations"],
                "Outstanding confirmations",
                _warn(totals["outstanding_confirmations"]),
            ),
            _card(
                totals["outstanding_lifts_total"],
                "Outstanding lifts",
                _warn(totals["outstanding_lifts_total"]),
            ),
        ]
    )


def _charts(units: Sequence[Mapping[str, Any]], totals: Mapping[str, Any]) -> str:
    overdue = _bar_chart(
        [(_unit_label(u), u["overdue_at_month_end"]) for u in units],
        color="#c0392b",
        empty="No listing was overdue at month end.",
    )
    new = _bar_chart(
        [(_unit_label(u), u["new_listings_total"]) for u in units],
        color="#1f4e79",
        empty="No new listings in this month.",
    )
    measures = _bar_chart(
        sorted(
            ((_name(m), n) for m, n in totals["sanctions_applied_by_measure"].items()),
            key=lambda r: (-r[1], r[0]),
        ),
        color="#2e7d32",
        empty="No sanction was applied in this month.",
    )
    owed = [("Confirmations owed", totals["outstanding_confirmations"])]
    owed += [(f"Lift: {_name(m)}", n) for m, n in sorted(totals["outstanding_lifts"].items())]
    outstanding = _bar_chart(owed, color="#d68910", empty="Nothing outstanding at month end.")
    return (
        '<div class="charts">'
        f'<div class="chart"><h3>Overdue at month end, by reporting unit</h3>{overdue}</div>'
        f'<div class="chart"><h3>New listings, by reporting unit</h3>{new}</div>'
        f'<div class="chart"><h3>Sanctions applied, by measure</h3>{measures}</div>'
        f'<div class="chart"><h3>Outstanding at month end</h3>{outstanding}</div>'
        "</div>"
    )


def _header(document: Mapping[str, Any], scope: str, record: str) -> str:
    period = document["period"]
    due = document.get("due_date") or "unknown (the working-day calendar lacks the year)"
    return (
        f"<header><h1>Monthly report {_e(document['month'])}</h1>"
        '<p class="meta">E-commerce blacklist and key-scrutiny list, '
        f"{_e(scope)} · issued by <code>{_e(document['issuer'])}</code></p>"
        f'<p class="meta">Period <b>{_e(period["start"][:10])}</b> to '
        f"<b>{_e(period['end'][:10])}</b> (end exclusive, {_e(period['time_zone'])})"
        f" · due <b>{_e(due)}</b></p>"
        f'<p class="meta">Computed at checkpoint <b>{_e(document["checkpoint"]["size"])}</b> '
        f"of log <code>{_e(document['log_origin'])}</code></p>"
        f"{record}</header>"
    )


def render_html(
    document: Mapping[str, Any], *, record_id: str | None = None, log_index: int | None = None
) -> str:
    units: list[Mapping[str, Any]] = list(document["units"])
    totals: Mapping[str, Any] = document["totals"]
    scope = (
        "all reporting units"
        if document["scope"] == "all"
        else f"reporting unit {document['scope']}"
    )
    active = [u for u in units if _active(u)]
    quiet = [u for u in units if not _active(u)]
    cp = document["checkpoint"]
    record = (
        f'<p class="meta">Signed record <code>{_e(record_id)}</code> '
        f"at log index {_e(log_index)}</p>"
        if record_id
        else ""
    )
    quiet_note = (
        '<p class="muted">No activity and nothing in force: '
        f"{_e(', '.join(_unit_label(u) for u in quiet))}.</p>"
        if quiet and active
        else ""
    )
    table = (
        _units_table(active, totals)
        if active
        else '<p class="empty">No activity in any reporting unit.</p>'
    )
    grace = _e(document.get("rules", {}).get("sanction_grace_days", "?"))
    sections = [
        _header(document, scope, record),
        f'<section><h2>Summary</h2><div class="cards">{_cards(totals)}</div></section>',
        f"<section><h2>Charts</h2>{_charts(units, totals)}</section>",
        f"<section><h2>By reporting unit</h2>{table}{quiet_note}</section>",
        f"<section><h2>New listings by list and conduct</h2>{_new_listings_table(units)}</section>",
        f"<section><h2>Sanctions confirmed</h2>{_sanctions_table(units)}</section>",
        "<section><h2>Outstanding sanctions</h2>"
        f'<p class="muted">After an escalation, each required platform (the platforms of '
        f"the subject's stores, or every active platform when it names none) owes a "
        f"confirmed sanction within {grace} days; after a correction or removal, every "
        f"platform owes a confirmed lift of each measure it applied within {grace} days. "
        f"Counted at month end: {totals['outstanding_confirmations']} confirmations and "
        f"{totals['outstanding_lifts_total']} lifts outstanding.</p>"
        f"{_outstanding_table(units)}</section>",
        "<section><h2>Federation health</h2>"
        f"{_federation(document.get('federation', {}))}</section>",
        "<section><h2>Verification</h2>"
        "<p>Every number above except federation health is computed only from the entries "
        f"<b>[0, {_e(cp['size'])})</b> of the log, whose checkpoint root is "
        f"<code>{_e(cp['root'])}</code>. A monitor verifies the checkpoint signature, "
        "fetches those entries (<code>AuditLog/GetEntries</code>), checks that they hash "
        "to this root, replays them and compares.</p></section>",
        f"<footer>Format {_e(document['format'])}. Generated by Alliance Gateway.</footer>",
    ]
    body = "\n".join(sections)
    title = f"Monthly report {_e(document['month'])} — {_e(scope)}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def write_report(
    folder: Path,
    stem: str,
    content: bytes,
    document: Mapping[str, Any],
    formats: Iterable[str],
    *,
    record_id: str | None = None,
    log_index: int | None = None,
) -> list[Path]:
    """Write the chosen formats as ``<stem>.json``, ``<stem>.csv`` (+ ``-sanctions.csv``)
    and ``<stem>.html``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        if fmt == "json":
            path = folder / f"{stem}.json"
            path.write_bytes(content)
            written.append(path)
        elif fmt == "csv":
            path = folder / f"{stem}.csv"
            path.write_text(render_csv(document), encoding="utf-8")
            sanctions = folder / f"{stem}-sanctions.csv"
            sanctions.write_text(render_sanctions_csv(document), encoding="utf-8")
            written += [path, sanctions]
        elif fmt == "html":
            path = folder / f"{stem}.html"
            path.write_text(
                render_html(document, record_id=record_id, log_index=log_index), encoding="utf-8"
            )
            written.append(path)
    return written
