"""alliance.v1.Exchange: submission, lookup, listing and watch."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from gateway import codec
from gateway.core.statements import ConductType, LifecycleStep, ListKind
from gateway.errors import GatewayError, RecordError, StorageError
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import exchange_pb2_grpc
from gateway.service.access_log import AccessLog
from gateway.service.ledger import Appended, Ledger
from gateway.service.query import QueryService
from gateway.service.submit import Checked, SubmitService
from gateway.storage import ListingFilter, SqlStore
from gateway.transport import messages
from gateway.transport.errors import status_for
from gateway.transport.identity import caller_of
from gateway.transport.interceptor import decoded
from gateway.transport.limits import Limits

_WATCH_PAGE = 500
_WATCH_POLL_S = 1.0
_END = object()
_SUBMIT_RECORDS = f"/{ex.DESCRIPTOR.services_by_name['Exchange'].full_name}/SubmitRecords"


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
        self._stopping = stopping
        # Signature checks of bulk streams (cryptography releases the GIL for Ed25519).
        self._checkers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")

    def _note(self, context: grpc.ServicerContext, rpc: str, detail: dict[str, object]) -> None:
        if self._access_log is not None:
            self._access_log.record(caller_of(context).member_id, rpc, detail)

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
        caller = caller_of(context).member_id
        # Three stages, so a client may wait for each answer or send everything first:
        # a reader thread parses envelopes and hands their checks (signature, statement)
        # to a small shared pool, where Ed25519 runs without the GIL; an admitter thread
        # takes the checks in stream order, authorizes and hands records to the
        # sequencer; this thread answers in order as the appends commit. Each record
        # spends a token of the caller's rate, and a stream that receives nothing for
        # stream_idle_timeout_s ends, so idle streams cannot hold on to worker threads.
        idle = self._limits.idle_clock()
        checks: queue.Queue[tuple[str, Future[Checked]] | _Rejected | object] = queue.Queue(
            maxsize=1024
        )
        pending: queue.Queue[Future[Appended] | BaseException | object] = queue.Queue(maxsize=4096)

        def read() -> None:
            try:
                for count, request in enumerate(request_iterator):
                    idle.touch()
                    if count >= self._max_stream_records:
                        checks.put(
                            _Rejected(
                                "",
                                RecordError(
                                    f"a stream carries at most {self._max_stream_records} records"
                                ),
                            )
                        )
                        break
                    try:
                        self._limits.take(caller, _SUBMIT_RECORDS)
                        env = codec.envelope_from_pb(decoded(request).envelope)
                    except GatewayError as e:
                        checks.put(_Rejected("", e))
                    else:
                        checks.put(
                            (env.record_id, self._checkers.submit(self._submit.check, env, caller))
                        )
                    idle.touch()
            except grpc.RpcError:
                pass  # the client went away; nothing half-written: each record is atomic
            finally:
                checks.put(_END)

        def admit() -> None:
            while (item := checks.get()) is not _END:
                if isinstance(item, _Rejected):
                    pending.put(item)
                    continue
                assert isinstance(item, tuple)
                record_id: str = item[0]
                checked: Future[Checked] = item[1]
                try:
                    pending.put(self._submit.admit(checked.result()))
                except Exception as e:  # a GatewayError, or a bug mapped to INTERNAL
                    pending.put(_Rejected(record_id, e))
            pending.put(_END)

        threading.Thread(target=admit, name="submit-stream-admitter", daemon=True).start()
        threading.Thread(target=read, name="submit-stream-reader", daemon=True).start()
        sequence = 0
        while True:
            try:
                item = pending.get(timeout=max(idle.remaining_s(), 0.01))
            except queue.Empty:
                if idle.remaining_s() <= 0:
                    raise idle.expired() from None
                continue
            if item is _END:
                return
            yield _result(sequence, item)
            sequence += 1

    def GetRecord(
        self, request: ex.GetRecordRequest, context: grpc.ServicerContext
    ) -> ex.GetRecordResponse:
        record_id = codec.record_id_from_pb(request.record_id, "record_id")
        self._note(context, "GetRecord", {"record_id": record_id})
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
        self._note(context, "CheckSubjects", {"subjects": [s.key for s in subjects]})
        states = self._query.check(subjects)
        # Each subject is echoed as it was sent: it has just been validated into
        # ``subjects``, and without unknown fields it is what the domain subject would
        # encode to.
        request.DiscardUnknownFields()
        return messages.check_response(request.subjects, states)

    def ListListings(
        self, request: ex.ListListingsRequest, context: grpc.ServicerContext
    ) -> ex.ListListingsResponse:
        self._note(context, "ListListings", {"filter": _filter_detail(request)})
        states, token = self._query.list_listings(
            _listing_filter(request),
            page_size=request.page_size,
            page_token=request.page_token,
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
        self._note(context, "WatchRecords", {"from_index": next_index})
        while context.is_active() and not self._stopping.is_set():
            size = self._store.log_size()
            if next_index < size:
                for record in self._store.records_range(next_index, size, limit=_WATCH_PAGE):
                    yield messages.log_entry(record)
                    next_index = record.log_index + 1
                continue
            self._ledger.wait_for_size(next_index, _WATCH_POLL_S)
        if self._stopping.is_set():
            # UNAVAILABLE, so a client can tell a restart from the end of a stream.
            raise StorageError("the gateway is shutting down; resume from your cursor")


def _filter_detail(request: ex.ListListingsRequest) -> dict[str, object]:
    return {
        "list": request.list,
        "conduct": request.conduct,
        "region_prefix": request.region_prefix,
        "step": request.step,
        "overdue_only": request.overdue_only,
        "in_force_only": request.in_force_only,
        "page_token": request.page_token,
    }


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


@dataclass(frozen=True)
class _Rejected:
    record_id: str  # empty when the envelope itself was malformed
    error: BaseException


def _result(sequence: int, item: object) -> ex.SubmitRecordResult:
    if isinstance(item, Future):
        try:
            appended: Appended = item.result()
        except BaseException as e:  # reported in the result, not raised
            item = _Rejected("", e)
        else:
            return ex.SubmitRecordResult(
                sequence=sequence,
                record_id=appended.record_id,
                log_index=appended.log_index,
                duplicate=appended.duplicate,
            )
    if isinstance(item, BaseException):
        item = _Rejected("", item)
    assert isinstance(item, _Rejected)
    code, message = status_for(item.error)
    return ex.SubmitRecordResult(
        sequence=sequence, record_id=item.record_id, code=code.value[0], message=message
    )
