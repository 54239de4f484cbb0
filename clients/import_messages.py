"""What an import says about a file and its rows, in English and in Chinese (zh-CN).

Every sentence lives in the table below, keyed by a message id, its English text the
gettext msgid; the Chinese is in the CLI's catalog
(``clients/locale/zh_CN/LC_MESSAGES/alliance.po``, ``clients.i18n``). Code builds a
``Message`` (id and parameters) and renders it in the user's language only when it is
shown.

The user's language: the first of ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` that is
set; Chinese (``zh-CN``) when it starts with ``zh``, else English.

Parameters render by type: an enum member by its name in the language
(``vocabulary.display_name``), a ``Column`` by the column's first Chinese header or
its English field name, a ``Term`` by its entry in the table, a tuple as a list.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from clients import i18n
from clients.i18n import N_
from clients.vocabulary import COLUMNS, display_name
from gateway.errors import RecordError

__all__ = [
    "LANGUAGES",
    "Column",
    "ImportFileError",
    "Language",
    "Message",
    "Term",
    "current_language",
    "placeholders",
    "table",
    "user_language",
]

Language = Literal["en", "zh-CN"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "zh-CN")

_EN: Final[Mapping[str, str]] = MappingProxyType(
    {
        # A row's fields.
        "required": N_("required"),
        "not_text": N_("must be text"),
        "number_id": N_(
            "the cell holds a number: a spreadsheet keeps only 15 digits of a number, so an "
            "18-character code may have been changed; format the column as text and enter "
            "the codes again"
        ),
        "unknown_value": N_("'{value}' is not one of: {known}"),
        "uscc_length": N_(
            "'{value}' is not a Unified Social Credit Code: {length} characters, not 18"
        ),
        "uscc_chars": N_(
            "'{value}' is not a Unified Social Credit Code: it holds characters no code has "
            "(I, O, S, V, Z, punctuation)"
        ),
        "uscc_check": N_(
            "'{value}' is not a valid Unified Social Credit Code: a check character is wrong "
            "(a typing error?)"
        ),
        "resident_length": N_("not a resident ID number: {length} characters, not 18"),
        "resident_invalid": N_(
            "not a valid resident ID number: wrong check character or birth date"
        ),
        "bad_date": N_(
            "'{value}' is not a date: write 2026-10-01, 2026/10/1 or 2026年10月1日 "
            "(or an ISO 8601 time with an offset)"
        ),
        "no_offset": N_(
            "'{value}' is a time without a UTC offset: write e.g. 2026-10-01T09:30:00+08:00, "
            "or a plain date"
        ),
        "in_future": N_("'{value}' is in the future"),
        "too_old": N_(
            "listed on {day}, more than {days} days ago (the gateway's backdating window): "
            "an older list goes in as a historical import (--historical)"
        ),
        "bad_region": N_("'{value}' is neither a 6-digit region code nor a province"),
        "one_subject": N_("give exactly one of {uscc} and {resident_id}"),
        "name_for_person": N_("a name is only for enterprises (with {uscc}), never for persons"),
        "bad_store": N_("'{value}' is not PLATFORM_MEMBER_ID:STORE_ID"),
        "not_a_field": N_("not a field of a {kind} row"),
        "unknown_field": N_("unknown field"),
        "repeated_field": N_("'{first}' and '{second}' both mean {field}"),
        "wrong_list": N_("{conduct} is a conduct of list {expected}, not of list {list}"),
        "not_allowed": N_("a member with role {role} may not sign a {kind}"),
        "invalid": N_("{detail}"),
        # A row as a whole.
        "cells": N_("{cells} cells, but the header has {columns} columns"),
        "headerless": N_("a value in a column without a header"),
        "bad_json": N_("not valid JSON: {detail}"),
        "not_object": N_("a line must hold one JSON object"),
        "bad_csv": N_("the CSV breaks off here: {detail}"),
        "refused": N_("the gateway refused it ({status}): {detail}"),
        # Terms used inside messages.
        "kind.listing": N_("listing"),
        "kind.status-change": "status-change",
        "kind.sanction": N_("sanction"),
        # The file.
        "no_format": N_("cannot tell the format of {name}"),
        "format_advice": N_("name the file .csv, .xlsx or .jsonl, or pass --format csv|xlsx|jsonl"),
        "cannot_open": N_("cannot open {path}: {detail}"),
        "not_encoding": N_("{name} is not {encoding} text (byte {offset})"),
        "no_encoding": N_("{name} is neither UTF-8 nor GB18030 text (byte {offset})"),
        "utf16": N_("{name} is UTF-16 text"),
        "encoding_advice": N_(
            "save the file as 'CSV UTF-8' (or CSV in GBK/GB18030), or name its encoding "
            "with --encoding"
        ),
        "xlsx_unreadable": N_("{name} cannot be read as an XLSX workbook: {detail}"),
        "xlsx_advice": N_(
            "save it as an Excel workbook (.xlsx); the older .xls format is not read"
        ),
        "no_sheet": N_("{name} has no sheet '{sheet}'"),
        "sheet_advice": N_("its sheets are: {sheets}"),
        "unknown_column": N_("line {line}: unknown column '{label}'"),
        "column_advice": N_("columns are the fields ({fields}) or their Chinese headers"),
        "repeated_column": N_("line {line}: columns '{first}' and '{second}' both mean {field}"),
        "repeated_advice": N_("keep one of the two columns"),
        # What the command prints.
        "report.line": N_("line"),
        "report.column": N_("column"),
        "report.reason": N_("reason"),
        "report.entry": N_("line {line}, {column}: {reason}"),
        "report.entry_row": N_("line {line}: {reason}"),
        "summary": N_(
            "{total} row(s): {stored} stored, {duplicates} duplicate(s), {refused} refused"
        ),
        "summary_dry": N_(
            "{total} row(s): {valid} valid, {refused} with problems; dry run, nothing was submitted"
        ),
        "report_written": N_("row-by-row report written to {path}"),
        "historical_unmarked": N_(
            "note: {count} listing(s) were imported as historical; this client signs "
            "Listing v1, which cannot yet say so in the record"
        ),
        "progress.stored": N_("stored"),
        "progress.duplicates": N_("dup"),
        "progress.refused": N_("refused"),
    }
)


def _code(language: Language) -> i18n.Code:
    return "zh_CN" if language == "zh-CN" else "en"


def _template(key: str, language: Language) -> str:
    return i18n.translations(_code(language)).gettext(_EN[key])


def table(language: Language) -> Mapping[str, str]:
    """The messages in ``language`` (id -> template), from the CLI's catalog."""
    return MappingProxyType({key: _template(key, language) for key in _EN})


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def user_language(environ: Mapping[str, str] | None = None) -> Language:
    """The environment's language (``clients.i18n.user_locale``)."""
    return "zh-CN" if i18n.user_locale(None, environ) == "zh_CN" else "en"


