"""What platforms owe on a listing: sanctions after an escalation, lifts after closing.

Each gateway tracks the obligations of **its own platforms** (members of its trust
domain) on every listing it holds, its own and replicated ones; another alliance's
platforms owe their own gateway, never this one. So a seller listed in Zhejiang is
sanctioned by Guangdong's platforms, and Guangdong's gateway tracks them.

- **After an escalation** (the listing is in force and an escalation is in effect under
  ``gateway.core.lifecycle``: a listing that is only reported, or whose dispute opened
  before the deadline is still open, has none, so no obligation starts):
  - a listing naming stores obliges the own platforms of those stores (whatever their
    status) to confirm an APPLIED measure that *satisfies* the obligation;
  - a listing naming no store obliges every own ACTIVE platform to *answer*: apply a
    satisfying measure, or answer NOT_APPLICABLE (the seller has no account with it),
    which ends its obligation.
  The satisfying measures follow the list and the conduct (``satisfying_measures``: the
  issuing alliance's policy, else ``DEFAULT_SATISFYING``); a measure outside them (a
  rating cut where store closure is asked for) is shown but does not satisfy.
- **After a correction, removal or withdrawal**, every own platform that still has a
  measure APPLIED must confirm LIFTED for it.

Each obligation is SATISFIED, NOT_APPLICABLE (answered so), PENDING (not yet, within
the grace period counted from the escalation's or the closing step's
``effective_at``) or OUTSTANDING (grace period over). The rule is a pure function of
the folded records and an instant, so the live Compliance service and the monthly
report (evaluated at month end) agree.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from gateway.core.fold import SanctionKey
from gateway.core.identifiers import MemberId
from gateway.core.lifecycle import Lifecycle
from gateway.core.statements import (
    AlliancePolicy,
    LifecycleStep,
    Listing,
    ListKind,
    MeasureRequirement,
    SanctionAction,
    SanctionMeasure,
)

__all__ = [
    "DEFAULT_SATISFYING",
    "ListingCompliance",
    "MeasureKey",
    "Obligation",
    "ObligationKind",
    "ObligationState",
    "evaluate",
    "is_own",
    "policy_grace",
    "policy_satisfying",
    "required_platforms",
    "satisfying_measures",
]

# (measure, measure_other)
MeasureKey = tuple[SanctionMeasure, str]


class ObligationKind(enum.IntEnum):
    APPLY = 1
    LIFT = 2


class ObligationState(enum.IntEnum):
    SATISFIED = 1
    PENDING = 2
    OUTSTANDING = 3
    NOT_APPLICABLE = 4


# The measures that satisfy an APPLY obligation when the issuing alliance's policy says
# nothing for the listing's list and conduct (docs/PROTOCOL.md §7.2). A blacklisted
# entity is restricted in its store or account; a key-scrutiny escalation asks for a
# warning, not a closure (the punitive measures of §V are for blacklisted entities).
DEFAULT_SATISFYING: Mapping[ListKind, frozenset[SanctionMeasure]] = MappingProxyType(
    {
        ListKind.BLACKLIST: frozenset(
            {
                SanctionMeasure.RESTRICT_NEW_ACCOUNTS,
                SanctionMeasure.BLOCK_OR_DELETE_ACCOUNTS,
                SanctionMeasure.RESTRICT_PUBLISHING,
                SanctionMeasure.RESTRICT_ACCOUNT_PERMISSIONS,
                SanctionMeasure.RESTRICT_PLATFORM_ENTRY,
                SanctionMeasure.CLOSE_STORE,
            }
        ),
        ListKind.KEY_SCRUTINY: frozenset({SanctionMeasure.WARNING}),
    }
)


def satisfying_measures(
    listing: Listing, rules: Iterable[MeasureRequirement] = ()
) -> frozenset[SanctionMeasure]:
    """The measures that satisfy an APPLY obligation on ``listing``, by the issuing
    alliance's ``AlliancePolicy.measure_requirements`` (``rules``).

    The most specific matching rule wins: list and conduct, then the conduct on any
    list, then the list for any conduct, then a rule for everything; with no matching
    rule, ``DEFAULT_SATISFYING`` of the list.
    """
    best: tuple[int, frozenset[SanctionMeasure]] | None = None
    for rule in rules:
        kind, conduct, measures = rule.list, rule.conduct, rule.satisfying
        if (kind is not None and kind is not listing.list) or (
            conduct is not None and conduct is not listing.conduct
        ):
            continue
        rank = (2 if conduct is not None else 0) + (1 if kind is not None else 0)
        if best is None or rank > best[0]:
            best = (rank, frozenset(measures))
    return best[1] if best is not None else DEFAULT_SATISFYING[listing.list]


def policy_satisfying(
    listing: Listing, policy: AlliancePolicy | None
) -> frozenset[SanctionMeasure]:
    """``satisfying_measures`` under the issuing alliance's policy (``None``: defaults)."""
    return satisfying_measures(listing, () if policy is None else policy.measure_requirements)


def policy_grace(policy: AlliancePolicy | None, default: timedelta) -> timedelta:
    """The grace period: the policy's ``sanction_grace_days``, else the gateway's."""
    if policy is None or policy.sanction_grace_days == 0:
        return default
    return timedelta(days=policy.sanction_grace_days)


def is_own(platform: str, trust_domain: str) -> bool:
    """Is ``platform`` a member of the trust domain (one of this gateway's own)?"""
    return MemberId.parse(platform).trust_domain == trust_domain


