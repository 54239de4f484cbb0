"""The member CLI's language: gettext catalogs, official names, Beijing time.

Catalogs are gettext ``.po`` files under ``clients/locale/<locale>/LC_MESSAGES/
alliance.po`` (the sources translators edit), compiled in memory by Babel when first
used, as the server's report catalogs are (``gateway/ops/i18n.py``; clients never import
the server, so this is the client's own small loader). ``make messages`` extracts the
strings marked in ``clients/`` (``babel-client.cfg``) and updates both catalogs;
``tests/unit/test_i18n_client.py`` fails when one lacks a string or a translation.

The language: ``alliance --lang zh-CN|en``, else the first of ``LC_ALL``,
``LC_MESSAGES`` and ``LANG`` that is set; Chinese (``zh_CN``) when it starts with
``zh``, English otherwise. ``use()`` sets it for the process (the CLI does once, before
building its parser); ``_()`` translates with it.

Units, lists, conduct types, measures, actions and steps are shown by their official
names (``gateway/core/names.toml``, shared with the report). Every time a person reads
is Beijing time with its zone; JSON output stays RFC 3339 in UTC, for machines.
"""

from __future__ import annotations

import datetime as dt
import enum
import gettext
import io
import os
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Final, Literal, TextIO
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from clients.statements import enum_text
from gateway.core.names import official_name
from gateway.errors import RecordError

__all__ = [
    "BEIJING",
    "DOMAIN",
    "LOCALES",
    "N_",
    "Code",
    "_",
    "current",
    "day",
    "error_lines",
    "moment",
    "name",
    "ngettext",
    "parse_lang",
    "table",
    "translations",
    "unit_name",
    "use",
    "user_locale",
]

BEIJING: Final = ZoneInfo("Asia/Shanghai")
DOMAIN: Final = "alliance"
Code = Literal["zh_CN", "en"]
LOCALES: Final[tuple[Code, ...]] = ("zh_CN", "en")


def parse_lang(text: str) -> Code | None:
    """``zh-CN``, ``zh_CN.UTF-8``, ``zh`` -> ``zh_CN``; ``en``, ``en_US``, ``C`` -> ``en``;
    anything else None."""
    base = text.split(".", 1)[0].split("@", 1)[0].replace("-", "_").strip().lower()
    if base in ("zh", "zh_cn", "zh_hans", "zh_hans_cn"):
        return "zh_CN"
    if base in ("c", "posix") or base == "en" or base.startswith("en_"):
        return "en"
    return None


def user_locale(flag: str | None = None, environ: Mapping[str, str] | None = None) -> Code:
    """The flag's language, else the environment's (see the module docstring)."""
    if flag:
        code = parse_lang(flag)
        if code is None:
            raise RecordError(
                f"--lang: no catalog for {flag!r}", advice="choose zh-CN (中文) or en (English)"
            )
        return code
    env = os.environ if environ is None else environ
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(variable, "")
        if value:
            return "zh_CN" if value.lower().startswith("zh") else "en"
    return "en"


@lru_cache(maxsize=4)
def translations(code: Code) -> gettext.GNUTranslations:
    """The catalog of ``code`` compiled in memory (fuzzy entries are left out)."""
    po = resources.files("clients").joinpath("locale", code, "LC_MESSAGES", f"{DOMAIN}.po")
    with po.open("rb") as f:
        catalog = read_po(f, locale=code, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class _State:
    code: Code = "en"


def use(code: Code) -> None:
    """Speak ``code`` from now on (the CLI calls it once, before anything is printed)."""
    _State.code = code


def current() -> Code:
    return _State.code


def _(message: str) -> str:
    """``message`` in the current language."""
    return translations(_State.code).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_State.code).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog; translated later, where it is shown."""
    return message


def _lang(code: Code | None) -> str:
    return "zh" if (code or _State.code) == "zh_CN" else "en"


def name(member: enum.Enum, code: Code | None = None) -> str:
    """An enum member as people read it: in Chinese its official name (黑名单, 刷单炒信,
    关闭店铺); in English the word the CLI accepts (``blacklist``, ``close-store``)."""
    if _lang(code) == "zh":
        return official_name(member, "zh")
    return enum_text(member)


def unit_name(region_code: str, code: Code | None = None) -> str:
    """A region code with its reporting unit: ``330100 浙江省``, ``330100 Zhejiang``."""
    unit = official_name(region_code[:2], _lang(code), "units")
    return f"{region_code} {unit}" if unit != region_code[:2] else region_code


def moment(value: dt.datetime, code: Code | None = None) -> str:
    """A moment for a table: Beijing time with its offset, ``2026-11-01 00:30 +08:00``."""
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no zone to convert from")
    return format_datetime(
        value, "yyyy-MM-dd HH:mm xxx", tzinfo=BEIJING, locale=code or _State.code
    )


def day(value: dt.datetime) -> str:
    """The calendar day in Beijing of a moment, ``2026-11-01``."""
    return value.astimezone(BEIJING).date().isoformat()


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Rows as columns padded to their widths on the screen (Chinese is twice as wide),
    two spaces apart."""
    widths = [max(width(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (c + " " * (w - width(c)) for c, w in zip(row, widths, strict=True))
        out.write("  ".join(cells).rstrip() + "\n")


def error_lines(message: str, advice: str, detail: str | None = None) -> str:
    """``error: …``, ``hint: …`` and, for a translated refusal, the gateway's own words."""
    lines = [_("error: %(message)s") % {"message": message}]
    lines.append(_("hint: %(advice)s") % {"advice": advice})
    if detail is not None:
        lines.append(_("detail: %(detail)s") % {"detail": detail})
    return "\n".join(lines) + "\n"
