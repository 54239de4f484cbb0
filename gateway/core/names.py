"""Official names of the records' fixed vocabulary, in Chinese and English.

``names.toml`` (next to this module) names the 32 reporting units, the lists, conduct
types, sanction measures, actions, lifecycle steps and member statuses, keyed by the
wire enum names of ``gateway.core.statements`` and the unit codes of
``gateway.core.identifiers``, with the sources of the Chinese names. It is data, not a
translation: the report (``gateway.ops.report_names``) and the member's CLI
(``clients.i18n``) read the same file, so a name is written once.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

__all__ = ["TABLE_OF", "name_tables", "official_name"]

# The table of names.toml that names each enum's members (by class name, so that this
# module needs no import of the statements).
TABLE_OF: Mapping[str, str] = MappingProxyType(
    {
        "ListKind": "lists",
        "ConductType": "conducts",
        "SanctionMeasure": "measures",
        "SanctionAction": "actions",
        "LifecycleStep": "steps",
        "MemberStatus": "member_statuses",
        "GovernmentMeasureKind": "government_measures",
    }
)


@lru_cache(maxsize=1)
def name_tables() -> Mapping[str, Mapping[str, Mapping[str, str]]]:
    """``names.toml`` as ``{table: {key: {"zh": …, "en": …}}}`` (without ``sources``)."""
    text = resources.files("gateway.core").joinpath("names.toml").read_text("utf-8")
    data = tomllib.loads(text)
    data.pop("sources", None)
    return MappingProxyType(data)


def official_name(value: enum.Enum | str, lang: str, table: str = "") -> str:
    """The name of an enum member (or of ``value`` in ``table``, e.g. a unit code in
    ``units``) in ``lang`` (``zh`` or ``en``); the key itself when the table lacks it."""
    if isinstance(value, enum.Enum):
        table = TABLE_OF[type(value).__name__]
        key = value.name
    else:
        key = value
    entry = name_tables()[table].get(key)
    return key if entry is None else entry[lang]
