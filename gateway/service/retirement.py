"""Automatic retirement: the gateway signs RETIRED when a listing's maximum publication
period ends (issue 18).

Run from the compliance ticker beside the escalation, with the gateway's clock. A
listing is retired when it is in force, identified, issued by a member of this
gateway's trust domain (the policy lets only that gateway sign RETIRED; peers retire
theirs and the step replicates), and the maximum publication period of the issuing
alliance's policy in force now (``gateway.core.periods``), counted from the
identification, has ended.

**Exactly once**, as for escalations: the statement is a pure function of the listing
and the policy (issuer = the gateway, effective_at = the end of the maximum period,
fixed decision_ref and reason), so every replica signs the same bytes and the ledger
appends one record id once.

**Bounded.** Each call reads at most ``max_rounds`` batches of ``batch`` candidates
(in force, identified longer ago than the shortest maximum any rule allows) in log
order, and resumes after the last one it read on the next call (wrapping around at the
end), so a large backlog is worked through over several ticks and never starves.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gateway import codec
from gateway.core.crypto import SigningKey
from gateway.core.identifiers import MemberId
from gateway.core.periods import maximum_end, policy_period
from gateway.core.statements import LifecycleStep, Listing, StatusChange, add_months
from gateway.service.gateway_signing import sign_as_gateway
from gateway.service.ledger import Accepted, Appended, Ledger
from gateway.service.policies import Policies
from gateway.storage import SqlStore
from gateway.storage.compliance import ComplianceStore

__all__ = ["AUTO_RETIREMENT_REASON", "AUTO_RETIREMENT_REF", "Retirer", "retirement_for"]

logger = logging.getLogger(__name__)

AUTO_RETIREMENT_REF = "auto-retirement"
AUTO_RETIREMENT_REASON = "the maximum publication period ended"
_BATCH = 256
_MAX_ROUNDS = 16


def retirement_for(gateway_id: str, listing_id: str, ended_at: datetime) -> StatusChange:
    """The one RETIRED statement a gateway signs for a listing whose maximum publication
    period ended at ``ended_at``."""
    return StatusChange(
        issuer=gateway_id,
        listing_id=listing_id,
        step=LifecycleStep.RETIRED,
        effective_at=ended_at,
        decision_ref=AUTO_RETIREMENT_REF,
        reason=AUTO_RETIREMENT_REASON,
    )


class Retirer:
    def __init__(
        self,
        store: SqlStore,
        compliance: ComplianceStore,
        ledger: Ledger,
        key: SigningKey,
        policies: Policies,
        *,
        gateway_id: str,
        origin: str,
        batch: int = _BATCH,
        max_rounds: int = _MAX_ROUNDS,
    ) -> None:
        self._store = store
        self._compliance = compliance
        self._ledger = ledger
        self._key = key
        self._policies = policies
        self._gateway = MemberId.parse(gateway_id)
        self._gateway_id = gateway_id
        self._origin = origin
        self._batch = batch
        self._max_rounds = max_rounds
        self._issuer_prefix = f"spiffe://{self._gateway.trust_domain}/"
        self._cursor = -1  # the log index the next call resumes after

    def sign(self, listing_id: str, listing: Listing, ended_at: datetime) -> Accepted:
        return sign_as_gateway(
            retirement_for(self._gateway_id, listing_id, ended_at),
            key=self._key,
            gateway_id=self._gateway_id,
            origin=self._origin,
            listing=listing,
        )

    def run(self, now: datetime) -> list[Appended]:
        """Retire every listing whose maximum ended by ``now`` (within the bound);
        returns the records this call appended (not those another replica signed)."""
        shortest = self._policies.shortest_maximum(now)
        # A day of slack for the clamping of calendar months; each is checked exactly.
        before = add_months(now, -shortest) + timedelta(days=1)
        appended: list[Appended] = []
        for _ in range(self._max_rounds):
            rows = self._compliance.retirement_candidates(
                self._issuer_prefix, before, after_index=self._cursor, limit=self._batch
            )
            if not rows:
                self._cursor = -1  # wrap around: the next call starts from the beginning
                break
            self._cursor = rows[-1].log_index
            # Periods are signed in the clear: the listings are read redacted.
            stored = self._store.records_by_ids([r.listing_id for r in rows], disclosed=False)
            batch = []
            for row in rows:
                record = stored.get(row.listing_id)
                if record is None or row.identified_at is None:
                    continue
                listing = codec.decode_statement(
                    record.payload_type, record.payload, record.disclosures
                )
                if not isinstance(listing, Listing):
                    continue
                period = policy_period(listing, self._policies.for_listing(listing, now))
                ended_at = maximum_end(row.identified_at, period)
                if ended_at <= now:
                    batch.append(self.sign(row.listing_id, listing, ended_at))
            if batch:
                fresh = [r for r in self._ledger.append(batch) if not r.duplicate]
                appended.extend(fresh)
                for r in fresh:
                    logger.info(
                        "retired listing at the end of its maximum publication period "
                        "(record %s, log index %s)",
                        r.record_id,
                        r.log_index,
                    )
            if len(rows) < self._batch:
                self._cursor = -1
                break
        return appended
