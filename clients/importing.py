"""From one row of a list file to the statement it states, or to every problem it has.

``row_to_statement`` is the one function through which every row of every import
becomes a statement, for a dry run and for a real one alike: a row that passes it is
exactly a row the real run would sign and send. It reads each field (headers and value
words from ``clients.vocabulary``), collects every problem of the row rather than the
first, then builds the statement with the core's constructors (which run the core's
field checks) and checks the profile's role may sign it.

Fields by type (``type``: ``listing``, the default, ``status-change``, ``sanction``):

listing
    ``uscc`` or ``resident_id`` (hashed with the alliance key before it leaves this
    machine), ``name`` (enterprises only), ``stores`` (``PLATFORM_MEMBER_ID:STORE_ID``
    items separated by spaces; in JSON also a list), ``list``, ``conduct``,
    ``conduct_other``, ``region`` (a 6-digit code or a province; default the profile's),
    ``decision_ref``, ``listed_at`` (required), ``deadline``, ``summary``,
    ``legal_basis``.
status-change
    ``listing_id``, ``step``, ``effective_at`` (required), ``decision_ref``, ``reason``,
    ``decided_by``.
sanction
    ``listing_id``, ``measure``, ``measure_other``, ``action`` (default ``applied``),
    ``effective_at`` (required), ``store_id``, ``note``.

Values: a credit code or resident ID is read as text (full-width characters become
ASCII, letters upper case); a number cell in those columns is refused, because a
spreadsheet keeps only 15 digits of a number. A spreadsheet date is that day at
midnight Beijing time, a spreadsheet date and time that time in Beijing.

Time bounds (``RowContext``): ``listed_at`` and ``effective_at`` may not lie more than
``clock_skew`` after ``imported_at``; ``listed_at`` may not lie more than ``window``
(the gateway's backdating window, 30 days by default) before it unless the import is
``historical`` (an existing list brought in: ``alliance submit-file --historical``).

Historical imports: the Listing v1 format has no field that says a listing was
imported, so today a historical row is signed as an ordinary v1 listing and
``HISTORICAL_MARK_SIGNED`` is False. The v2 Listing (``historical``/``imported_at``)
replaces the ``_listing`` builder here and nothing else.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final, TypeVar

from clients import statements as build
from clients.import_messages import Column, Message, Term
from clients.vocabulary import iso_day, parse_name, region_code
from gateway.core.identifiers import (
    MemberId,
    validate_region_code,
    validate_resident_id,
    validate_uscc,
)
from gateway.core.policy import STATEMENT_SIGNERS
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    ListKind,
    SanctionAction,
    SanctionMeasure,
    Statement,
    StoreRef,
)
from gateway.errors import RecordError

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_WINDOW",
    "HISTORICAL_MARK_SIGNED",
    "KIND_FIELDS",
    "Problem",
    "RowContext",
    "RowProblems",
    "row_to_statement",
]

_E = TypeVar("_E", bound=enum.Enum)

DEFAULT_WINDOW: Final = timedelta(days=30)  # the gateway's default backdating window
CLOCK_SKEW: Final = timedelta(minutes=5)
# False while listings are signed as Listing v1, which cannot say "historical import".
HISTORICAL_MARK_SIGNED: Final = False

KIND_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "listing": frozenset(
        {
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
        }
    ),
    "status-change": frozenset(
        {"listing_id", "step", "effective_at", "decision_ref", "reason", "decided_by"}
    ),
    "sanction": frozenset(
        {"listing_id", "measure", "measure_other", "action", "effective_at", "store_id", "note"}
    ),
}
_KIND_WORDS: Final[Mapping[str, str]] = {
    "listing": "listing",
    "名单列入": "listing",
    "列入": "listing",
    "status-change": "status-change",
    "状态变更": "status-change",
    "sanction": "sanction",
    "惩戒确认": "sanction",
}
_IDENTIFIERS: Final = frozenset({"uscc", "resident_id"})
_USCC_CHARS: Final = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")
_BEIJING: Final = build.BEIJING
# Field names in the core's error messages that a row calls otherwise.
_CORE_FIELDS: Final[Mapping[str, str]] = {
    "region_code": "region",
    "correction_deadline": "deadline",
    "platform": "stores",
}


@dataclass(frozen=True, slots=True)
class RowContext:
    """What a row is read against: the profile's member, and the time bounds."""

    issuer: str
    region_code: str
    hmac_key: Callable[[], bytes]
    window: timedelta = DEFAULT_WINDOW
    clock_skew: timedelta = CLOCK_SKEW


@dataclass(frozen=True, slots=True)
class Problem:
    column: str  # the field ("" for the row as a whole)
    message: Message


