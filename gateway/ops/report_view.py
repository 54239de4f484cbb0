"""The written report (书面材料) as plain data: sections, paragraphs, tables and bars.

One view is built from the signed report document (every count), the month's ledger
and member records from the same replay (the annex and display names; never signed),
and the working group's narrative. The HTML/PDF template and the DOCX writer both lay
out this view, so the two documents hold the same tables.

The four sections follow §VI of the governing notice (Fagaicaijin [2018] No. 716):
整体情况, 取得的实效, 经验做法, 存在的问题; the ledger (台账) is an annex. Natural
persons are masked in the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from gateway.core.report import CITY_COUNTERS, LedgerEntry
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    ListKind,
    MemberRecord,
    SanctionMeasure,
)
from gateway.ops.i18n import Locale
from gateway.ops.report_names import Names, gb2260_source
from gateway.ops.report_narrative import Block, Narrative

__all__ = ["Bar", "Column", "ReportView", "Section", "Table", "build_view", "member_name"]

# USCC registration-authority 9 (market regulation), entity type 2: 个体工商户, whose
# registered name often is a person's name.
_INDIVIDUAL_BUSINESS = "92"
_LEDGER_ID_CHARS = 12


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    """A table: cells are text (a newline is a line break inside the cell)."""

    key: str
    caption: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = ""
    total: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Bar:
    label: str
    value: str
    percent: int  # of the widest bar, 0-100


@dataclass(frozen=True)
class Chart:
    caption: str
    bars: tuple[Bar, ...]
    empty: str


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: tuple[Block, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    notes: tuple[Block, ...] = ()  # working-group text, after the generated part
    notes_title: str = ""


@dataclass(frozen=True)
class ReportView:
    lang: str
    title: str
    subtitle: str
    meta: tuple[tuple[str, str], ...]
    draft: bool
    draft_note: str
    sections: tuple[Section, ...]
    annex: Section
    verification: Section
    footer: str
    page_label: str  # "Page {page} of {pages}" with the two placeholders
    tables: tuple[Table, ...] = field(default=())

    def all_tables(self) -> tuple[Table, ...]:
        found = [t for s in (*self.sections, self.verification, self.annex) for t in s.tables]
        return tuple(found)


def member_name(member_id: str, members: Mapping[str, MemberRecord]) -> str:
    """A member's display name from its member record, else its id."""
    record = members.get(member_id)
    return record.display_name if record is not None and record.display_name else member_id


def _count(loc: Locale, n: int) -> str:
    return loc.number(n)


def _bars(rows: Sequence[tuple[str, int]], loc: Locale) -> tuple[Bar, ...]:
    shown = [(label, n) for label, n in rows if n > 0]
    top = max((n for _, n in shown), default=0)
    return tuple(Bar(label, _count(loc, n), max(1, round(100 * n / top))) for label, n in shown)


def _sum_sanctions(unit: Mapping[str, Any], key: str) -> int:
    return sum(sum(p.values()) for p in unit[key].values())