@dataclass(frozen=True, slots=True)
class Obligation:
    """One platform's obligation on one listing.

    ``measures``: for APPLY the measures the platform has APPLIED (satisfying or not);
    for LIFT the measures it still has APPLIED (empty once everything is lifted).
    ``satisfying``: for APPLY the measures that satisfy it; ``may_answer_not_applicable``:
    the platform may end it by answering NOT_APPLICABLE (no store of it is named).
    """

    platform: str
    kind: ObligationKind
    state: ObligationState
    due_at: datetime
    measures: tuple[MeasureKey, ...]
    satisfying: frozenset[SanctionMeasure] = frozenset()
    may_answer_not_applicable: bool = False

    @property
    def owed(self) -> bool:
        """Still to be done (PENDING or OUTSTANDING)."""
        return self.state in (ObligationState.PENDING, ObligationState.OUTSTANDING)


@dataclass(frozen=True, slots=True)
class ListingCompliance:
    listing_id: str
    listing: Listing
    lifecycle: Lifecycle
    at: datetime
    platforms_from_stores: bool
    obligations: tuple[Obligation, ...]

    @property
    def step(self) -> LifecycleStep:
        return self.lifecycle.step

    @property
    def escalated_at(self) -> datetime | None:
        return self.lifecycle.escalated_at

    @property
    def closed_at(self) -> datetime | None:
        return self.lifecycle.closed_at

    @property
    def deadline(self) -> datetime | None:
        return self.lifecycle.deadline

    @property
    def in_force(self) -> bool:
        return self.lifecycle.in_force

    @property
    def overdue(self) -> bool:
        return self.lifecycle.overdue(self.at)

    def outstanding(self, kind: ObligationKind | None = None) -> tuple[Obligation, ...]:
        return tuple(
            o
            for o in self.obligations
            if o.state is ObligationState.OUTSTANDING and (kind is None or o.kind is kind)
        )


def required_platforms(
    listing: Listing, active_platforms: Iterable[str], trust_domain: str
) -> tuple[bool, tuple[str, ...]]:
    """``(from_stores, platforms)``: the own platforms of the listing's stores, or (no
    store named) every own active platform."""
    # A redacted (erased) listing names no store any more: the rule for none applies.
    named = listing.subject.stores if listing.subject is not None else ()
    stores = sorted({s.platform for s in named})
    if stores:
        return True, tuple(p for p in stores if is_own(p, trust_domain))
    return False, tuple(sorted({p for p in active_platforms if is_own(p, trust_domain)}))


def evaluate(
    listing_id: str,
    listing: Listing,
    *,
    lifecycle: Lifecycle,
    sanctions: Mapping[SanctionKey, SanctionAction],
    active_platforms: Iterable[str],
    trust_domain: str,
    grace: timedelta,
    at: datetime,
    not_applicable: Collection[str] = frozenset(),
    satisfying: frozenset[SanctionMeasure] | None = None,
) -> ListingCompliance:
    """The obligations of ``trust_domain``'s platforms on a listing at ``at``.

    ``lifecycle`` is the listing's state (``gateway.core.lifecycle``: its escalation in
    effect, its closing); ``sanctions`` the winning action per (platform, measure,
    measure_other); ``not_applicable`` the platforms that answered NOT_APPLICABLE;
    ``satisfying`` the measures that satisfy an APPLY obligation (``None``:
    ``satisfying_measures(listing)``, the defaults).
    """
    from_stores, required = required_platforms(listing, active_platforms, trust_domain)
    wanted = satisfying_measures(listing) if satisfying is None else satisfying
    obligations: list[Obligation] = []
    escalated_at, closed_at = lifecycle.escalated_at, lifecycle.closed_at
    if lifecycle.in_force:
        if escalated_at is not None:
            due = escalated_at + grace
            for platform in required:
                applied = _measures(sanctions, platform)
                if any(m in wanted for m, _ in applied):
                    state = ObligationState.SATISFIED
                elif not from_stores and platform in not_applicable:
                    state = ObligationState.NOT_APPLICABLE
                else:
                    state = _state(False, due, at)
                obligations.append(
                    Obligation(
                        platform,
                        ObligationKind.APPLY,
                        state,
                        due,
                        applied,
                        satisfying=wanted,
                        may_answer_not_applicable=not from_stores,
                    )
                )
    elif closed_at is not None:
        due = closed_at + grace
        for platform in sorted({p for p, _, _ in sanctions if is_own(p, trust_domain)}):
            still = _measures(sanctions, platform)
            obligations.append(
                Obligation(platform, ObligationKind.LIFT, _state(not still, due, at), due, still)
            )
    return ListingCompliance(
        listing_id=listing_id,
        listing=listing,
        lifecycle=lifecycle,
        at=at,
        platforms_from_stores=from_stores,
        obligations=tuple(obligations),
    )


def _measures(
    sanctions: Mapping[SanctionKey, SanctionAction], platform: str
) -> tuple[MeasureKey, ...]:
    return tuple(
        sorted(
            (measure, other)
            for (p, measure, other), action in sanctions.items()
            if p == platform and action is SanctionAction.APPLIED
        )
    )


def _state(done: bool, due: datetime, at: datetime) -> ObligationState:
    if done:
        return ObligationState.SATISFIED
    return ObligationState.OUTSTANDING if at > due else ObligationState.PENDING
