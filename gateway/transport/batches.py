"""One SubmitBatches stream: bulk ingest with many records per stream message.

The same stages as a SubmitRecords stream (``gateway.transport.upload``), but each hand
between threads carries a whole batch, not a record: a reader thread parses a batch's
envelopes and splits their checks (signature, statement) into a few chunks for the
shared pool, where Ed25519 runs without the GIL; an admitter thread takes the batches in
stream order, authorizes their records and hands each batch to the sequencer as one unit
(one transaction); the call's own thread answers each batch with one message once its
append committed. While batch k commits, batch k+1 is being verified.

Limits, as for one-record messages: each record spends a token of the caller's rate
(a record over the rate is refused in its result), the stream's records count against
``max_stream_records`` (records past it are refused in their results and the stream
ends after that batch's answer), and the stream ends with DEADLINE_EXCEEDED when it has
received nothing for ``stream_idle_timeout_s`` and owes no answer. A batch of more than
``max_batch_records`` records, or a message that does not parse, ends the stream with
RESOURCE_EXHAUSTED or INVALID_ARGUMENT after the answers to the batches before it; none
of its records is stored. A batch's bytes are bounded by the server's
``max_message_bytes`` like any message. When the stream's guard finds the caller
suspended or revoked, no further batch is handed to the sequencer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import grpc

from gateway import codec
from gateway.core import dsse
from gateway.errors import GatewayError, RecordError
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.ledger import Appended
from gateway.service.submit import Checked, SubmitService
from gateway.transport.errors import status_for
from gateway.transport.interceptor import decoded
from gateway.transport.limits import LimitError, Limits
from gateway.transport.streams import StreamGuard, put_unless

__all__ = ["BatchUpload"]

_END = object()
_SUBMIT_BATCHES = f"/{ex.DESCRIPTOR.services_by_name['Exchange'].full_name}/SubmitBatches"
# Batches between two stages at once (bounds what one stream holds in memory).
_QUEUED_BATCHES = 2
# Records a pool thread checks in one go, at least (fewer, larger chunks: fewer hand-offs).
_MIN_CHUNK = 32


@dataclass
class _Read:
    """A batch as the reader left it: each record's outcome so far, by position."""

    first: int  # the stream sequence of its first record
    record_ids: list[str]  # "" where the envelope did not parse
    refused: list[BaseException | None]  # refused before its checks
    chunks: list[tuple[list[int], Future[list[Checked | GatewayError]]]]


@dataclass(frozen=True)
class _Handed:
    first: int
    record_ids: list[str]
    outcomes: Future[list[Appended | BaseException]]


@dataclass(frozen=True)
class _Ended:
    """The stream ends with this error's status once the batches before are answered."""

    error: Exception