def current_language() -> Language:
    """The language the CLI speaks (``alliance --lang``, else the environment's)."""
    return "zh-CN" if i18n.current() == "zh_CN" else "en"


@dataclass(frozen=True, slots=True)
class Column:
    """A parameter naming a column by its field: 统一社会信用代码 in Chinese, uscc in English."""

    field: str


@dataclass(frozen=True, slots=True)
class Term:
    """A parameter that is itself an entry of the message table."""

    key: str


def _render(value: object, language: Language) -> str:
    if isinstance(value, enum.Enum):
        return display_name(value, language)
    if isinstance(value, Column):
        labels = COLUMNS.get(value.field, ())
        return labels[0] if language == "zh-CN" and labels else value.field
    if isinstance(value, Term):
        return _template(value.key, language)
    if isinstance(value, tuple):
        # Not 、: one conduct's Chinese name holds it.
        return ("，" if language == "zh-CN" else ", ").join(_render(v, language) for v in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Message:
    """A message id and its parameters; the text comes from the table at display time."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.key in _EN, f"no message {self.key!r}"

    def text(self, language: Language = "en") -> str:
        params = {k: _render(v, language) for k, v in self.params.items()}
        return _template(self.key, language).format(**params)

    def __str__(self) -> str:
        return self.text()


class ImportFileError(RecordError):
    """The file as a whole cannot be imported (nothing was read or sent)."""

    def __init__(self, message: Message, advice: Message | None = None) -> None:
        super().__init__(message.text(), advice=advice.text() if advice else None)
        self.what = message
        self.advice_message = advice

    def text(self, language: Language) -> tuple[str, str | None]:
        """The error and its advice in ``language`` (advice None: the default advice)."""
        advice = self.advice_message.text(language) if self.advice_message else None
        return self.what.text(language), advice
