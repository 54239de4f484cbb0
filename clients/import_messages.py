"""What an import says about a file and its rows, in English and in Chinese (zh-CN).

Every sentence lives in the two tables below, keyed by a message id; code builds a
``Message`` (id and parameters) and renders it in the user's language only when it is
shown. The English text is written as a gettext msgid would be, so the two tables can
be replaced by a message catalog without touching the callers.

The user's language: the first of ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` that is
set; Chinese (``zh-CN``) when it starts with ``zh``, else English.

Parameters render by type: an enum member by its name in the language
(``vocabulary.display_name``), a ``Column`` by the column's first Chinese header or
its English field name, a ``Term`` by its entry in the table, a tuple as a list.
"""

from __future__ import annotations

import enum
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from clients.vocabulary import COLUMNS, display_name
from gateway.errors import RecordError

__all__ = [
    "LANGUAGES",
    "Column",
    "ImportFileError",
    "Language",
    "Message",
    "Term",
    "placeholders",
    "table",
    "user_language",
]

Language = Literal["en", "zh-CN"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "zh-CN")

_EN: Final[Mapping[str, str]] = MappingProxyType(
    {
        # A row's fields.
        "required": "required",
        "not_text": "must be text",
        "number_id": (
            "the cell holds a number: a spreadsheet keeps only 15 digits of a number, so an "
            "18-character code may have been changed; format the column as text and enter "
            "the codes again"
        ),
        "unknown_value": "'{value}' is not one of: {known}",
        "uscc_length": (
            "'{value}' is not a Unified Social Credit Code: {length} characters, not 18"
        ),
        "uscc_chars": (
            "'{value}' is not a Unified Social Credit Code: it holds characters no code has "
            "(I, O, S, V, Z, punctuation)"
        ),
        "uscc_check": (
            "'{value}' is not a valid Unified Social Credit Code: a check character is wrong "
            "(a typing error?)"
        ),
        "resident_length": "not a resident ID number: {length} characters, not 18",
        "resident_invalid": "not a valid resident ID number: wrong check character or birth date",
        "bad_date": (
            "'{value}' is not a date: write 2026-10-01, 2026/10/1 or 2026年10月1日 "
            "(or an ISO 8601 time with an offset)"
        ),
        "no_offset": (
            "'{value}' is a time without a UTC offset: write e.g. 2026-10-01T09:30:00+08:00, "
            "or a plain date"
        ),
        "in_future": "'{value}' is in the future",
        "too_old": (
            "listed on {day}, more than {days} days ago (the gateway's backdating window): "
            "an older list goes in as a historical import (--historical)"
        ),
        "bad_region": "'{value}' is neither a 6-digit region code nor a province",
        "one_subject": "give exactly one of {uscc} and {resident_id}",
        "name_for_person": "a name is only for enterprises (with {uscc}), never for persons",
        "bad_store": "'{value}' is not PLATFORM_MEMBER_ID:STORE_ID",
        "not_a_field": "not a field of a {kind} row",
        "unknown_field": "unknown field",
        "repeated_field": "'{first}' and '{second}' both mean {field}",
        "wrong_list": "{conduct} is a conduct of list {expected}, not of list {list}",
        "not_allowed": "a member with role {role} may not sign a {kind}",
        "invalid": "{detail}",
        # A row as a whole.
        "cells": "{cells} cells, but the header has {columns} columns",
        "headerless": "a value in a column without a header",
        "bad_json": "not valid JSON: {detail}",
        "not_object": "a line must hold one JSON object",
        "bad_csv": "the CSV breaks off here: {detail}",
        "refused": "the gateway refused it ({status}): {detail}",
        # Terms used inside messages.
        "kind.listing": "listing",
        "kind.status-change": "status-change",
        "kind.sanction": "sanction",
        # The file.
        "no_format": "cannot tell the format of {name}",
        "format_advice": "name the file .csv, .xlsx or .jsonl, or pass --format csv|xlsx|jsonl",
        "cannot_open": "cannot open {path}: {detail}",
        "not_encoding": "{name} is not {encoding} text (byte {offset})",
        "no_encoding": "{name} is neither UTF-8 nor GB18030 text (byte {offset})",
        "utf16": "{name} is UTF-16 text",
        "encoding_advice": (
            "save the file as 'CSV UTF-8' (or CSV in GBK/GB18030), or name its encoding "
            "with --encoding"
        ),
        "xlsx_unreadable": "{name} cannot be read as an XLSX workbook: {detail}",
        "xlsx_advice": "save it as an Excel workbook (.xlsx); the older .xls format is not read",
        "no_sheet": "{name} has no sheet '{sheet}'",
        "sheet_advice": "its sheets are: {sheets}",
        "unknown_column": "line {line}: unknown column '{label}'",
        "column_advice": "columns are the fields ({fields}) or their Chinese headers",
        "repeated_column": "line {line}: columns '{first}' and '{second}' both mean {field}",
        "repeated_advice": "keep one of the two columns",
        # What the command prints.
        "report.line": "line",
        "report.column": "column",
        "report.reason": "reason",
        "report.entry": "line {line}, {column}: {reason}",
        "report.entry_row": "line {line}: {reason}",
        "summary": (
            "{total} row(s): {stored} stored, {duplicates} duplicate(s), {refused} refused"
        ),
        "summary_dry": (
            "{total} row(s): {valid} valid, {refused} with problems; dry run, nothing was submitted"
        ),
        "report_written": "row-by-row report written to {path}",
        "historical_unmarked": (
            "note: {count} listing(s) were imported as historical; this client signs "
            "Listing v1, which cannot yet say so in the record"
        ),
        "progress.stored": "stored",
        "progress.duplicates": "dup",
        "progress.refused": "refused",
    }
)

