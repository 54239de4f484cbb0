"""Official names of the report's vocabulary, from data files shipped with the package.

- ``gateway/core/names.toml`` (``gateway.core.names``, shared with the client CLI): the
  32 reporting units, lists, conduct types, sanction measures, actions, lifecycle steps
  and member statuses, in Chinese (the official names, with their sources) and English.
- ``report_data/gb2260.tsv``: provincial and prefecture-level names by GB/T 2260 code,
  generated from a named, versioned source (``scripts/gen_gb2260.py``).

Names are data, not translations; the few phrases around them (a provincial-level
listing, an unknown code) come from the report's message catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

from gateway.core.names import name_tables
from gateway.errors import RecordError
from gateway.ops.i18n import LOCALES, CatalogFolder, Locale, normalize_locale

__all__ = [
    "REPORT_CATALOGS",
    "CityName",
    "Names",
    "gb2260_source",
    "name_tables",
    "report_locale",
]

# The report's message catalogs: gateway/ops/locale/<locale>/LC_MESSAGES/report.po.
REPORT_CATALOGS = CatalogFolder.of_package("gateway.ops", "locale", "report")


def report_locale(text: str = LOCALES[0]) -> Locale:
    """The report's locale for ``zh-CN``, ``zh_CN``, ``en`` … (default: Chinese)."""
    code = normalize_locale(text)
    if code is None:
        raise RecordError(
            f"--lang: no report catalog for {text!r}",
            advice=f"choose one of {', '.join(c.replace('_', '-') for c in LOCALES)}",
        )
    return Locale(code, REPORT_CATALOGS.translations(code))


_DATA = "report_data"
# Prefecture-level rows that name a kind of area rather than a city: shown after
# their province (北京市市辖区, 海南省省直辖县级行政单位).
_GENERIC = frozenset({"市辖区", "县", "市", "省直辖县级行政单位", "自治区直辖县级行政单位"})


@dataclass(frozen=True)
class CityName:
    code: str
    name: str
    current: bool
    status: str


@lru_cache(maxsize=1)
def _gb2260() -> tuple[str, Mapping[str, CityName]]:
    text = resources.files("gateway.ops").joinpath(_DATA, "gb2260.tsv").read_text("utf-8")
    source = ""
    rows: dict[str, CityName] = {}
    for line in text.splitlines():
        if line.startswith("# Source: "):
            source = line.removeprefix("# Source: ").split(",", 1)[0]
        if line.startswith("#") or line.startswith("code\t") or not line:
            continue
        code, name, status = line.split("\t")
        rows[code] = CityName(code, name, status == "current", status)
    return source, MappingProxyType(rows)


def gb2260_source() -> str:
    """The dataset the city names come from, with its version: ``python-stdnum 2.2``."""
    return _gb2260()[0]


class Names:
    """Names in one locale (Chinese official names for ``zh_CN``, English otherwise)."""

    def __init__(self, locale: Locale) -> None:
        self._locale = locale
        self._lang = "zh" if locale.code.startswith("zh") else "en"

    def _get(self, table: str, key: str) -> str:
        entry = name_tables()[table].get(key)
        return key if entry is None else entry[self._lang]

    def unit(self, code: str) -> str:
        return self._get("units", code)

    def list_kind(self, name: str) -> str:
        return self._get("lists", name)

    def _with_other(self, name: str, other: str) -> str:
        if not other:
            return name
        return self._locale.gettext("%(name)s: %(other)s") % {"name": name, "other": other}

    def conduct(self, name: str, other: str = "") -> str:
        """A conduct type; with ``OTHER``'s free text after it."""
        return self._with_other(self._get("conducts", name), other)

    def measure(self, name: str, other: str = "") -> str:
        """A sanction measure; with ``OTHER``'s free text after it."""
        return self._with_other(self._get("measures", name), other)

    def action(self, name: str) -> str:
        return self._get("actions", name)

    def government_measure(self, name: str) -> str:
        return self._get("government_measures", name)

    def step(self, name: str) -> str:
        return self._get("steps", name)

    def member_status(self, name: str) -> str:
        return self._get("member_statuses", name)

    def city(self, code: str) -> str:
        """The name of a prefecture-level code (``330100`` -> 杭州市)."""
        _ = self._locale.gettext
        unit = self.unit(code[:2])
        if code.endswith("0000"):
            return _("%(unit)s (provincial level)") % {"unit": unit}
        row = _gb2260()[1].get(code)
        if row is None:
            return _("code %(code)s (not in the GB/T 2260 data)") % {"code": code}
        name = f"{unit}{row.name}" if row.name in _GENERIC else row.name
        if not row.current:
            return _("%(name)s (former code)") % {"name": name}
        return name