def build_view(
    document: Mapping[str, Any],
    *,
    locale: Locale,
    ledger: Sequence[LedgerEntry],
    members: Mapping[str, MemberRecord],
    narrative: Narrative | None,
    generated_at: datetime,
    record_id: str | None = None,
    log_index: int | None = None,
    draft: bool = False,
) -> ReportView:
    """The written report for ``document``; a draft (marked on every page) when asked
    or when ``narrative`` is None."""
    _ = locale.gettext
    names = Names(locale)
    units: list[Mapping[str, Any]] = list(document["units"])
    totals: Mapping[str, Any] = document["totals"]
    scope = document["scope"]
    scope_name = _("all reporting units") if scope == "all" else names.unit(scope)
    month = datetime.fromisoformat(document["period"]["start"])
    period = locale.month(month)
    new_by_list = {"BLACKLIST": 0, "KEY_SCRUTINY": 0}
    for u in units:
        for kind, by_conduct in u["new_listings"].items():
            new_by_list[kind] = new_by_list.get(kind, 0) + sum(by_conduct.values())
    applied = sum(totals["sanctions_applied_by_measure"].values())
    lifted = sum(totals["sanctions_lifted_by_measure"].values())
    platforms = sorted({p for u in units for t in u["sanctions_applied"].values() for p in t})
    n = {k: _count(locale, v) for k, v in totals.items() if isinstance(v, int)}

    overview = Section(
        key="overview",
        title=_("I. Overall situation"),
        blocks=(
            Block(
                _(
                    "In %(period)s, %(scope)s newly listed %(black)s entities on the "
                    "e-commerce blacklist and %(scrutiny)s on the key-scrutiny list. At the "
                    "end of the month %(in_force)s entities were listed, %(overdue)s of them "
                    "not corrected by their deadline."
                )
                % {
                    "period": period,
                    "scope": scope_name,
                    "black": _count(locale, new_by_list.get("BLACKLIST", 0)),
                    "scrutiny": _count(locale, new_by_list.get("KEY_SCRUTINY", 0)),
                    "in_force": n["in_force_at_month_end"],
                    "overdue": n["overdue_at_month_end"],
                }
            ),
        ),
        tables=(
            _key_figures(totals, applied, lifted, names, locale),
            _new_listings(units, names, locale),
            _cities(units, names, locale),
        ),
        charts=(
            Chart(
                _("New listings by reporting unit")
                if scope == "all"
                else _("New listings by city"),
                _bars(_new_rows(units, names, scope), locale),
                _("No new listings in this month."),
            ),
        ),
        notes=narrative.overview if narrative else (),
        notes_title=_("Notes of the working group"),
    )
    results_tables = [_sanctions(units, names, members, locale)]
    if scope == "all":
        results_tables.insert(0, _units(units, names, locale))
    results = Section(
        key="results",
        title=_("II. Results achieved"),
        blocks=(
            Block(
                _(
                    "In the month %(in_time)s listed entities corrected their conduct by the "
                    "deadline and %(late)s after it; %(removed)s were removed from the lists. "
                    "%(escalated)s entities not corrected in time were escalated to joint "
                    "sanctions; %(platforms)s platforms confirmed %(applied)s sanction "
                    "measures applied and %(lifted)s lifted."
                )
                % {
                    "in_time": n["corrected_in_time"],
                    "late": n["corrected_late"],
                    "removed": n["removed"],
                    "escalated": n["escalated"],
                    "platforms": _count(locale, len(platforms)),
                    "applied": _count(locale, applied),
                    "lifted": _count(locale, lifted),
                }
            ),
        ),
        tables=tuple(results_tables),
        charts=(
            Chart(
                _("Sanction measures applied, by measure"),
                _bars(
                    sorted(
                        (
                            (names.measure(m), c)
                            for m, c in totals["sanctions_applied_by_measure"].items()
                        ),
                        key=lambda r: (-r[1], r[0]),
                    ),
                    locale,
                ),
                _("No sanction was applied in this month."),
            ),
        ),
        notes=narrative.results if narrative else (),
        notes_title=_("Notes of the working group"),
    )
    missing = Block(_("(Draft: the working group has not written this section yet.)"))
    experience = Section(
        key="experience",
        title=_("III. Experience and practices"),
        blocks=narrative.experience if narrative else (missing,),
    )
    problems = Section(
        key="problems",
        title=_("IV. Existing problems"),
        blocks=narrative.problems if narrative else (missing,),
        notes=(
            Block(
                _(
                    "Counted from the records: at the end of the month %(overdue)s listed "
                    "entities were past their correction deadline; %(owed)s sanction "
                    "confirmations and %(lifts)s lifts were more than %(grace)s days overdue."
                )
                % {
                    "overdue": n["overdue_at_month_end"],
                    "owed": n["outstanding_confirmations"],
                    "lifts": n["outstanding_lifts_total"],
                    "grace": _count(locale, document["rules"]["sanction_grace_days"]),
                }
            ),
        ),
        notes_title=_("From the records"),
        tables=(_outstanding(units, names, locale),),
    )
    verification = _verification(document, locale, record_id, log_index, members, draft=draft)
    annex = Section(
        key="annex",
        title=_("Annex: ledger of the month's listings"),
        blocks=(
            Block(
                _(
                    "Every listing that was new, changed (a step or a sanction confirmation) "
                    "or past its correction deadline in the month, as it stood at the end of "
                    "the month. Natural persons are not named."
                )
            ),
        ),
        tables=(_ledger(ledger, names, members, locale),),
    )
    meta = [
        (_("Reporting unit"), scope_name),
        (
            _("Period"),
            _("%(start)s to %(end)s (Beijing time)")
            % {
                "start": locale.date(month),
                "end": locale.date(
                    datetime.fromisoformat(document["period"]["end"]).date() - timedelta(days=1)
                ),
            },
        ),
        (
            _("Due"),
            locale.date(date.fromisoformat(document["due_date"]))
            if document.get("due_date")
            else _("unknown: the working-day calendar lacks the year"),
        ),
        (_("Prepared by"), narrative.prepared_by if narrative else _("(draft)")),
    ]
    if narrative and narrative.contact:
        meta.append((_("Contact"), narrative.contact))
    meta.append((_("Generated"), locale.datetime(generated_at)))
    return ReportView(
        lang=locale.html_lang,
        title=_("Special governance of untrustworthiness in e-commerce: monthly report"),
        subtitle=_("%(scope)s · %(period)s") % {"scope": scope_name, "period": period},
        meta=tuple(meta),
        draft=draft or narrative is None,
        draft_note=_("DRAFT: not signed, not appended to the log"),
        sections=(overview, results, experience, problems),
        annex=annex,
        verification=verification,
        footer=_("Generated by Alliance Gateway from the signed records of its audit log."),
        page_label=_("Page {page} of {pages}"),
    )


