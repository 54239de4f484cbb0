"""Message catalogs and locale-aware formatting for what people read.

Catalogs are gettext ``.po`` files (the sources translators edit, committed under
``<folder>/<locale>/LC_MESSAGES/<domain>.po``), compiled **in memory** with Babel when
first used: a fresh clone, an editable install and a wheel all read the same ``.po``,
and no generated ``.mo`` file exists to go stale. ``make messages`` extracts the
strings marked in the code and templates (``babel.cfg``) and updates every catalog;
``tests/unit/test_i18n.py`` fails when a catalog lacks a string or a translation.

Dates, times and numbers are formatted by Babel (CLDR data) for the locale; every time
a person reads is shown in Beijing time (Asia/Shanghai) with its zone.

This module imports only the standard library and Babel, and knows no domain: the
client CLI can keep its own catalog folder and its own small copy of the loader without
importing the server (clients never import ``gateway.ops``).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable

from babel import Locale as BabelLocale
from babel.dates import format_date, format_datetime, format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from gateway.core.workdays import REPORT_TZ

__all__ = [
    "BEIJING",
    "LOCALES",
    "CatalogFolder",
    "Locale",
    "normalize_locale",
]

# People read times in Beijing time, the zone the reporting months are counted in.
BEIJING = REPORT_TZ
# The locales every catalog has; the first is the default of documents people send.
LOCALES = ("zh_CN", "en")

_ALIASES = {"zh": "zh_CN", "zh_hans": "zh_CN", "zh_hans_cn": "zh_CN", "c": "en", "posix": "en"}


def normalize_locale(text: str) -> str | None:
    """``zh-CN``, ``zh_CN.UTF-8``, ``zh`` -> ``zh_CN``; ``en_US`` -> ``en``; a locale
    without a catalog -> None."""
    base = text.split(".", 1)[0].split("@", 1)[0].replace("-", "_").strip()
    if not base:
        return None
    key = base.lower()
    if key in _ALIASES:
        return _ALIASES[key]
    for code in LOCALES:
        # ``en_GB`` reads the English catalog; ``zh_TW`` has none (zh_CN is simplified).
        if key == code.lower() or (code == "en" and key.split("_", 1)[0] == "en"):
            return code
    return None


@dataclass(frozen=True)
class CatalogFolder:
    """The ``.po`` catalogs of one gettext domain under one folder."""

    folder: Traversable
    domain: str

    @classmethod
    def of_package(cls, package: str, folder: str, domain: str) -> CatalogFolder:
        return cls(resources.files(package).joinpath(folder), domain)

    def po_file(self, locale: str) -> Traversable:
        return self.folder.joinpath(locale, "LC_MESSAGES", f"{self.domain}.po")

    def translations(self, locale: str) -> gettext.GNUTranslations:
        """The catalog of ``locale`` compiled in memory (fuzzy entries are left out, as
        ``msgfmt`` does); cached per folder, domain and locale."""
        return _compiled(self, locale)


@lru_cache(maxsize=16)
def _compiled(catalogs: CatalogFolder, locale: str) -> gettext.GNUTranslations:
    with catalogs.po_file(locale).open("rb") as f:
        catalog = read_po(f, locale=locale, domain=catalogs.domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@dataclass(frozen=True)
class Locale:
    """One locale: its translations and Babel's formats, times in Beijing time."""

    code: str
    translations: gettext.NullTranslations = field(repr=False)

    @property
    def babel(self) -> BabelLocale:
        return BabelLocale.parse(self.code)

    @property
    def html_lang(self) -> str:
        return self.code.replace("_", "-")

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def datetime(self, value: dt.datetime) -> str:
        """A moment in Beijing time with its zone: ``2026年11月5日 10:00:00 中国标准时间``."""
        if value.tzinfo is None:
            raise ValueError("a naive datetime has no zone to convert from")
        when = format_datetime(value, "medium", tzinfo=BEIJING, locale=self.code)
        zone = format_datetime(value, "zzzz", tzinfo=BEIJING, locale=self.code)
        return f"{when} {zone}"

    def date(self, value: dt.date) -> str:
        """A calendar date (a day in Beijing): ``2026年11月13日``."""
        if isinstance(value, dt.datetime):
            value = value.astimezone(BEIJING).date()
        return format_date(value, "long", locale=self.code)

    def short_date(self, value: dt.date) -> str:
        """A compact date for tables: ``2026/11/13`` or ``11/13/2026``."""
        if isinstance(value, dt.datetime):
            value = value.astimezone(BEIJING).date()
        return format_skeleton("yMd", value, locale=self.code)

    def month(self, value: dt.date) -> str:
        """A calendar month: ``2026年10月`` or ``October 2026``."""
        if isinstance(value, dt.datetime):
            value = value.astimezone(BEIJING).date()
        return format_skeleton("yMMMM", value, locale=self.code)

    def number(self, value: int) -> str:
        return format_decimal(value, locale=self.code)