class BatchUpload:
    def __init__(
        self,
        submit: SubmitService,
        limits: Limits,
        checkers: ThreadPoolExecutor,
        *,
        workers: int,
        caller: str,
        max_records: int,
        max_batch_records: int,
        guard: StreamGuard,
    ) -> None:
        self._submit = submit
        self._limits = limits
        self._checkers = checkers
        self._workers = max(1, workers)  # threads of ``checkers``
        self._caller = caller
        self._max_records = max_records
        self._max_batch_records = max_batch_records
        self._guard = guard
        self._idle = limits.idle_clock()
        self._ended = threading.Event()  # no further batch goes to the sequencer
        self._answered = threading.Event()  # the call's thread stopped reading answers
        self._owed = 0  # batches read and not yet answered
        self._owed_lock = threading.Lock()
        self._reads: queue.Queue[_Read | _Ended | object] = queue.Queue(maxsize=_QUEUED_BATCHES)
        self._pending: queue.Queue[_Handed | _Ended | object] = queue.Queue(maxsize=_QUEUED_BATCHES)

    def answers(self, requests: Iterator[ex.SubmitBatch]) -> Iterator[ex.SubmitBatchResult]:
        """One result message per batch, in order, as its records are appended or refused."""
        threading.Thread(
            target=self._admit, name="submit-stream-batch-admitter", daemon=True
        ).start()
        threading.Thread(
            target=self._read, args=(requests,), name="submit-stream-batch-reader", daemon=True
        ).start()
        idle, guard = self._idle, self._guard
        try:
            while True:
                try:
                    item = self._pending.get(
                        timeout=max(min(idle.remaining_s(), guard.poll_s), 0.01)
                    )
                except queue.Empty:
                    guard.check()
                    if idle.remaining_s() <= 0 and not self._owing():
                        raise idle.expired() from None
                    continue
                if item is _END:
                    return
                if isinstance(item, _Ended):
                    raise item.error
                assert isinstance(item, _Handed)
                answer = _answer(item)
                with self._owed_lock:
                    self._owed -= 1
                idle.touch()
                yield answer
        finally:
            self._ended.set()
            self._answered.set()

    def _owing(self) -> bool:
        with self._owed_lock:
            return self._owed > 0

    def _hand_over(self, item: object) -> None:
        """Put ``item`` for the call's thread, unless it has stopped reading."""
        put_unless(self._pending, item, self._answered)

    def _pass_on(self, item: object) -> None:
        """Put ``item`` for the admitter, unless the call has stopped reading answers."""
        put_unless(self._reads, item, self._answered)

    def _read(self, requests: Iterator[ex.SubmitBatch]) -> None:
        idle = self._idle
        count = 0
        try:
            for request in requests:
                idle.touch()
                if self._ended.is_set():
                    break
                try:
                    batch = decoded(request)
                    if len(batch.records) > self._max_batch_records:
                        raise LimitError(
                            f"the batch at sequence {count} carries {len(batch.records)} "
                            f"records; a batch carries at most {self._max_batch_records}",
                            advice="split it into smaller batches (max_submit_batch_records)",
                        )
                except GatewayError as e:
                    self._pass_on(_Ended(e))
                    break
                with self._owed_lock:
                    self._owed += 1
                read = self._parse(batch.records, count)
                count += len(batch.records)
                self._pass_on(read)
                idle.touch()
                if count > self._max_records:
                    break
        except grpc.RpcError:
            pass  # the client went away; nothing half-written: each batch is atomic
        finally:
            self._pass_on(_END)

    def _parse(self, records: Sequence[ex.SubmitRecordRequest], first: int) -> _Read:
        """Spend the records' tokens, parse their envelopes, send their checks to the pool."""
        n = len(records)
        record_ids = [""] * n
        refused: list[BaseException | None] = [None] * n
        good: list[int] = []
        envs: list[dsse.Envelope] = []
        for i, record in enumerate(records):
            if first + i >= self._max_records:
                refused[i] = RecordError(f"a stream carries at most {self._max_records} records")
                continue
            try:
                self._limits.take(self._caller, _SUBMIT_BATCHES)
                env = codec.envelope_from_pb(record.envelope)
            except GatewayError as e:
                refused[i] = e
                continue
            record_ids[i] = env.record_id
            good.append(i)
            envs.append(env)
        chunks = []
        parts = max(1, min(self._workers, len(envs) // _MIN_CHUNK))
        size = -(-len(envs) // parts) if envs else 0
        for at in range(0, len(envs), size or 1):
            future = self._checkers.submit(
                self._submit.check_many, envs[at : at + size], self._caller
            )
            chunks.append((good[at : at + size], future))
        return _Read(first, record_ids, refused, chunks)

    def _admit(self) -> None:
        while True:
            try:
                item = self._reads.get(timeout=0.5)
            except queue.Empty:
                if self._answered.is_set():
                    return  # the call is over; the reader may have had no room for _END
                continue
            if item is _END:
                break
            if self._ended.is_set():
                continue  # drain: the stream was ended, nothing more is appended
            if isinstance(item, _Ended):
                self._ended.set()
                self._hand_over(item)
                continue
            assert isinstance(item, _Read)
            items: list[Checked | BaseException | None] = list(item.refused)
            for positions, checks in item.chunks:
                try:
                    results: Sequence[Checked | BaseException] = checks.result()
                except Exception as e:  # a bug in the checks: INTERNAL for each of them
                    results = [e] * len(positions)
                for position, result in zip(positions, results, strict=True):
                    items[position] = result
            try:
                self._guard.check()
            except GatewayError as e:  # the caller lost its admission: stop here
                self._ended.set()
                self._hand_over(_Ended(e))
                continue
            try:
                outcomes = self._submit.admit_many([_filled(i) for i in items])
            except Exception as e:  # a bug: the stream ends with INTERNAL, logged
                self._ended.set()
                self._hand_over(_Ended(e))
                continue
            self._hand_over(_Handed(item.first, item.record_ids, outcomes))
        self._hand_over(_END)


def _filled(item: Checked | BaseException | None) -> Checked | BaseException:
    assert item is not None, "every record is refused when read or checked on the pool"
    return item


def _answer(handed: _Handed) -> ex.SubmitBatchResult:
    try:
        outcomes: Sequence[Appended | BaseException] = handed.outcomes.result()
    except BaseException as e:  # reported in each record's result, not raised
        outcomes = [e] * len(handed.record_ids)
    reply = ex.SubmitBatchResult()
    add = reply.results.add
    sequence = handed.first
    for record_id, outcome in zip(handed.record_ids, outcomes, strict=True):
        if isinstance(outcome, Appended):
            add(
                sequence=sequence,
                record_id=outcome.record_id,
                log_index=outcome.log_index,
                duplicate=outcome.duplicate,
            )
        else:
            code, message = status_for(outcome)
            add(sequence=sequence, record_id=record_id, code=code.value[0], message=message)
        sequence += 1
    return reply