# --- tables ----------------------------------------------------------------------------


def _key_figures(
    totals: Mapping[str, Any], applied: int, lifted: int, names: Names, loc: Locale
) -> Table:
    _ = loc.gettext
    rows = (
        (_("New listings"), totals["new_listings_total"]),
        (_("Corrected by the deadline"), totals["corrected_in_time"]),
        (_("Corrected after the deadline"), totals["corrected_late"]),
        (_("Removed from the lists"), totals["removed"]),
        (_("Withdrawn (listed in error)"), totals.get("withdrawn", 0)),
        (_("Escalated (not corrected in time)"), totals["escalated"]),
        (_("Listed at month end"), totals["in_force_at_month_end"]),
        (_("Overdue at month end"), totals["overdue_at_month_end"]),
        (_("Sanction measures applied (platform confirmations)"), applied),
        (_("Sanction measures lifted (platform confirmations)"), lifted),
        (_("Sanction confirmations overdue"), totals["outstanding_confirmations"]),
        (_("Lifts overdue"), totals["outstanding_lifts_total"]),
        (
            _("Answers: the seller has no account (not applicable)"),
            totals["not_applicable_answers"],
        ),
        (_("Correction notices served"), totals["notices_served"]),
        (_("Correction notices served late or not at all"), totals["notices_late"]),
        (_("Credit commitments signed"), totals["commitments_signed"]),
        (_("Government measures"), totals["government_measures_total"]),
        *(
            (names.government_measure(kind), n)
            for kind, n in sorted(totals["government_measures"].items())
        ),
        (_("Platform reports identified"), totals.get("identified", 0)),
        (_("Objections received"), totals.get("disputes_opened", 0)),
        (_("Objections rejected (listing upheld)"), totals.get("disputes_upheld", 0)),
        (_("Objections accepted (listing withdrawn)"), totals.get("disputes_withdrawn", 0)),
        (_("Objections open at month end"), totals.get("disputes_open_at_month_end", 0)),
        (
            _("Objections not decided in time at month end"),
            totals.get("disputes_overdue_at_month_end", 0),
        ),
        (_("Retired (publication period ended)"), totals.get("retired", 0)),
    )
    return Table(
        key="key_figures",
        caption=_("Key figures"),
        columns=(Column(_("Item")), Column(_("Count"), numeric=True)),
        rows=tuple((label, loc.number(v)) for label, v in rows),
    )


def _new_listings(units: Sequence[Mapping[str, Any]], names: Names, loc: Locale) -> Table:
    _ = loc.gettext
    merged: dict[tuple[str, str], int] = {}
    for u in units:
        for kind, by_conduct in u["new_listings"].items():
            for conduct, n in by_conduct.items():
                merged[(kind, conduct)] = merged.get((kind, conduct), 0) + n
    order = sorted(merged, key=lambda kc: (ListKind[kc[0]].value, ConductType[kc[1]].value))
    rows = tuple(
        (names.list_kind(k), names.conduct(c), loc.number(merged[(k, c)])) for k, c in order
    )
    return Table(
        key="new_listings",
        caption=_("New listings by list and conduct"),
        columns=(Column(_("List")), Column(_("Conduct")), Column(_("Count"), numeric=True)),
        rows=rows,
        empty=_("No new listings in this month."),
        total=(_("Total"), "", loc.number(sum(merged.values()))) if rows else None,
    )


def _city_columns(loc: Locale) -> tuple[Column, ...]:
    _ = loc.gettext
    labels = {
        "new_listings_total": _("New"),
        "corrected_in_time": _("Corrected in time"),
        "corrected_late": _("Corrected late"),
        "removed": _("Removed"),
        "withdrawn": _("Withdrawn"),
        "escalated": _("Escalated"),
        "overdue_at_month_end": _("Overdue at month end"),
        "in_force_at_month_end": _("Listed at month end"),
    }
    return tuple(Column(labels[k], numeric=True) for k in CITY_COUNTERS)


