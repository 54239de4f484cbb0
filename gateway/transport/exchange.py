"""alliance.v1.Exchange: submission, lookup, listing and watch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import grpc

from gateway import codec
from gateway.core.statements import ConductType, LifecycleStep, ListKind
from gateway.errors import RecordError, StorageError
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import exchange_pb2_grpc
from gateway.service.access_log import AccessLog
from gateway.service.ledger import Ledger
from gateway.service.query import QueryService
from gateway.service.submit import SubmitService
from gateway.storage import ListingFilter, SqlStore
from gateway.transport import messages
from gateway.transport.batches import BatchUpload
from gateway.transport.identity import caller_of
from gateway.transport.limits import Limits
from gateway.transport.streams import guard_of
from gateway.transport.upload import Upload

_WATCH_PAGE = 500
_WATCH_POLL_S = 1.0
_CHECKERS = 2


class ExchangeServicer(exchange_pb2_grpc.ExchangeServicer):
    def __init__(
        self,
        submit: SubmitService,
        query: QueryService,
        store: SqlStore,
        ledger: Ledger,
        *,
        max_subjects: int,
        max_stream_records: int,
        max_batch_records: int,
        stopping: threading.Event,
        limits: Limits,
        access_log: AccessLog | None = None,
    ) -> None:
        self._access_log = access_log
        self._limits = limits
        self._submit = submit
        self._query = query
        self._store = store
        self._ledger = ledger
        self._max_subjects = max_subjects
        self._max_stream_records = max_stream_records
        self._max_batch_records = max_batch_records
        self._stopping = stopping
        # Signature checks of bulk streams (cryptography releases the GIL for Ed25519).
        self._checkers = ThreadPoolExecutor(max_workers=_CHECKERS, thread_name_prefix="verify")

    def _note(
        self,
        context: grpc.ServicerContext,
        rpc: str,
        *,
        subjects: Sequence[str] = (),
        records: Sequence[str] = (),
    ) -> None:
        """Into the access log (QuotaError when past the caller's daily quota)."""
        if self._access_log is not None:
            member = caller_of(context).member_id
            self._access_log.read(member, rpc, subjects=subjects, records=records)

    def SubmitRecord(
        self, request: ex.SubmitRecordRequest, context: grpc.ServicerContext
    ) -> ex.SubmitRecordResponse:
        env = codec.envelope_from_pb(request.envelope)
        result = self._submit.submit(env, caller_of(context).member_id)
        return ex.SubmitRecordResponse(
            record_id=result.record_id, log_index=result.log_index, duplicate=result.duplicate
        )

    def SubmitRecords(
        self, request_iterator: Iterator[ex.SubmitRecordRequest], context: grpc.ServicerContext
    ) -> Iterator[ex.SubmitRecordResult]:
        upload = Upload(
            self._submit,
            self._limits,
            self._checkers,
            caller=caller_of(context).member_id,
            max_records=self._max_stream_records,
            guard=guard_of(context),
        )
        yield from upload.answers(request_iterator)

    def SubmitBatches(
        self, request_iterator: Iterator[ex.SubmitBatch], context: grpc.ServicerContext
    ) -> Iterator[ex.SubmitBatchResult]:
        upload = BatchUpload(
            self._submit,
            self._limits,
            self._checkers,
            workers=_CHECKERS,
            caller=caller_of(context).member_id,
            max_records=self._max_stream_records,
            max_batch_records=self._max_batch_records,
            guard=guard_of(context),
        )
        yield from upload.answers(request_iterator)

    def GetRecord(
        self, request: ex.GetRecordRequest, context: grpc.ServicerContext
    ) -> ex.GetRecordResponse:
        record_id = codec.record_id_from_pb(request.record_id, "record_id")
        self._note(context, "GetRecord", records=(record_id,))
        record = self._query.record(record_id)
        return ex.GetRecordResponse(entry=messages.log_entry(record))

    def CheckSubjects(
        self, request: ex.CheckSubjectsRequest, context: grpc.ServicerContext
    ) -> ex.CheckSubjectsResponse:
        if len(request.subjects) > self._max_subjects:
            raise RecordError(
                f"subjects: at most {self._max_subjects} a call, got {len(request.subjects)}"
            )
        subjects = []
        for i, s in enumerate(request.subjects):
            try:
                subjects.append(codec.subject_from_pb(s))
            except RecordError as e:
                raise RecordError(f"subjects[{i}]: {e}") from e
        self._note(context, "CheckSubjects", subjects=[s.key for s in subjects])
        states = self._query.check(subjects, caller_of(context).member)
        # Each subject is echoed as it was sent: it has just been validated into
        # ``subjects``, and without unknown fields it is what the domain subject would
        # encode to.
        request.DiscardUnknownFields()
        return messages.check_response(request.subjects, states)

    def ListListings(
        self, request: ex.ListListingsRequest, context: grpc.ServicerContext
    ) -> ex.ListListingsResponse:
        self._note(context, "ListListings")
        states, token = self._query.list_listings(
            _listing_filter(request),
            page_size=request.page_size,
            page_token=request.page_token,
            viewer=caller_of(context).member,
        )
        response = ex.ListListingsResponse(next_page_token=token)
        add = response.listings.add
        for state in states:
            messages.fill_listing_state(add(), state)
        return response

    def WatchRecords(
        self, request: ex.WatchRecordsRequest, context: grpc.ServicerContext
    ) -> Iterator[ex.LogEntry]:
        next_index = request.from_index
        size = self._store.log_size()
        if next_index > size:
            raise RecordError(
                f"from_index: {next_index} is beyond this log's size {size}",
                advice="watch from your cursor; it can never pass the log's size",
            )
        self._note(context, "WatchRecords")
        guard = guard_of(context)
        while context.is_active() and not self._stopping.is_set():
            size = self._store.log_size()
            if next_index < size:
                for record in self._store.records_range(next_index, size, limit=_WATCH_PAGE):
                    yield messages.log_entry(record)
                    next_index = record.log_index + 1
                continue
            # Wake up for appends by this process at once, look at the database (other
            # processes' appends) every _WATCH_POLL_S, and let the guard end the stream.
            look_again = time.monotonic() + _WATCH_POLL_S
            while self._ledger.wait_for_size(next_index, guard.poll_s) <= next_index:
                guard.check()
                if time.monotonic() >= look_again or self._stopping.is_set():
                    break
        if self._stopping.is_set():
            # UNAVAILABLE, so a client can tell a restart from the end of a stream.
            raise StorageError("the gateway is shutting down; resume from your cursor")


def _listing_filter(request: ex.ListListingsRequest) -> ListingFilter:
    region = request.region_prefix
    if region and not (region.isascii() and region.isdigit() and 1 <= len(region) <= 6):
        raise RecordError(f"region_prefix: {region!r} must be 1 to 6 digits")
    return ListingFilter(
        list_kind=codec.enum_from_pb(ListKind, request.list, "list") if request.list else None,
        conduct=(
            codec.enum_from_pb(ConductType, request.conduct, "conduct") if request.conduct else None
        ),
        region_prefix=region,
        step=codec.enum_from_pb(LifecycleStep, request.step, "step") if request.step else None,
        in_force_only=request.in_force_only,
        overdue_at=datetime.now(UTC) if request.overdue_only else None,
    )
