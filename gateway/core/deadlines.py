"""Correction deadlines: the rule table, and when a listing is overdue.

The governing notice gives a listed entity 3 calendar months to correct its conduct.
The period is configurable per list and per conduct (a frozen ``DeadlineRules`` table;
the most specific entry wins), but it must not make federated gateways disagree on who
is overdue. So the rule is applied **by the issuing side**:

- the issuer (the client library) writes the rule's deadline into the signed
  ``Listing.correction_deadline``;
- a listing without one falls back to the protocol's fixed default, ``listed_at`` + 3
  calendar months (``Listing.deadline``), which every gateway computes alike;
- the gateway that first accepts a listing from a member refuses a deadline later than
  its own rule allows (``DeadlineRules.check``), so an issuer cannot escape escalation
  by signing a far-away deadline. Shorter deadlines are accepted. Records replicated
  from a peer are never re-judged by the local table: the origin gateway applied its
  rule, and a second opinion would make logs diverge.

A listing is **overdue** at ``t`` when it is in force (neither corrected nor removed)
and ``t`` is strictly after its deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from gateway.core.fold import in_force_step
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    add_months,
)
from gateway.errors import ConfigError, RecordError

__all__ = [
    "DEFAULT_RULES",
    "PROTOCOL_DEFAULT_MONTHS",
    "DeadlineKey",
    "DeadlineRules",
    "deadline_of",
    "is_overdue",
]

# Listing.correction_deadline unset means listed_at + this many calendar months.
PROTOCOL_DEFAULT_MONTHS = 3
_MAX_MONTHS = 120

# (list, conduct); conduct None is the list's default.
DeadlineKey = tuple[ListKind, ConductType | None]


@dataclass(frozen=True, slots=True)
class DeadlineRules:
    """Months to correct, per list and optionally per conduct; the most specific wins.

    Every list needs a default entry ``(list, None)``, so each listing has a rule.
    """

    months: Mapping[DeadlineKey, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        table: dict[DeadlineKey, int] = {}
        for key, months in dict(self.months).items():
            kind, conduct = _key(key)
            if isinstance(months, bool) or not isinstance(months, int):
                raise ConfigError(f"deadline_rules: {_name(key)}: months must be an integer")
            if not 1 <= months <= _MAX_MONTHS:
                raise ConfigError(
                    f"deadline_rules: {_name(key)}: months must be 1 to {_MAX_MONTHS}, got {months}"
                )
            if conduct is not None and kind not in conduct.lists:
                raise ConfigError(
                    f"deadline_rules: conduct {conduct.name} is not on list {kind.name}"
                )
            table[(kind, conduct)] = months
        missing = [k.name for k in ListKind if (k, None) not in table]
        if missing:
            raise ConfigError(f"deadline_rules: no default for list(s) {', '.join(missing)}")
        object.__setattr__(self, "months", MappingProxyType(table))

    def months_for(self, kind: ListKind, conduct: ConductType) -> int:
        specific = self.months.get((kind, conduct))
        return specific if specific is not None else self.months[(kind, None)]

    def deadline_for(self, kind: ListKind, conduct: ConductType, listed_at: datetime) -> datetime:
        """The deadline an issuer should sign: ``listed_at`` + the rule's months."""
        return add_months(listed_at, self.months_for(kind, conduct))

    def check(self, listing: Listing) -> None:
        """Refuse a listing whose deadline is later than this table allows.

        Applied where a member first submits a listing, never to replicated records.
        """
        allowed = self.deadline_for(listing.list, listing.conduct, listing.listed_at)
        if listing.deadline > allowed:
            months = self.months_for(listing.list, listing.conduct)
            which = "correction_deadline" if listing.correction_deadline else "the default"
            raise RecordError(
                f"listing.correction_deadline: {which} {listing.deadline.isoformat()} is "
                f"later than listed_at + {months} months ({allowed.isoformat()}), the "
                f"longest this alliance allows for {listing.list.name}/{listing.conduct.name}",
                advice=f"set correction_deadline at most {months} calendar months after "
                "listed_at, counted on the calendar of UTC+08:00 (PROTOCOL.md §3, Listing); "
                "Compliance/GetDeadlineRules returns the rules in force",
            )

    @classmethod
    def parse(cls, text: str) -> DeadlineRules:
        """Parse ``"BLACKLIST=3, KEY_SCRUTINY=6, BLACKLIST/COUNTERFEIT=2"``.

        Entries override ``DEFAULT_RULES``; an empty string is the defaults.
        """
        table: dict[DeadlineKey, int] = dict(DEFAULT_RULES.months)
        for raw in text.replace(";", ",").split(","):
            item = raw.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"deadline_rules: {item!r} is not LIST[/CONDUCT]=MONTHS")
            list_name, _, conduct_name = name.strip().upper().partition("/")
            try:
                kind = ListKind[list_name]
                conduct = ConductType[conduct_name] if conduct_name else None
            except KeyError:
                raise ConfigError(
                    f"deadline_rules: {name.strip()!r}: unknown list or conduct (lists: "
                    f"{', '.join(k.name for k in ListKind)}; conducts: ConductType names)"
                ) from None
            try:
                months = int(value.strip())
            except ValueError:
                raise ConfigError(f"deadline_rules: {item!r}: months must be an integer") from None
            table[(kind, conduct)] = months
        return cls(table)

    def describe(self) -> str:
        """The table in ``parse`` syntax, most general entries first."""
        items = sorted(
            self.months.items(),
            key=lambda kv: (kv[0][0].value, -1 if kv[0][1] is None else kv[0][1].value),
        )
        return ", ".join(f"{_name(k)}={m}" for k, m in items)


def _key(key: object) -> tuple[ListKind, ConductType | None]:
    if not isinstance(key, tuple) or len(key) != 2:
        raise ConfigError("deadline_rules: keys are (ListKind, ConductType or None)")
    kind, conduct = key
    if not isinstance(kind, ListKind) or not (conduct is None or isinstance(conduct, ConductType)):
        raise ConfigError("deadline_rules: keys are (ListKind, ConductType or None)")
    return kind, conduct


def _name(key: DeadlineKey) -> str:
    kind, conduct = key
    return kind.name if conduct is None else f"{kind.name}/{conduct.name}"


DEFAULT_RULES = DeadlineRules(
    {
        (ListKind.BLACKLIST, None): PROTOCOL_DEFAULT_MONTHS,
        (ListKind.KEY_SCRUTINY, None): PROTOCOL_DEFAULT_MONTHS,
    }
)


def deadline_of(listing: Listing) -> datetime:
    """The deadline every gateway agrees on: signed, or ``listed_at`` + 3 months."""
    return listing.deadline


def is_overdue(listing: Listing, step: LifecycleStep, at: datetime) -> bool:
    """In force (not corrected, not removed) and strictly past the deadline at ``at``."""
    return in_force_step(step) and at > listing.deadline
