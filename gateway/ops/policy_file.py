"""The operator's policy file (TOML) for ``alliance-gateway policy set FILE``.

Keys are the ``AlliancePolicy`` fields (docs/OPERATIONS.md, "Alliance policy"); enum
values by name. Unknown keys are refused, so a typo never silently means a default.

    units_accepting_platform_reports = ["33", "44"]
    dispute_decision_working_days = 10
    notice_working_days = 5
    sanction_grace_days = 14

    [[measure_requirements]]
    list = "BLACKLIST"             # optional: any list
    conduct = "COUNTERFEIT"        # optional: any conduct
    satisfying = ["CLOSE_STORE", "RESTRICT_PUBLISHING"]

    [[publication_periods]]
    list = "BLACKLIST"             # optional: any list
    conduct = "COUNTERFEIT"        # optional: any conduct
    minimum_months = 6
    maximum_months = 36
"""

from __future__ import annotations

import enum
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from gateway.core.alliance_policy import DEFAULT_DISPUTE_DECISION_WORKING_DAYS
from gateway.core.identifiers import REPORTING_UNITS
from gateway.core.periods import DEFAULT_PERIODS
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    ListKind,
    MeasureRequirement,
    PublicationPeriod,
    SanctionMeasure,
)
from gateway.errors import ConfigError, RecordError

__all__ = ["describe_policy", "load_policy_file", "parse_policy"]

_E = TypeVar("_E", bound=enum.IntEnum)
_TOP = frozenset(
    {
        "units_accepting_platform_reports",
        "dispute_decision_working_days",
        "notice_working_days",
        "sanction_grace_days",
        "measure_requirements",
        "publication_periods",
    }
)
_REQUIREMENT = frozenset({"list", "conduct", "satisfying"})
_PERIOD = frozenset({"list", "conduct", "minimum_months", "maximum_months"})
# Placeholders: ``PolicyAdmin.set`` signs as the configured gateway, issued now.
_PLACEHOLDER_ISSUER = "spiffe://policy.invalid/gateway/unsigned"
_PLACEHOLDER_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def load_policy_file(path: Path) -> AlliancePolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the policy file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the policy file is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_policy(data, source=str(path))


def _enum_name(cls: type[_E], value: object, where: str) -> _E:
    if not isinstance(value, str) or value.upper() not in cls.__members__:
        names = ", ".join(cls.__members__)
        raise ConfigError(f"{where}: {value!r} is not one of {names}")
    return cls[value.upper()]


def _int(data: dict[str, Any], key: str, source: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{source}: {key} must be an integer")
    return value


def parse_policy(data: dict[str, Any], *, source: str = "policy") -> AlliancePolicy:
    """The policy a file states (issuer and issued_at are placeholders until signed)."""
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_TOP))})"
        )
    units = data.get("units_accepting_platform_reports", [])
    if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
        raise ConfigError(f"{source}: units_accepting_platform_reports must be a list of strings")
    for unit in units:
        if unit not in REPORTING_UNITS:
            raise ConfigError(
                f"{source}: units_accepting_platform_reports: {unit!r} is not a 2-digit "
                "reporting unit (11 Beijing … 65 Xinjiang, 66 XPCC)"
            )
    raw_requirements = data.get("measure_requirements", [])
    if not isinstance(raw_requirements, list):
        raise ConfigError(f"{source}: measure_requirements must be an array of tables")
    requirements = []
    for i, item in enumerate(raw_requirements):
        where = f"{source}: measure_requirements[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a table")
        extra = sorted(set(item) - _REQUIREMENT)
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}")
        satisfying = item.get("satisfying")
        if not isinstance(satisfying, list) or not satisfying:
            raise ConfigError(f"{where}: satisfying must name at least one measure")
        try:
            requirements.append(
                MeasureRequirement(
                    list=_enum_name(ListKind, item["list"], f"{where}.list")
                    if "list" in item
                    else None,
                    conduct=_enum_name(ConductType, item["conduct"], f"{where}.conduct")
                    if "conduct" in item
                    else None,
                    satisfying=tuple(
                        _enum_name(SanctionMeasure, m, f"{where}.satisfying") for m in satisfying
                    ),
                )
            )
        except RecordError as e:
            raise ConfigError(f"{where}: {e}") from None
    periods = _periods(data.get("publication_periods", []), source)
    try:
        return AlliancePolicy(
            issuer=_PLACEHOLDER_ISSUER,
            issued_at=_PLACEHOLDER_TIME,
            units_accepting_platform_reports=tuple(units),
            dispute_decision_working_days=_int(data, "dispute_decision_working_days", source),
            notice_working_days=_int(data, "notice_working_days", source),
            sanction_grace_days=_int(data, "sanction_grace_days", source),
            measure_requirements=tuple(requirements),
            publication_periods=periods,
        )
    except RecordError as e:
        raise ConfigError(f"{source}: {e}") from None


