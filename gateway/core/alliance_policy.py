"""Alliance policy records folded: which policy applies to a listing, with the defaults.

Each alliance's gateway signs ``AlliancePolicy`` records (protocol revision 3); they
replicate like member records. A gateway applies to a listing the policy of the
alliance that **issued** it (the trust domain of ``Listing.issuer``), so two gateways
holding the same records decide the same (DESIGN.md §5).

**Which record is in force.** Per issuing gateway, the record with the greatest
``(issued_at, record_id)`` among those with ``issued_at <= at`` (``at=None``: the
greatest of all). Like ``MemberDirectory`` this is a maximum over a set, so the arrival
order does not matter. With no record, every field has its documented default.

Field semantics owned here (issue 16):

- ``units_accepting_platform_reports`` (3): empty, every unit accepts platform reports;
  otherwise a platform's listing of a subject of another unit is refused where it is
  submitted, and so is an identification of it (``accepts_platform_reports``);
- ``dispute_decision_working_days`` (4): an open dispute not decided within this many
  working days of its ``effective_at`` is overdue; 0 means
  ``DEFAULT_DISPUTE_DECISION_WORKING_DAYS``.

Fields 5-7 are stored and validated; their effect is defined elsewhere.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterator
from datetime import datetime

from gateway.core.identifiers import MemberId, reporting_unit
from gateway.core.statements import AlliancePolicy, Listing

__all__ = [
    "DEFAULT_DISPUTE_DECISION_WORKING_DAYS",
    "PolicyBook",
    "accepts_platform_reports",
    "dispute_decision_working_days",
]

# Working days an authority has to decide a dispute when the policy says 0 or there is
# no policy: three working weeks, the time administrative review bodies commonly give
# themselves to decide whether an objection stands.
DEFAULT_DISPUTE_DECISION_WORKING_DAYS = 15


def accepts_platform_reports(policy: AlliancePolicy | None, region_code: str) -> bool:
    """May a platform of the policy's alliance report a subject of ``region_code``?"""
    if policy is None or not policy.units_accepting_platform_reports:
        return True
    return reporting_unit(region_code) in policy.units_accepting_platform_reports


def dispute_decision_working_days(policy: AlliancePolicy | None) -> int:
    if policy is None or policy.dispute_decision_working_days == 0:
        return DEFAULT_DISPUTE_DECISION_WORKING_DAYS
    return policy.dispute_decision_working_days


class PolicyBook:
    """Alliance policies by issuing gateway; the current one at a time."""

    def __init__(self) -> None:
        # trust domain -> [(issued_at, record_id, policy)], sorted
        self._versions: dict[str, list[tuple[datetime, str, AlliancePolicy]]] = {}
        self._seen: set[str] = set()

    def apply(self, record_id: str, policy: AlliancePolicy) -> None:
        """Fold one policy record in; a record id seen before is ignored."""
        if record_id in self._seen:
            return
        self._seen.add(record_id)
        insort(
            self._versions.setdefault(policy.trust_domain, []),
            (policy.issued_at, record_id, policy),
        )

    def current(self, trust_domain: str, at: datetime | None = None) -> AlliancePolicy | None:
        """The policy of the alliance ``trust_domain`` in force at ``at``."""
        versions = self._versions.get(trust_domain)
        if not versions:
            return None
        if at is None:
            return versions[-1][2]
        for issued_at, _, policy in reversed(versions):
            if issued_at <= at:
                return policy
        return None

    def for_listing(self, listing: Listing, at: datetime | None = None) -> AlliancePolicy | None:
        """The policy a listing is judged by: that of the alliance that issued it."""
        domain = MemberId.parse(listing.issuer, field="listing.issuer").trust_domain
        return self.current(domain, at)

    def records(self) -> Iterator[tuple[str, AlliancePolicy]]:
        """Every policy record folded in, as ``(record_id, policy)``."""
        for versions in self._versions.values():
            for _, record_id, policy in versions:
                yield record_id, policy

    def policies(self, at: datetime | None = None) -> Iterator[AlliancePolicy]:
        """The current policy of every alliance, by trust domain."""
        for domain in sorted(self._versions):
            policy = self.current(domain, at)
            if policy is not None:
                yield policy