def _cities(units: Sequence[Mapping[str, Any]], names: Names, loc: Locale) -> Table:
    _ = loc.gettext
    rows = []
    for u in units:
        for code, counts in u.get("by_city", {}).items():
            rows.append(
                (
                    names.unit(u["unit"]),
                    names.city(code),
                    code,
                    *(loc.number(counts.get(k, 0)) for k in CITY_COUNTERS),
                )
            )
    return Table(
        key="cities",
        caption=_("By prefecture-level city (GB/T 2260 codes; names: %(source)s)")
        % {"source": gb2260_source()},
        columns=(
            Column(_("Reporting unit")),
            Column(_("City")),
            Column(_("Code")),
            *_city_columns(loc),
        ),
        rows=tuple(rows),
        empty=_("No listing in any city in this month."),
    )


def _new_rows(
    units: Sequence[Mapping[str, Any]], names: Names, scope: str
) -> list[tuple[str, int]]:
    if scope == "all":
        rows = [(names.unit(u["unit"]), int(u["new_listings_total"])) for u in units]
    else:
        rows = [
            (names.city(code), int(c["new_listings_total"]))
            for u in units
            for code, c in u.get("by_city", {}).items()
        ]
    return sorted(rows, key=lambda r: -r[1])


def _units(units: Sequence[Mapping[str, Any]], names: Names, loc: Locale) -> Table:
    _ = loc.gettext
    active = [
        u
        for u in units
        if any(u[k] for k in CITY_COUNTERS)
        or _sum_sanctions(u, "sanctions_applied")
        or _sum_sanctions(u, "sanctions_lifted")
    ]
    rows = tuple(
        (
            names.unit(u["unit"]),
            *(loc.number(u[k]) for k in CITY_COUNTERS),
            loc.number(_sum_sanctions(u, "sanctions_applied")),
        )
        for u in active
    )
    return Table(
        key="units",
        caption=_("By reporting unit (units with activity)"),
        columns=(
            Column(_("Reporting unit")),
            *_city_columns(loc),
            Column(_("Measures applied"), numeric=True),
        ),
        rows=rows,
        empty=_("No activity in any reporting unit."),
    )


def _sanctions(
    units: Sequence[Mapping[str, Any]],
    names: Names,
    members: Mapping[str, MemberRecord],
    loc: Locale,
) -> Table:
    _ = loc.gettext
    merged: dict[tuple[str, str], list[int]] = {}
    for u in units:
        for i, key in enumerate(("sanctions_applied", "sanctions_lifted")):
            for measure, by_platform in u[key].items():
                for platform, n in by_platform.items():
                    merged.setdefault((measure, platform), [0, 0])[i] += n
    order = sorted(
        merged, key=lambda mp: (SanctionMeasure[mp[0]].value, member_name(mp[1], members))
    )
    rows = tuple(
        (
            names.measure(m),
            member_name(p, members),
            loc.number(merged[(m, p)][0]),
            loc.number(merged[(m, p)][1]),
        )
        for m, p in order
    )
    return Table(
        key="sanctions",
        caption=_("Sanction measures confirmed by platforms"),
        columns=(
            Column(_("Measure")),
            Column(_("Platform")),
            Column(names.action("APPLIED"), numeric=True),
            Column(names.action("LIFTED"), numeric=True),
        ),
        rows=rows,
        empty=_("No sanction confirmations in this month."),
    )


def _outstanding(units: Sequence[Mapping[str, Any]], names: Names, loc: Locale) -> Table:
    _ = loc.gettext
    rows = tuple(
        (
            names.unit(u["unit"]),
            loc.number(u["overdue_at_month_end"]),
            loc.number(u["outstanding_confirmations"]),
            _("; ").join(
                f"{names.measure(m)} {loc.number(c)}"
                for m, c in sorted(u["outstanding_lifts"].items())
            ),
        )
        for u in units
        if u["overdue_at_month_end"] or u["outstanding_confirmations"] or u["outstanding_lifts"]
    )
    return Table(
        key="outstanding",
        caption=_("Overdue listings and sanctions owed at month end"),
        columns=(
            Column(_("Reporting unit")),
            Column(_("Overdue listings"), numeric=True),
            Column(_("Confirmations owed"), numeric=True),
            Column(_("Lifts owed, by measure")),
        ),
        rows=rows,
        empty=_("Nothing overdue or owed at month end."),
    )


