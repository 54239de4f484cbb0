"""Automatic escalation: the gateway signs ESCALATED for overdue listings of its domain.

Run from the gateway's ticker with the gateway's clock. A listing is escalated when it
is in force, has no escalation in effect, is past the correction deadline in force
(``gateway.core.lifecycle``: so it is identified and no dispute is open) and was issued
by a member of this gateway's trust domain (the policy lets a gateway escalate only
those; peers escalate theirs, and the escalation replicates).

**Exactly once**, with any number of replicas or restarts and no coordination: the
statement is a pure function of the listing's records (issuer = the gateway,
effective_at = the deadline in force, fixed decision_ref and reason), its protobuf encoding is
deterministic and Ed25519 signatures are deterministic, so every replica produces the
same bytes and the same record id; the ledger appends a record id once, under the
database's sequencer lock, and answers the others as duplicates.
"""

from __future__ import annotations

import logging
from datetime import datetime

from gateway import codec
from gateway.core.crypto import SigningKey
from gateway.core.identifiers import MemberId
from gateway.core.statements import LifecycleStep, Listing, StatusChange
from gateway.service.gateway_signing import sign_as_gateway
from gateway.service.ledger import Accepted, Appended, Ledger
from gateway.storage import SqlStore
from gateway.storage.compliance import ComplianceStore

__all__ = ["AUTO_DECISION_REF", "AUTO_REASON", "Escalator", "escalation_for"]

logger = logging.getLogger(__name__)

AUTO_DECISION_REF = "auto-escalation"
AUTO_REASON = "not corrected by the correction deadline"
_BATCH = 256
_MAX_ROUNDS = 64


def escalation_for(gateway_id: str, listing_id: str, deadline: datetime) -> StatusChange:
    """The one ESCALATED statement a gateway signs for a listing overdue since
    ``deadline`` (the deadline in force; a dispute that moved it gives a new one)."""
    return StatusChange(
        issuer=gateway_id,
        listing_id=listing_id,
        step=LifecycleStep.ESCALATED,
        effective_at=deadline,
        decision_ref=AUTO_DECISION_REF,
        reason=AUTO_REASON,
    )


class Escalator:
    def __init__(
        self,
        store: SqlStore,
        compliance: ComplianceStore,
        ledger: Ledger,
        key: SigningKey,
        *,
        gateway_id: str,
        origin: str,
        batch: int = _BATCH,
    ) -> None:
        self._store = store
        self._compliance = compliance
        self._ledger = ledger
        self._key = key
        self._gateway = MemberId.parse(gateway_id)
        self._gateway_id = gateway_id
        self._origin = origin
        self._batch = batch
        self._issuer_prefix = f"spiffe://{self._gateway.trust_domain}/"

    def sign(self, listing_id: str, listing: Listing, deadline: datetime) -> Accepted:
        return sign_as_gateway(
            escalation_for(self._gateway_id, listing_id, deadline),
            key=self._key,
            gateway_id=self._gateway_id,
            origin=self._origin,
            listing=listing,
        )

    def run(self, now: datetime) -> list[Appended]:
        """Escalate every listing due at ``now``; returns the records this call appended
        (duplicates, signed by another replica first, are not returned)."""
        appended: list[Appended] = []
        for _ in range(_MAX_ROUNDS):
            due = self._compliance.escalation_candidates(
                self._issuer_prefix, now, limit=self._batch
            )
            if not due:
                break
            # Deadlines are signed in the clear: the listings are read redacted.
            stored = self._store.records_by_ids([p.listing_id for p in due], disclosed=False)
            batch = []
            for p in due:
                record = stored.get(p.listing_id)
                if record is None:  # projections and records are written together
                    continue
                listing = codec.decode_statement(
                    record.payload_type, record.payload, record.disclosures
                )
                if isinstance(listing, Listing) and p.due_at is not None:
                    batch.append(self.sign(p.listing_id, listing, p.due_at))
            results = self._ledger.append(batch)
            fresh = [r for r in results if not r.duplicate]
            appended.extend(fresh)
            for r in fresh:
                logger.info(
                    "escalated overdue listing (record %s, log index %s)", r.record_id, r.log_index
                )
            if len(due) < self._batch:
                break
        return appended
