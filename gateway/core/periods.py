"""Publication periods (issue 18): how long a listing stays published, and when it ends.

The periods are policy data of the **issuing** alliance (``AlliancePolicy`` field 8,
``publication_periods``), per list and conduct; the most specific rule wins as for
``measure_requirements`` (list and conduct, then the conduct on any list, then the list
for any conduct, then a rule for everything); with none, ``DEFAULT_PERIODS`` of the
list. Both are counted in calendar months (UTC+08:00, ``add_months``) from the
listing's **identification** (``Lifecycle.identified_at``), as the 2019 credit-repair
rules count them (国家发展改革委办公厅《关于推进失信行为信用修复工作的通知》, 2019, and
the publicity rules it applies: general conduct at least 3 months and at most 1 year,
serious conduct at least 6 months and at most 3 years; the governing notice treats the
blacklist as serious conduct, the key-scrutiny list as general conduct).

When a listing's publication **ends** (``publication_end``):

- never identified (a platform's report no authority identified): no period runs; it
  ends when it closes (it was never published);
- WITHDRAWN (listed in error): at the withdrawal; the listing is void and is never
  published again, whatever the minimum;
- CORRECTED or REMOVED: at the later of the closing and the end of the minimum period
  (a repair ends publication, but not before the minimum has run);
- RETIRED: at the retirement (signed at the end of the maximum period);
- in force: at the end of the maximum period; the issuing gateway then signs RETIRED
  (``gateway.service.retirement``), and every reader treats the listing as ended from
  that instant even before the RETIRED record reaches it.

Only what publication periods decide is built here. Redactable records, erasure and
retention (issue 18 items 1, 2, 4, 5 and 6) are NOT built: an ended listing is hidden
from those it does not concern, but its records stay in every log and database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from gateway.core.lifecycle import Lifecycle
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    PublicationPeriod,
    add_months,
)

__all__ = [
    "DEFAULT_PERIODS",
    "Period",
    "end_from_projection",
    "maximum_end",
    "period_of",
    "policy_period",
    "publication_end",
    "publication_period",
    "shortest_maximum",
]


@dataclass(frozen=True, slots=True)
class Period:
    """A publication period in calendar months from the identification."""

    minimum_months: int
    maximum_months: int


# 2019 credit-repair rules: serious conduct (the blacklist) 6 months to 3 years, general
# conduct (the key-scrutiny list) 3 months to 1 year, counted from the identification.
DEFAULT_PERIODS: Mapping[ListKind, Period] = MappingProxyType(
    {
        ListKind.BLACKLIST: Period(6, 36),
        ListKind.KEY_SCRUTINY: Period(3, 12),
    }
)


def publication_period(listing: Listing, rules: Iterable[PublicationPeriod] = ()) -> Period:
    """The period of ``listing`` under the issuing alliance's ``publication_periods``."""
    return period_of(listing.list, listing.conduct, rules)


def period_of(kind: ListKind, conduct: ConductType, rules: Iterable[PublicationPeriod]) -> Period:
    """The period of a listing on list ``kind`` for ``conduct`` under ``rules``."""
    best: tuple[int, Period] | None = None
    for rule in rules:
        if (rule.list is not None and rule.list is not kind) or (
            rule.conduct is not None and rule.conduct is not conduct
        ):
            continue
        rank = (2 if rule.conduct is not None else 0) + (1 if rule.list is not None else 0)
        if best is None or rank > best[0]:
            best = (rank, Period(rule.minimum_months, rule.maximum_months))
    return best[1] if best is not None else DEFAULT_PERIODS[kind]


def policy_period(listing: Listing, policy: AlliancePolicy | None) -> Period:
    """``publication_period`` under the issuing alliance's policy (``None``: defaults)."""
    return publication_period(listing, () if policy is None else policy.publication_periods)


def shortest_maximum(policy: AlliancePolicy | None) -> int:
    """The shortest maximum (months) any listing of the alliance can have: a listing
    identified less than this long ago cannot be due for retirement."""
    months = [p.maximum_months for p in DEFAULT_PERIODS.values()]
    if policy is not None:
        months += [p.maximum_months for p in policy.publication_periods]
    return min(months)


def maximum_end(identified_at: datetime, period: Period) -> datetime:
    """When the maximum period of a listing identified at ``identified_at`` ends."""
    return add_months(identified_at, period.maximum_months)


def publication_end(lifecycle: Lifecycle, period: Period) -> datetime | None:
    """When the listing's publication ends (see the module docstring); ``None``: not
    while the listing stays as it is (in force and never identified)."""
    return end_from_projection(
        lifecycle.closing, lifecycle.identified_at, lifecycle.closed_at, period
    )


def end_from_projection(
    closing: LifecycleStep | None,
    identified_at: datetime | None,
    closed_at: datetime | None,
    period: Period,
) -> datetime | None:
    """``publication_end`` from a stored projection's columns (the step shown when the
    listing is closed, its identification and earliest closing)."""
    if identified_at is None:
        return closed_at
    if closing is None or closed_at is None:
        return maximum_end(identified_at, period)
    if closing in (LifecycleStep.CORRECTED, LifecycleStep.REMOVED):
        return max(closed_at, add_months(identified_at, period.minimum_months))
    return closed_at  # WITHDRAWN (void), RETIRED (the maximum ended)