def _subject(entry: LedgerEntry, loc: Locale) -> str:
    _ = loc.gettext
    subject = entry.listing.subject
    if subject is None:
        return _("(erased)")
    if subject.uscc is None:
        return _("Natural person (masked)")
    if subject.uscc.startswith(_INDIVIDUAL_BUSINESS):
        name = _("Individual business (name masked)")
    else:
        name = subject.name or _("(name not given)")
    return f"{name}\n{subject.uscc}"


def _ledger(
    ledger: Sequence[LedgerEntry],
    names: Names,
    members: Mapping[str, MemberRecord],
    loc: Locale,
) -> Table:
    _ = loc.gettext
    rows = []
    for i, e in enumerate(ledger, 1):
        listing = e.listing
        status = names.step(e.step.name)
        if e.overdue and e.step is not LifecycleStep.ESCALATED:  # escalation says it
            status = _("%(step)s, overdue") % {"step": status}
        closed = e.corrected_at or e.removed_at
        if closed is not None:
            status += "\n" + loc.short_date(closed)
        measures = "\n".join(
            _("%(measure)s (%(platform)s)")
            % {"measure": names.measure(m.name, other), "platform": member_name(p, members)}
            for p, m, other in e.measures
        )
        rows.append(
            (
                loc.number(i),
                _subject(e, loc) + "\n" + e.listing_id[:_LEDGER_ID_CHARS],
                names.list_kind(listing.list.name)
                + "\n"
                + names.conduct(listing.conduct.name, listing.conduct_other),
                names.city(listing.region_code[:4] + "00"),
                loc.short_date(listing.listed_at),
                loc.short_date(listing.deadline),
                status,
                measures or "—",
            )
        )
    return Table(
        key="ledger",
        caption=_("Ledger"),
        columns=(
            Column(_("No."), numeric=True),
            Column(_("Entity (credit code, record)")),
            Column(_("List and conduct")),
            Column(_("City")),
            Column(_("Listed")),
            Column(_("Deadline")),
            Column(_("Status at month end")),
            Column(_("Measures applied (platform)")),
        ),
        rows=tuple(rows),
        empty=_("No listing was new, changed or overdue in this month."),
    )


def _verification(
    document: Mapping[str, Any],
    loc: Locale,
    record_id: str | None,
    log_index: int | None,
    members: Mapping[str, MemberRecord],
    *,
    draft: bool = False,
) -> Section:
    _ = loc.gettext
    cp = document["checkpoint"]
    blocks = [
        Block(
            _(
                "Every count in this report except federation health is computed only from "
                "the entries [0, %(size)s) of the log %(origin)s, whose checkpoint root is "
                "%(root)s. A monitor fetches those entries, checks that they hash to this "
                "root, replays them and compares."
            )
            % {"size": cp["size"], "origin": document["log_origin"], "root": cp["root"]}
        )
    ]
    if record_id:
        blocks.append(
            Block(
                _("Signed as record %(record)s at log index %(index)s by %(issuer)s.")
                % {
                    "record": record_id,
                    "index": log_index,
                    "issuer": member_name(document["issuer"], members),
                }
            )
        )
    elif not draft:
        blocks.append(
            Block(
                _(
                    "%(issuer)s signs the report as a record of its log that names each file "
                    "of this report by its SHA-256; `alliance-gateway report --verify FILE` "
                    "checks a copy against it."
                )
                % {"issuer": member_name(document["issuer"], members)}
            )
        )
    fed = document.get("federation", {})
    peers = fed.get("peers", []) if fed.get("available") else []
    rows = tuple(
        (
            member_name(p["peer"], members),
            loc.number(p["entries_behind"]),
            "—" if p.get("seconds_behind") is None else loc.number(p["seconds_behind"]),
            loc.number(p.get("consecutive_failures", 0)),
            loc.number(p.get("forks_recorded", 0)),
            loc.datetime(datetime.fromisoformat(p["last_success_at"]))
            if p.get("last_success_at")
            else _("never"),
        )
        for p in peers
    )
    if fed.get("available"):
        empty = _("No federation peers are configured.")
    else:
        empty = _("Federation health is not available for this report.")
    return Section(
        key="verification",
        title=_("Data and verification"),
        blocks=tuple(blocks),
        tables=(
            Table(
                key="federation",
                caption=_("Federation health when the report was computed (not recomputable)"),
                columns=(
                    Column(_("Peer gateway")),
                    Column(_("Entries behind"), numeric=True),
                    Column(_("Seconds behind"), numeric=True),
                    Column(_("Failures in a row"), numeric=True),
                    Column(_("Forks recorded"), numeric=True),
                    Column(_("Last success")),
                ),
                rows=rows,
                empty=empty,
            ),
        ),
    )
