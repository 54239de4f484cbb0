"""Submission: verify the bytes, then parse, then authorize, then append.

The order matters (DESIGN.md §3): the signature is checked over the received payload
bytes before anything parses them, and nothing is stored unless every check passed.
"""

from __future__ import annotations

from concurrent.futures import Future

from gateway.codec import decode_statement
from gateway.core import dsse
from gateway.core.identifiers import MemberId
from gateway.core.policy import authorize_statement
from gateway.core.statements import Listing, SanctionConfirmation, Statement, StatusChange
from gateway.errors import NotFoundError, PermissionError, RecordError
from gateway.service.directory import Directory
from gateway.service.ledger import Accepted, Appended, Clock, utc_now
from gateway.service.sequencer import Sequencer
from gateway.storage import SqlStore


class SubmitService:
    def __init__(
        self,
        store: SqlStore,
        directory: Directory,
        sequencer: Sequencer,
        *,
        origin: str,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._directory = directory
        self._sequencer = sequencer
        self._origin = origin
        self._clock = clock

    def submit(self, env: dsse.Envelope, caller: str) -> Appended:
        prepared = self.prepare(env, caller)
        if isinstance(prepared, Appended):
            return prepared
        return self._sequencer.submit(prepared).result()

    def submit_async(self, env: dsse.Envelope, caller: str) -> Future[Appended]:
        """Check now, append with the next batch: bulk ingest pipelines through this."""
        prepared = self.prepare(env, caller)
        if isinstance(prepared, Appended):
            done: Future[Appended] = Future()
            done.set_result(prepared)
            return done
        return self._sequencer.submit(prepared)

    def prepare(self, env: dsse.Envelope, caller: str) -> Accepted | Appended:
        """Everything but the append; raises the GatewayError that rejects the record."""
        record_id = env.record_id
        stored = self._store.record_by_id(record_id)
        if stored is not None:
            return Appended(record_id, stored.log_index, duplicate=True)
        signer = self._directory.verify(env, self._clock(), prefer=caller)
        if signer != caller:
            raise PermissionError(
                f"the record is signed by {signer} but submitted by {caller}",
                advice="members submit only records they signed themselves",
            )
        statement = decode_statement(env.payload_type, env.payload)
        authorize_statement(
            MemberId.parse(signer),
            statement,
            listing=self._listing_for(statement),
            signer_region=self._directory.region(signer),
        )
        return Accepted(env, record_id, signer, statement, self._origin)

    def _listing_for(self, statement: Statement) -> Listing | None:
        if not isinstance(statement, StatusChange | SanctionConfirmation):
            return None
        stored = self._store.record_by_id(statement.listing_id)
        if stored is None:
            raise NotFoundError(
                f"listing_id: no listing {statement.listing_id} is known to this gateway",
                advice="submit the listing first, or wait for it to replicate",
            )
        listing = decode_statement(stored.payload_type, stored.payload)
        if not isinstance(listing, Listing):
            raise RecordError(f"listing_id: record {statement.listing_id} is not a listing")
        return listing