def _periods(raw: object, source: str) -> tuple[PublicationPeriod, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: publication_periods must be an array of tables")
    out = []
    for i, item in enumerate(raw):
        where = f"{source}: publication_periods[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a table")
        extra = sorted(set(item) - _PERIOD)
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}")
        missing = [k for k in ("minimum_months", "maximum_months") if k not in item]
        if missing:
            raise ConfigError(f"{where}: {' and '.join(missing)} required (calendar months)")
        try:
            out.append(
                PublicationPeriod(
                    list=_enum_name(ListKind, item["list"], f"{where}.list")
                    if "list" in item
                    else None,
                    conduct=_enum_name(ConductType, item["conduct"], f"{where}.conduct")
                    if "conduct" in item
                    else None,
                    minimum_months=_int(item, "minimum_months", where),
                    maximum_months=_int(item, "maximum_months", where),
                )
            )
        except RecordError as e:
            raise ConfigError(f"{where}: {e}") from None
    return tuple(out)


def describe_policy(policy: AlliancePolicy | None) -> list[str]:
    """The policy in force, one line per field, defaults spelled out."""
    if policy is None:
        return [
            "no policy signed: every field has its default",
            "units_accepting_platform_reports = all units",
            f"dispute_decision_working_days = {DEFAULT_DISPUTE_DECISION_WORKING_DAYS} (default)",
            "notice_working_days = 0 (default)",
            "sanction_grace_days = 0 (the gateway's configured grace period)",
            "measure_requirements = none (any APPLIED measure satisfies)",
            *_default_periods(),
        ]
    units = policy.units_accepting_platform_reports
    days = policy.dispute_decision_working_days
    lines = [
        f"issuer = {policy.issuer}",
        f"issued_at = {policy.issued_at.isoformat()}",
        "units_accepting_platform_reports = " + (", ".join(units) if units else "all units"),
        "dispute_decision_working_days = "
        + (f"{days}" if days else f"{DEFAULT_DISPUTE_DECISION_WORKING_DAYS} (default)"),
        f"notice_working_days = {policy.notice_working_days}",
        f"sanction_grace_days = {policy.sanction_grace_days}",
    ]
    if not policy.measure_requirements:
        lines.append("measure_requirements = none")
    for r in policy.measure_requirements:
        lines.append(
            "measure_requirement "
            f"{'any list' if r.list is None else r.list.name}/"
            f"{'any conduct' if r.conduct is None else r.conduct.name}: "
            + ", ".join(m.name for m in r.satisfying)
        )
    for p in policy.publication_periods:
        lines.append(
            "publication_period "
            f"{'any list' if p.list is None else p.list.name}/"
            f"{'any conduct' if p.conduct is None else p.conduct.name}: "
            f"{p.minimum_months} to {p.maximum_months} months"
        )
    lines.extend(_default_periods())
    return lines


def _default_periods() -> list[str]:
    return [
        f"publication_period {kind.name}/any conduct (default): {p.minimum_months} to "
        f"{p.maximum_months} months"
        for kind, p in DEFAULT_PERIODS.items()
    ]