class RowProblems(RecordError):
    """Everything wrong with one row."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.column}: {p.message}" for p in problems))
        self.problems = tuple(problems)


def row_to_statement(
    row: Mapping[str, object],
    ctx: RowContext,
    *,
    historical: bool,
    imported_at: datetime,
) -> Statement:
    """The statement ``row`` states, issued by ``ctx.issuer``; or ``RowProblems``.

    ``imported_at`` is when the import runs (the bounds of ``listed_at`` and
    ``effective_at`` count from it); ``historical``: the row belongs to an existing list
    being imported, so an older ``listed_at`` is allowed.
    """
    fields = _Fields(row, ctx, imported_at)
    kind_text = fields.text("type")
    kind = _KIND_WORDS.get(kind_text.casefold() if kind_text else "listing")
    if kind is None:
        known = tuple(Term(f"kind.{k}") for k in KIND_FIELDS)
        fields.fail("type", "unknown_value", value=kind_text, known=known)
        raise RowProblems(fields.problems)
    for name in sorted(set(row) - KIND_FIELDS[kind] - {"type"}):
        if _present(row[name]):
            fields.fail(name, "not_a_field", kind=Term(f"kind.{kind}"))
    build_statement: Callable[[], Statement]
    if kind == "listing":
        build_statement = _listing(fields, historical=historical)
    elif kind == "status-change":
        build_statement = _status_change(fields)
    else:
        build_statement = _sanction(fields)
    if fields.problems:
        raise RowProblems(fields.problems)
    try:
        statement = build_statement()
    except RecordError as e:
        raise RowProblems(
            [Problem(_core_column(str(e), kind), Message("invalid", {"detail": str(e)}))]
        ) from e
    role = MemberId.parse(ctx.issuer).role
    if role not in STATEMENT_SIGNERS.get(type(statement), frozenset()):
        message = Message("not_allowed", {"role": role.name.lower(), "kind": Term(f"kind.{kind}")})
        raise RowProblems([Problem("", message)])
    return statement


def _present(value: object) -> bool:
    return value not in (None, "", [])


def _core_column(error: str, kind: str) -> str:
    """``listing.region_code: ...`` -> ``region`` (a column of ``kind``), else ""."""
    path = error.split(":", 1)[0].strip()
    name = path.rsplit(".", 1)[-1]
    name = _CORE_FIELDS.get(name, name)
    return name if name in KIND_FIELDS[kind] else ""


# --- reading fields ------------------------------------------------------------------


class _Fields:
    """Reads a row's fields, collecting a problem for each one that is wrong."""

    def __init__(self, row: Mapping[str, object], ctx: RowContext, now: datetime) -> None:
        self.row = row
        self.ctx = ctx
        self.now = now
        self.problems: list[Problem] = []

    def fail(self, column: str, key: str, **params: object) -> None:
        self.problems.append(Problem(column, Message(key, params)))

    def text(self, name: str) -> str:
        """The cell as text ("" when empty or when it is a problem)."""
        value = self.row.get(name)
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, bool | time | list | dict):
            self.fail(name, "not_text")
            return ""
        if isinstance(value, int | float):
            if name in _IDENTIFIERS:
                self.fail(name, "number_id")
                return ""
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            return str(value)
        if isinstance(value, datetime):
            local = value if value.tzinfo else value.replace(tzinfo=_BEIJING)
            if value.tzinfo is None and value.time() == time(0):
                return value.date().isoformat()
            return local.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        self.fail(name, "not_text")
        return ""

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value and not self._failed(name):
            self.fail(name, "required")
        return value

    def _failed(self, name: str) -> bool:
        return any(p.column == name for p in self.problems)

    def enum(self, cls: type[_E], name: str, *, default: _E | None = None) -> _E | None:
        value = self.text(name) if default is not None else self.required(name)
        if not value:
            return default
        member = parse_name(cls, value)
        if member is None:
            self.fail(name, "unknown_value", value=value, known=tuple(cls))
        return member

    def time(self, name: str, *, required: bool) -> datetime | None:
        raw = self.required(name) if required else self.text(name)
        if not raw:
            return None
        value = iso_day(raw)
        try:
            if len(value) == 10:
                date.fromisoformat(value)
            else:
                parsed = datetime.fromisoformat(value)
                if parsed.utcoffset() is None:
                    self.fail(name, "no_offset", value=raw)
                    return None
        except ValueError:
            self.fail(name, "bad_date", value=raw)
            return None
        when = build.parse_time(value, field=name)
        if when > self.now + self.ctx.clock_skew and name != "deadline":
            self.fail(name, "in_future", value=raw)
            return None
        return when

    def uscc(self) -> str:
        raw = self.text("uscc")
        if not raw:
            return ""
        code = "".join(unicodedata.normalize("NFKC", raw).split()).upper()
        try:
            return validate_uscc(code, field="uscc")
        except RecordError:
            pass
        if len(code) != 18:
            self.fail("uscc", "uscc_length", value=raw, length=len(code))
        elif not set(code) <= _USCC_CHARS:
            self.fail("uscc", "uscc_chars", value=raw)
        else:
            self.fail("uscc", "uscc_check", value=raw)
        return ""

    def resident_id(self) -> str:
        raw = self.text("resident_id")
        if not raw:
            return ""
        number = "".join(unicodedata.normalize("NFKC", raw).split())
        if len(number) != 18:
            self.fail("resident_id", "resident_length", length=len(number))
            return ""
        try:
            return validate_resident_id(number)
        except RecordError:
            # The number is personal data: the message never repeats it.
            self.fail("resident_id", "resident_invalid")
            return ""

    def region(self) -> str | None:
        raw = self.text("region")
        if not raw:
            return None if self._failed("region") else self.ctx.region_code
        code = region_code(raw)
        try:
            if code is not None:
                return validate_region_code(code, field="region")
        except RecordError:
            pass
        self.fail("region", "bad_region", value=raw)
        return None

    def stores(self) -> list[StoreRef]:
        value = self.row.get("stores")
        if isinstance(value, list):
            items = [v for v in value if isinstance(v, str) and v.strip()]
            if len(items) != len([v for v in value if _present(v)]):
                self.fail("stores", "not_text")
                return []
        else:
            items = self.text("stores").split()
        out = []
        for item in items:
            try:
                out.append(build.parse_store(item.strip(), field="stores"))
            except RecordError:
                self.fail("stores", "bad_store", value=item)
        return out