_ZH_CN: Final[Mapping[str, str]] = MappingProxyType(
    {
        "required": "必填，不能为空",
        "not_text": "应为文本",
        "number_id": (
            "单元格为数字格式：表格软件只保留数字的15位有效数字，18位代码可能已被改变；"
            "请将该列设为文本格式后重新录入"
        ),
        "unknown_value": "“{value}”不是可用的取值（可用：{known}）",
        "uscc_length": "“{value}”不是统一社会信用代码：应为18位，实为{length}位",
        "uscc_chars": (
            "“{value}”不是统一社会信用代码：含有代码中不会出现的字符（I、O、S、V、Z或标点）"
        ),
        "uscc_check": "“{value}”不是有效的统一社会信用代码：校验位错误（可能录入有误）",
        "resident_length": "不是身份证号：应为18位，实为{length}位",
        "resident_invalid": "不是有效的身份证号：校验位或出生日期错误",
        "bad_date": (
            "“{value}”不是日期：请写作2026-10-01、2026/10/1或2026年10月1日"
            "（或带时区的ISO 8601时间）"
        ),
        "no_offset": "“{value}”是不带时区的时间：请写作如2026-10-01T09:30:00+08:00，或只写日期",
        "in_future": "“{value}”晚于当前时间",
        "too_old": (
            "列入日期{day}早于{days}天的回溯期限：较早的名单须作为历史名单导入（--historical）"
        ),
        "bad_region": "“{value}”既不是6位行政区划代码，也不是省级行政区名称",
        "one_subject": "{uscc}与{resident_id}须填且只填一项",
        "name_for_person": "只有企业（填写{uscc}）可填写名称，自然人不得填写",
        "bad_store": "“{value}”的格式应为 平台成员ID:店铺ID",
        "not_a_field": "不是{kind}记录的字段",
        "unknown_field": "未知字段",
        "repeated_field": "“{first}”与“{second}”含义相同（{field}）",
        "wrong_list": "“{conduct}”属于{expected}，不属于{list}",
        "not_allowed": "角色为{role}的成员无权签署{kind}记录",
        "invalid": "记录无效：{detail}",
        "cells": "本行有{cells}个单元格，而表头有{columns}列",
        "headerless": "没有表头的列中有值",
        "bad_json": "不是有效的JSON：{detail}",
        "not_object": "每行须为一个JSON对象",
        "bad_csv": "CSV在此处中断：{detail}",
        "refused": "网关拒绝（{status}）：{detail}",
        "kind.listing": "名单列入",
        "kind.status-change": "状态变更",
        "kind.sanction": "惩戒确认",
        "no_format": "无法判断{name}的格式",
        "format_advice": "请将文件命名为.csv、.xlsx或.jsonl，或用--format csv|xlsx|jsonl指明",
        "cannot_open": "无法打开{path}：{detail}",
        "not_encoding": "{name}不是{encoding}编码的文本（第{offset}字节）",
        "no_encoding": "{name}既不是UTF-8也不是GB18030编码的文本（第{offset}字节）",
        "utf16": "{name}是UTF-16编码的文本",
        "encoding_advice": "请另存为“CSV UTF-8”（或GBK/GB18030编码的CSV），或用--encoding指明编码",
        "xlsx_unreadable": "无法将{name}作为XLSX工作簿读取：{detail}",
        "xlsx_advice": "请另存为Excel工作簿（.xlsx）；不支持旧的.xls格式",
        "no_sheet": "{name}中没有工作表“{sheet}”",
        "sheet_advice": "其中的工作表有：{sheets}",
        "unknown_column": "第{line}行：无法识别的列“{label}”",
        "column_advice": "列名可用字段名（{fields}）或对应的中文表头",
        "repeated_column": "第{line}行：列“{first}”与“{second}”含义相同（{field}）",
        "repeated_advice": "请只保留其中一列",
        "report.line": "行号",
        "report.column": "列",
        "report.reason": "原因",
        "report.entry": "第{line}行，{column}：{reason}",
        "report.entry_row": "第{line}行：{reason}",
        "summary": "共{total}行：新存入{stored}行，重复{duplicates}行，被拒绝{refused}行",
        "summary_dry": "共{total}行：{valid}行有效，{refused}行有问题；试运行，未提交任何记录",
        "report_written": "逐行报告已写入{path}",
        "historical_unmarked": (
            "注意：{count}条名单作为历史名单导入；本客户端签署的是Listing v1，"
            "记录中尚不能标明“历史导入”"
        ),
        "progress.stored": "存入",
        "progress.duplicates": "重复",
        "progress.refused": "拒绝",
    }
)

_TABLES: Final[Mapping[Language, Mapping[str, str]]] = MappingProxyType(
    {"en": _EN, "zh-CN": _ZH_CN}
)


def table(language: Language) -> Mapping[str, str]:
    """The message table of ``language`` (id -> template)."""
    return _TABLES[language]


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def user_language(environ: Mapping[str, str] | None = None) -> Language:
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "zh-CN" if value.lower().startswith("zh") else "en"
    return "en"


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
        return _TABLES[language][value.key]
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
        return _TABLES[language][self.key].format(**params)

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
