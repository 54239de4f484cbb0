"""Submission: check the caller, verify the bytes, validate, authorize, append.

The order matters (DESIGN.md §3, docs/PROTOCOL.md §5): the caller must be an active
member; the payload is parsed only far enough to read its ``issuer``, which must be
the caller; a signature must verify over the received bytes under the issuer's keys
valid now; only then is the statement validated (field rules, the alliance's deadline
rule, the intake rules of ``gateway.core.intake``) and authorized. Nothing is stored
unless every check passed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from gateway.codec import decode_statement, open_payload
from gateway.core import dsse
from gateway.core.alliance_policy import accepts_platform_reports
from gateway.core.crypto import VerifyingKey
from gateway.core.deadlines import DEFAULT_RULES, DeadlineRules
from gateway.core.identifiers import REPORTING_UNITS, MemberId, reporting_unit
from gateway.core.intake import DEFAULT_INTAKE_RULES, IntakeRules, check_submitted
from gateway.core.lifecycle import identified_when_signed
from gateway.core.policy import authorize_statement
from gateway.core.statements import (
    SUPERSEDED_TYPES,
    Erasure,
    GovernmentMeasure,
    LifecycleStep,
    Listing,
    SanctionConfirmation,
    Statement,
    StatusChange,
)
from gateway.errors import (
    GatewayError,
    NotFoundError,
    PermissionError,
    RecordError,
    StorageError,
    VerificationError,
)
from gateway.service.directory import Directory, verify_issuer
from gateway.service.erasure import authorize_held
from gateway.service.ledger import Accepted, Appended, Clock, utc_now
from gateway.service.policies import Policies
from gateway.service.sequencer import Sequencer
from gateway.storage import SqlStore

logger = logging.getLogger(__name__)

REJECTION_REASONS: Mapping[type[BaseException], str] = {
    RecordError: "invalid_record",
    VerificationError: "bad_signature",
    PermissionError: "not_allowed",
    NotFoundError: "unknown_listing",
    StorageError: "storage",
}


@dataclass(frozen=True)
class Checked:
    """A record whose signature verified and whose statement parsed and validated."""

    envelope: dsse.Envelope
    signer: str
    statement: Statement


class SubmitService:
    def __init__(
        self,
        store: SqlStore,
        directory: Directory,
        sequencer: Sequencer,
        *,
        origin: str,
        clock: Clock = utc_now,
        deadline_rules: DeadlineRules = DEFAULT_RULES,
        intake: IntakeRules = DEFAULT_INTAKE_RULES,
        on_outcome: Callable[[str, str], None] | None = None,
        policies: Policies | None = None,
    ) -> None:
        """``on_outcome(payload_type, reason)``: reason is "" for a record appended,
        "duplicate", or a bounded rejection reason (REJECTION_REASONS) — for metrics."""
        self._on_outcome = on_outcome
        self._policies = policies
        self._deadline_rules = deadline_rules
        self._intake = intake
        self._store = store
        self._directory = directory
        self._sequencer = sequencer
        self._origin = origin
        self._clock = clock
        # Listings handed to the sequencer but not yet committed: a status change or a
        # confirmation right behind its listing in one stream must find it.
        self._in_flight: dict[str, Listing] = {}
        self._in_flight_lock = threading.Lock()

    def submit(self, env: dsse.Envelope, caller: str) -> Appended:
        return self.submit_async(env, caller).result()

    def submit_async(self, env: dsse.Envelope, caller: str) -> Future[Appended]:
        """Check now, append with the next batch."""
        return self.admit(self.check(env, caller))

    def check(self, env: dsse.Envelope, caller: str) -> Checked:
        """Stage 1, independent of other records (bulk ingest runs it on several threads):
        the caller's standing, the issuer, the signature over the received bytes, then
        the statement's rules."""
        (result,) = self.check_many((env,), caller)
        if isinstance(result, GatewayError):
            raise result
        return result

    def check_many(
        self, envs: Sequence[dsse.Envelope], caller: str
    ) -> list[Checked | GatewayError]:
        """``check`` of each envelope (a chunk of a batch, on one pool thread), each
        refusal in its record's place; the caller's standing and keys are read once."""
        # No look-up of the record first: a record already stored is verified and
        # authorized like a new one (so only its signer gets the idempotent answer),
        # and the sequencer answers it with its existing log index.
        now = self._clock()
        try:
            # Admission checked the caller when the call began; a stream outlives that.
            self._directory.require_active(caller)
        except GatewayError as e:
            for env in envs:
                self._observe(env.payload_type, e)
            return [e] * len(envs)
        keys = self._directory.keys_at(caller, now)
        out: list[Checked | GatewayError] = []
        for env in envs:
            try:
                out.append(self._check(env, caller, now, keys))
            except GatewayError as e:
                self._observe(env.payload_type, e)
                out.append(e)
        return out

    def _check(
        self, env: dsse.Envelope, caller: str, now: datetime, keys: Sequence[VerifyingKey]
    ) -> Checked:
        opened = open_payload(env.payload_type, env.payload)
        MemberId.parse(opened.issuer, field=f"{opened.schema.name}.issuer")
        if opened.issuer != caller:
            raise PermissionError(
                f"the record's issuer {opened.issuer[:300]!r} is not the caller {caller}",
                advice="members submit only records they issued and signed themselves",
                reason="issuer-not-signer",
            )
        verify_issuer(env, caller, keys)
        successor = SUPERSEDED_TYPES.get(env.payload_type)
        if successor is not None:
            raise RecordError(
                f"payload_type: {env.payload_type} signs the subject and free text in the "
                "clear; members submit the redactable form now",
                advice=f"sign it as {successor} with its disclosures",
                reason="superseded-payload-type",
            )
        # Without disclosures a redactable record reads redacted: the rules on its clear
        # fields apply all the same, and come first.
        statement = opened.statement(env.disclosures)
        if opened.redactable and not env.disclosures:
            raise RecordError(
                f"{opened.schema.name}.disclosures: a {env.payload_type} record is submitted "
                "with the disclosure of every group it commits to",
                advice="send the disclosures beside the envelope (Envelope.disclosures)",
                reason="disclosure-missing",
            )
        if isinstance(statement, Listing):
            # The alliance's deadline rule, for listings members submit here;
            # replicated listings were judged by their origin (gateway.core.deadlines).
            self._deadline_rules.check(statement)
        check_submitted(statement, now=now, rules=self._intake)
        return Checked(env, caller, statement)

    def admit(self, checked: Checked) -> Future[Appended]:
        """Stage 2, in submission order: authorize against the listing (a listing ahead of
        this record in the same stream counts), then hand it to the sequencer."""
        accepted = self._authorize(checked)
        record_id, payload_type = accepted.record_id, accepted.envelope.payload_type
        future = self._sequencer.submit(accepted)
        future.add_done_callback(lambda f: self._landed(record_id, payload_type, f))
        return future

    def admit_many(
        self, items: Sequence[Checked | BaseException]
    ) -> Future[list[Appended | BaseException]]:
        """Stage 2 for a batch, in batch order: authorize each checked record (a listing
        ahead of it in the batch or the stream counts), then hand every authorized one
        to the sequencer as one unit. The future gives each record's outcome in its
        place: its ``Appended``, or the error that refused it (a refused record never
        stops the rest of the batch)."""
        outcomes: list[Appended | BaseException | None] = []
        accepted: list[Accepted] = []
        slots: list[int] = []
        for item in items:
            if isinstance(item, BaseException):
                outcomes.append(item)
                continue
            try:
                accepted.append(self._authorize(item))
            except Exception as e:  # a GatewayError, or a bug the transport maps to INTERNAL
                outcomes.append(e)
                continue
            slots.append(len(outcomes))
            outcomes.append(None)
        done: Future[list[Appended | BaseException]] = Future()

        def landed(appended: Future[list[Appended]]) -> None:
            with self._in_flight_lock:
                for a in accepted:
                    self._in_flight.pop(a.record_id, None)
            # An exception raised here would vanish into the future's callback machinery
            # and leave the caller waiting forever: whatever goes wrong resolves ``done``.
            try:
                error = appended.exception()
                results: Sequence[Appended | BaseException] = (
                    appended.result() if error is None else [error] * len(accepted)
                )
                if len(results) != len(accepted):
                    raise GatewayError(
                        f"the ledger answered {len(results)} outcomes for a batch of "
                        f"{len(accepted)} records"
                    )
                for slot, a, outcome in zip(slots, accepted, results, strict=True):
                    outcomes[slot] = outcome
                    self._observe(a.envelope.payload_type, outcome)
            except Exception as e:
                logger.exception("the outcomes of a batch of %d records are lost", len(accepted))
                done.set_exception(e)
                return
            done.set_result([o for o in outcomes if o is not None])

        self._sequencer.submit_batch(accepted).add_done_callback(landed)
        return done

    def _authorize(self, checked: Checked) -> Accepted:
        env, statement = checked.envelope, checked.statement
        try:
            listing = self._listing_for(statement)
            member = self._directory.member(checked.signer)
            region = None if member is None else member.region_code
            scope = None if member is None else member.authority_scope
            authorize_statement(
                MemberId.parse(checked.signer),
                statement,
                listing=listing,
                signer_region=region,
                signer_scope=scope,
            )
            if isinstance(statement, Erasure):
                authorize_held(
                    self._store,
                    checked.signer,
                    statement,
                    signer_region=region,
                    signer_scope=scope,
                    require_all=True,
                )
            self._check_sources(statement, listing)
        except GatewayError as e:
            self._observe(env.payload_type, e)
            raise
        record_id = env.record_id
        if isinstance(statement, Listing):
            with self._in_flight_lock:
                self._in_flight[record_id] = statement
        return Accepted(env, record_id, checked.signer, statement, self._origin)

    def _check_sources(self, statement: Statement, listing: Listing | None) -> None:
        """The issuing alliance's policy on platform reports (``AlliancePolicy`` field 3):
        a unit that does not accept them takes no platform listing of its subjects, and
        none of those is identified. Applied where a record is submitted; replicas fold
        what the origin accepted."""
        if self._policies is None:
            return
        reported: Listing | None = None
        if isinstance(statement, Listing):
            reported = statement
        elif isinstance(statement, StatusChange) and statement.step is LifecycleStep.IDENTIFIED:
            reported = listing
        if reported is None or identified_when_signed(reported):
            return
        policy = self._policies.for_listing(reported)
        if accepts_platform_reports(policy, reported.region_code):
            return
        unit = reporting_unit(reported.region_code)
        assert policy is not None
        raise PermissionError(
            f"reporting unit {unit} ({REPORTING_UNITS[unit]}) does not accept platform "
            f"reports under the policy of {policy.trust_domain} (units accepting them: "
            f"{', '.join(policy.units_accepting_platform_reports)})",
            advice=f"an authority of unit {unit} lists the subject itself",
        )

    def _landed(self, record_id: str, payload_type: str, future: Future[Appended]) -> None:
        with self._in_flight_lock:
            self._in_flight.pop(record_id, None)
        error = future.exception()
        self._observe(payload_type, future.result() if error is None else error)

    def _observe(self, payload_type: str, outcome: Appended | BaseException) -> None:
        if self._on_outcome is None:
            return
        if isinstance(outcome, Appended):
            self._on_outcome(payload_type, "duplicate" if outcome.duplicate else "")
        else:
            self._on_outcome(payload_type, REJECTION_REASONS.get(type(outcome), "other"))

    def _listing_for(self, statement: Statement) -> Listing | None:
        if not isinstance(statement, StatusChange | SanctionConfirmation | GovernmentMeasure):
            return None
        # In flight first, then the store: a listing leaves the in-flight map only after
        # its append committed, so one that is in neither was never submitted here. (The
        # other order missed a listing that committed and left the map between the two
        # looks: a confirmation right behind it in the stream was refused NOT_FOUND.)
        with self._in_flight_lock:
            pending = self._in_flight.get(statement.listing_id)
        if pending is not None:
            return pending
        stored = self._store.record_by_id(statement.listing_id)
        if stored is None:
            raise NotFoundError(
                f"listing_id: no listing {statement.listing_id} is known to this gateway",
                advice="submit the listing first, or wait for it to replicate",
                reason="unknown-listing",
            )
        listing = decode_statement(stored.payload_type, stored.payload, stored.disclosures)
        if not isinstance(listing, Listing):
            raise RecordError(f"listing_id: record {statement.listing_id} is not a listing")
        return listing