# --- the three kinds -----------------------------------------------------------------


def _listing(f: _Fields, *, historical: bool) -> Callable[[], Statement]:
    """Read a listing's fields now; return the builder to call if they are all good.

    The only place an imported listing is built: the v2 format (with ``historical``
    and ``imported_at``) is switched on here.
    """
    stores = f.stores()
    uscc, resident = f.uscc(), f.resident_id()
    given = [n for n in ("uscc", "resident_id") if _present(f.row.get(n))]
    if len(given) != 1:
        f.fail(
            given[1] if given else "uscc",
            "one_subject",
            uscc=Column("uscc"),
            resident_id=Column("resident_id"),
        )
    name = f.text("name")
    if name and given == ["resident_id"]:
        f.fail("name", "name_for_person", uscc=Column("uscc"))
    kind = f.enum(ListKind, "list")
    conduct = f.enum(ConductType, "conduct")
    if kind is not None and conduct is not None and kind not in conduct.lists:
        expected = min(conduct.lists)
        f.fail("conduct", "wrong_list", conduct=conduct, expected=expected, list=kind)
    conduct_other = f.text("conduct_other")
    region = f.region()
    decision_ref = f.required("decision_ref")
    listed_at = f.time("listed_at", required=True)
    if listed_at is not None and not historical and listed_at < f.now - f.ctx.window:
        day = listed_at.astimezone(_BEIJING).date().isoformat()
        f.fail("listed_at", "too_old", day=day, days=f.ctx.window.days)
    deadline = f.time("deadline", required=False)
    summary, legal_basis = f.text("summary"), f.text("legal_basis")

    def listing() -> Statement:
        assert kind is not None and conduct is not None and region is not None
        if uscc:
            subject = build.company_subject(uscc, name=name, stores=stores)
        else:
            subject = build.person_subject(resident, f.ctx.hmac_key(), stores=stores)
        return build.new_listing(
            f.ctx.issuer,
            subject,
            list_kind=kind,
            conduct=conduct,
            conduct_other=conduct_other,
            decision_ref=decision_ref,
            region_code=region,
            listed_at=listed_at,
            correction_deadline=deadline,
            summary=summary,
            legal_basis=legal_basis,
        )

    return listing


def _status_change(f: _Fields) -> Callable[[], Statement]:
    listing_id = f.required("listing_id")
    step = f.enum(LifecycleStep, "step")
    effective_at = f.time("effective_at", required=True)
    decision_ref, reason, decided_by = (
        f.text("decision_ref"),
        f.text("reason"),
        f.text("decided_by"),
    )

    def status_change() -> Statement:
        assert step is not None and effective_at is not None
        return build.status_change(
            f.ctx.issuer,
            listing_id,
            step,
            effective_at=effective_at,
            decision_ref=decision_ref,
            reason=reason,
            decided_by=decided_by,
        )

    return status_change


def _sanction(f: _Fields) -> Callable[[], Statement]:
    listing_id = f.required("listing_id")
    measure = f.enum(SanctionMeasure, "measure")
    action = f.enum(SanctionAction, "action", default=SanctionAction.APPLIED)
    effective_at = f.time("effective_at", required=True)
    measure_other, store_id, note = f.text("measure_other"), f.text("store_id"), f.text("note")

    def sanction() -> Statement:
        assert measure is not None and action is not None and effective_at is not None
        return build.sanction(
            f.ctx.issuer,
            listing_id,
            measure,
            action=action,
            measure_other=measure_other,
            effective_at=effective_at,
            store_id=store_id,
            note=note,
        )

    return sanction
