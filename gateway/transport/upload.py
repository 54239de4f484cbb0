"""One SubmitRecords stream: bulk ingest in three stages.

A client may wait for each answer or send everything first: a reader thread parses
envelopes and hands their checks (signature, statement) to a small shared pool, where
Ed25519 runs without the GIL; an admitter thread takes the checks in stream order,
authorizes and hands records to the sequencer; the call's own thread answers in order
as the appends commit. Each record spends a token of the caller's rate; a stream that
receives nothing for ``stream_idle_timeout_s`` ends, so idle streams cannot hold on to
threads; and the stream's guard ends it when the caller is suspended or revoked: no
record checked after that is handed to the sequencer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import grpc

from gateway import codec
from gateway.errors import GatewayError, RecordError
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.ledger import Appended
from gateway.service.submit import Checked, SubmitService
from gateway.transport.errors import status_for
from gateway.transport.interceptor import decoded
from gateway.transport.limits import Limits
from gateway.transport.streams import StreamGuard, put_unless

__all__ = ["Upload"]

_END = object()
_SUBMIT_RECORDS = f"/{ex.DESCRIPTOR.services_by_name['Exchange'].full_name}/SubmitRecords"


class Upload:
    def __init__(
        self,
        submit: SubmitService,
        limits: Limits,
        checkers: ThreadPoolExecutor,
        *,
        caller: str,
        max_records: int,
        guard: StreamGuard,
    ) -> None:
        self._submit = submit
        self._limits = limits
        self._checkers = checkers
        self._caller = caller
        self._max_records = max_records
        self._guard = guard
        self._idle = limits.idle_clock()
        self._ended = threading.Event()  # no further record goes to the sequencer
        self._answered = threading.Event()  # the call's thread stopped reading answers
        self._checks: queue.Queue[tuple[str, Future[Checked]] | _Rejected | object] = queue.Queue(
            maxsize=1024
        )
        self._pending: queue.Queue[Future[Appended] | _Rejected | _Ended | object] = queue.Queue(
            maxsize=4096
        )

    def answers(
        self, requests: Iterator[ex.SubmitRecordRequest]
    ) -> Iterator[ex.SubmitRecordResult]:
        """One result per request, in order, as the records are appended or refused."""
        threading.Thread(target=self._admit, name="submit-stream-admitter", daemon=True).start()
        threading.Thread(
            target=self._read, args=(requests,), name="submit-stream-reader", daemon=True
        ).start()
        idle, guard = self._idle, self._guard
        sequence = 0
        try:
            while True:
                try:
                    item = self._pending.get(
                        timeout=max(min(idle.remaining_s(), guard.poll_s), 0.01)
                    )
                except queue.Empty:
                    guard.check()
                    if idle.remaining_s() <= 0:
                        raise idle.expired() from None
                    continue
                if item is _END:
                    return
                if isinstance(item, _Ended):
                    raise item.error
                yield _result(sequence, item)
                sequence += 1
        finally:
            self._ended.set()
            self._answered.set()

    def _hand_over(self, item: object) -> None:
        """Put ``item`` for the call's thread, unless it has stopped reading."""
        put_unless(self._pending, item, self._answered)

    def _read(self, requests: Iterator[ex.SubmitRecordRequest]) -> None:
        checks, idle = self._checks, self._idle
        try:
            for count, request in enumerate(requests):
                idle.touch()
                if self._ended.is_set():
                    break
                if count >= self._max_records:
                    too_many = RecordError(f"a stream carries at most {self._max_records} records")
                    checks.put(_Rejected("", too_many))
                    break
                try:
                    self._limits.take(self._caller, _SUBMIT_RECORDS)
                    env = codec.envelope_from_pb(decoded(request).envelope)
                except GatewayError as e:
                    checks.put(_Rejected("", e))
                else:
                    check = self._checkers.submit(self._submit.check, env, self._caller)
                    checks.put((env.record_id, check))
                idle.touch()
        except grpc.RpcError:
            pass  # the client went away; nothing half-written: each record is atomic
        finally:
            checks.put(_END)

    def _admit(self) -> None:
        while (item := self._checks.get()) is not _END:
            if self._ended.is_set():
                continue  # drain: the stream was ended, nothing more is appended
            if isinstance(item, _Rejected):
                self._hand_over(item)
                continue
            assert isinstance(item, tuple)
            record_id: str = item[0]
            checked: Future[Checked] = item[1]
            try:
                self._guard.check()
            except GatewayError as e:  # the caller lost its admission: stop here
                self._ended.set()
                self._hand_over(_Ended(e))
                continue
            try:
                self._hand_over(self._submit.admit(checked.result()))
            except Exception as e:  # a GatewayError, or a bug mapped to INTERNAL
                self._hand_over(_Rejected(record_id, e))
        self._hand_over(_END)


@dataclass(frozen=True)
class _Ended:
    """The stream's guard ended it (the caller was suspended or revoked)."""

    error: GatewayError


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
