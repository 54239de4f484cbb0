"""Alliance policies as the gateway uses them, and the operator's ``policy set``.

``Policies`` is the thread-safe fold of every stored ``AlliancePolicy`` record (ours and
replicated ones; ``gateway.core.alliance_policy.PolicyBook``), kept current by the
ledger like the member directory. ``PolicyAdmin`` signs a new policy of this alliance
with the gateway's key and appends it; it replicates like any record.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from gateway import codec
from gateway.core import dsse
from gateway.core.alliance_policy import PolicyBook
from gateway.core.crypto import SigningKey
from gateway.core.identifiers import MemberId
from gateway.core.intake import DEFAULT_INTAKE_RULES, IntakeRules, check_submitted
from gateway.core.periods import shortest_maximum
from gateway.core.policy import authorize_statement
from gateway.core.statements import AlliancePolicy, Listing
from gateway.service.ledger import Accepted, Appended, Clock, Ledger, utc_now

__all__ = ["Policies", "PolicyAdmin"]


class Policies:
    def __init__(self, *, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._book = PolicyBook()

    def reload(self, records: Iterable[tuple[str, str, bytes]]) -> None:
        """Replace the fold by that of the stored ``(record_id, payload_type, payload)``."""
        book = PolicyBook()
        for record_id, payload_type, payload in records:
            statement = codec.decode_statement(payload_type, payload)
            assert isinstance(statement, AlliancePolicy)
            book.apply(record_id, statement)
        with self._lock:
            self._book = book

    def apply(self, updates: Sequence[tuple[str, AlliancePolicy]]) -> None:
        with self._lock:
            for record_id, policy in updates:
                self._book.apply(record_id, policy)

    def current(self, trust_domain: str, at: datetime | None = None) -> AlliancePolicy | None:
        """The alliance's policy in force at ``at`` (default: now)."""
        when = self._clock() if at is None else at
        with self._lock:
            return self._book.current(trust_domain, when)

    def shortest_maximum(self, at: datetime | None = None) -> int:
        """The shortest maximum publication period (months) of any alliance's listings
        at ``at`` (``gateway.core.periods.shortest_maximum``)."""
        when = self._clock() if at is None else at
        with self._lock:
            policies = list(self._book.policies(when))
        return min([shortest_maximum(None), *(shortest_maximum(p) for p in policies)])

    def for_listing(self, listing: Listing, at: datetime | None = None) -> AlliancePolicy | None:
        when = self._clock() if at is None else at
        with self._lock:
            return self._book.for_listing(listing, when)

    def snapshot(self) -> PolicyBook:
        """A copy of the fold (for computations that must not see later records)."""
        book = PolicyBook()
        with self._lock:
            for policy_record in self._book.records():
                book.apply(*policy_record)
        return book


class PolicyAdmin:
    """Signs this alliance's policy records."""

    def __init__(
        self,
        ledger: Ledger,
        gateway_key: SigningKey,
        *,
        gateway_id: str,
        origin: str,
        intake: IntakeRules = DEFAULT_INTAKE_RULES,
        clock: Clock = utc_now,
    ) -> None:
        self._ledger = ledger
        self._key = gateway_key
        self._gateway_id = gateway_id
        self._origin = origin
        self._intake = intake
        self._clock = clock

    def set(self, policy: AlliancePolicy) -> tuple[Appended, AlliancePolicy]:
        """Sign ``policy`` as this gateway, issued now, and append it."""
        signed = replace(policy, issuer=self._gateway_id, issued_at=self._clock())
        check_submitted(signed, now=self._clock(), rules=self._intake)
        authorize_statement(
            MemberId.parse(self._gateway_id), signed, listing=None, signer_region=None
        )
        payload_type, payload = codec.encode_statement(signed)
        env = dsse.sign(payload_type, payload, self._key)
        accepted = Accepted(env, env.record_id, self._gateway_id, signed, self._origin)
        return self._ledger.append([accepted])[0], signed
