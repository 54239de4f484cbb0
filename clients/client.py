"""``AllianceClient``: a member's typed client for its regional gateway.

The channel is mutual TLS with the member's certificate, key and the alliance CA
bundle from its profile. Statements are signed here, with the member's Ed25519 key,
over the exact payload bytes (DSSE); the gateway never sees a private key.

Retries: a call that fails with ``UNAVAILABLE`` (the gateway is down, restarting or
unreachable) is retried with capped exponential backoff and jitter. Only idempotent
calls are retried, and every unary call here is idempotent: reads trivially, and
submission because a record's id is the SHA-256 of its signed bytes, so submitting
it again returns the same id and log index (``duplicate=True``). Streams resume from
their cursor: ``watch`` and ``entries`` from the next log index, ``submit_many`` by
resending the records that were not answered yet. Every other failure raises
``ClientError`` with the gRPC status code at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Final, TypeVar

import grpc

from clients.profile import Profile
from clients.version import VersionCheck, ask_gateway
from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    SanctionAction,
    SanctionMeasure,
    Statement,
    Subject,
)
from gateway.errors import GatewayError, RecordError
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import audit_pb2_grpc, exchange_pb2_grpc
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import statements_pb2 as pb

__all__ = [
    "CHECK_CHUNK",
    "AllianceClient",
    "ClientError",
    "InclusionProof",
    "ListingState",
    "LogEntry",
    "RetryPolicy",
    "SanctionState",
    "SubjectStatus",
    "SubmitResult",
]

logger = logging.getLogger(__name__)

CHECK_CHUNK: Final = 1000
"""Subjects per CheckSubjects call (the gateway accepts more; smaller calls stream better)."""

_DEFAULT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
_DEFAULT_STREAM_CHUNK: Final = 100_000
BATCH_RECORDS: Final = 256
"""Records per SubmitBatches message (docs/PERFORMANCE.md, "Batch size"; the gateway
accepts up to its max_submit_batch_records, 1,000 by default)."""
BATCH_BYTES: Final = 1024 * 1024
"""Most bytes of records per batch message (the gateway's default limit is 4 MiB)."""
_NO_BATCHES: Final = (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED)
_CODES: Final = {code.value[0]: code for code in grpc.StatusCode}
_HINT_MARK: Final = " (hint: "

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class ClientError(GatewayError):
    """The gateway refused a call, or could not be reached; ``code`` says which."""

    def __init__(self, code: grpc.StatusCode, message: str, *, advice: str | None = None) -> None:
        super().__init__(message, advice=advice)
        self.code = code


def _unreachable_advice(address: str) -> str:
    return (
        f"is the gateway running? check the 'gateway' address in your profile ({address}), "
        "and that ca_file, cert_file and key_file belong to this alliance"
    )


def _client_error(e: grpc.RpcError, address: str) -> ClientError:
    code = e.code()
    details = e.details() or code.name.lower()
    if code is grpc.StatusCode.UNAVAILABLE:
        return ClientError(
            code,
            f"cannot reach the gateway at {address}: {details}",
            advice=_unreachable_advice(address),
        )
    if code is grpc.StatusCode.DATA_LOSS:
        message, _ = _split_hint(details)
        return ClientError(
            code,
            f"the gateway at {address} lost or altered part of its log: {message}",
            advice="do not retry: the gateway's operator must run `alliance-gateway check-log` "
            "and restore its database from backup",
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return ClientError(
            code,
            f"the gateway at {address} did not answer in time",
            advice="retry later, or raise --timeout",
        )
    message, advice = _split_hint(details)
    return ClientError(code, message, advice=advice)


def _split_hint(details: str) -> tuple[str, str | None]:
    """The gateway sends ``message (hint: advice)``; keep the two apart."""
    at = details.rfind(_HINT_MARK)
    if at < 0 or not details.endswith(")"):
        return details, None
    return details[:at], details[at + len(_HINT_MARK) : -1]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, for ``UNAVAILABLE`` only.

    Attempt ``n`` (from 0) waits between half and all of
    ``min(max_backoff_s, initial_backoff_s * multiplier**n)``.
    """

    max_attempts: int = 6
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise RecordError("retry: max_attempts must be at least 1")
        if not 0 < self.initial_backoff_s <= self.max_backoff_s or self.multiplier < 1:
            raise RecordError("retry: need 0 < initial_backoff_s <= max_backoff_s, multiplier >= 1")

    def delays(self) -> Iterator[float]:
        """The waits before each retry (``max_attempts - 1`` of them)."""
        for n in range(self.max_attempts - 1):
            ceiling = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier**n)
            # Jitter spreads clients that lost the same gateway; not a security use.
            yield ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311


# --- results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The fate of one submitted record; ``code`` is OK when stored (or already there)."""

    sequence: int
    record_id: str
    log_index: int | None
    duplicate: bool = False
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK


@dataclass(frozen=True, slots=True)
class SanctionState:
    platform: str
    measure: SanctionMeasure
    measure_other: str
    action: SanctionAction
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class ListingState:
    """A listing as the gateway's fold sees it."""

    listing_id: str
    listing: Listing
    step: LifecycleStep
    correction_deadline: datetime
    in_force: bool
    overdue: bool
    sanctions: tuple[SanctionState, ...]


@dataclass(frozen=True, slots=True)
class SubjectStatus:
    subject: Subject
    listed: bool
    listings: tuple[ListingState, ...]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A record at its position in the gateway's log (signatures not checked here)."""

    log_index: int
    record_id: str
    envelope: dsse.Envelope

    def statement(self) -> Statement:
        """The record's statement, read with the disclosures it came with, each checked
        against the commitment its signed payload holds (``RecordError`` when one does
        not match); without any (erased), a redacted statement. The signature is checked
        by ``verify`` or the audit commands, not here."""
        return codec.decode_envelope(self.envelope)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]


def _listing_state(msg: ex.ListingState) -> ListingState:
    listing = codec.statement_from_pb(msg.listing)
    assert isinstance(listing, Listing)
    return ListingState(
        listing_id=msg.listing_id,
        listing=listing,
        step=codec.enum_from_pb(LifecycleStep, msg.step, "step"),
        correction_deadline=codec.timestamp_from_pb(msg.correction_deadline),
        in_force=msg.in_force,
        overdue=msg.overdue,
        sanctions=tuple(
            SanctionState(
                platform=s.platform,
                measure=codec.enum_from_pb(SanctionMeasure, s.measure, "measure"),
                measure_other=s.measure_other,
                action=codec.enum_from_pb(SanctionAction, s.action, "action"),
                effective_at=codec.timestamp_from_pb(s.effective_at),
            )
            for s in msg.sanctions
        ),
    )


def _log_entry(msg: ex.LogEntry) -> LogEntry:
    return LogEntry(msg.log_index, msg.record_id, codec.envelope_from_pb(msg.envelope))


# --- the bulk stream's bookkeeping -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Slot:
    sequence: int
    envelope: dsse.Envelope | None  # None: refused before sending
    error: str = ""


class _Feed:
    """Requests for SubmitRecords streams, and the records still waiting for an answer.

    Items are signed as gRPC pulls them. Each waits in ``pending`` until its result
    arrives, so a new stream after ``UNAVAILABLE`` resends exactly the unanswered ones.
    A stream started later takes over: the older one stops pulling (``epoch``).
    """

    def __init__(
        self,
        items: Iterator[Statement | dsse.Envelope],
        sign: Callable[[Statement | dsse.Envelope], dsse.Envelope],
        chunk: int,
    ) -> None:
        self._items = items
        self._sign = sign
        self._chunk = chunk
        self._lock = threading.Lock()
        self._pending: deque[_Slot] = deque()
        self._epoch = 0
        self._next = 0
        self._exhausted = False
        self.failure: BaseException | None = None

    def requests(self) -> Iterator[ex.SubmitRecordRequest]:
        """One record a message (SubmitRecords)."""
        for batch in self.batches(1, 0):
            yield from batch.records

    def batches(self, records: int, max_bytes: int) -> Iterator[ex.SubmitBatch]:
        """Up to ``records`` records a message, and at most ``max_bytes`` of them (a
        record larger than that goes alone), for SubmitBatches."""
        with self._lock:
            self._epoch += 1
            epoch = self._epoch
            resend = [s.envelope for s in self._pending if s.envelope is not None]
        batch = ex.SubmitBatch()
        size = 0

        def add(env: dsse.Envelope) -> ex.SubmitBatch | None:
            """Add ``env``; the batch full before it, if it did not fit."""
            nonlocal batch, size
            record = ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env))
            n = record.ByteSize() + 4  # the field's tag and length
            full = None
            if batch.records and (len(batch.records) >= records or size + n > max_bytes):
                full, batch, size = batch, ex.SubmitBatch(), 0
            batch.records.append(record)
            size += n
            return full

        for env in resend:
            if (full := add(env)) is not None:
                yield full
        sent = len(resend)
        while sent < self._chunk:
            if len(batch.records) >= records:
                yield batch
                batch, size = ex.SubmitBatch(), 0
            with self._lock:
                if epoch != self._epoch:
                    return
                slot = self._pull()
            if slot is None:
                break
            if slot.envelope is not None:
                sent += 1
                if (full := add(slot.envelope)) is not None:
                    yield full
        if batch.records:
            yield batch

    def _pull(self) -> _Slot | None:
        if self._exhausted:
            return None
        try:
            item = next(self._items)
        except StopIteration:
            self._exhausted = True
            return None
        except Exception as e:  # the caller's iterator broke: stop and re-raise it later
            self._exhausted = True
            self.failure = e
            return None
        sequence, self._next = self._next, self._next + 1
        try:
            slot = _Slot(sequence, self._sign(item))
        except (GatewayError, ValueError, TypeError) as e:
            slot = _Slot(sequence, None, str(e))
        self._pending.append(slot)
        return slot

    def answer(self, msg: ex.SubmitRecordResult) -> list[SubmitResult]:
        """Results for the records up to the one ``msg`` answers, in order."""
        with self._lock:
            out = self._refused()
            if not self._pending:
                raise ClientError(
                    grpc.StatusCode.INTERNAL, "the gateway answered a record it was not sent"
                )
            slot = self._pending.popleft()
        assert slot.envelope is not None
        record_id = slot.envelope.record_id
        code = _CODES.get(msg.code, grpc.StatusCode.UNKNOWN)
        if code is grpc.StatusCode.OK:
            if msg.record_id != record_id:
                raise ClientError(
                    grpc.StatusCode.INTERNAL,
                    f"the gateway answered record {msg.record_id} for {record_id}: out of order",
                )
            out.append(SubmitResult(slot.sequence, record_id, msg.log_index, msg.duplicate))
        else:
            message, _ = _split_hint(msg.message)
            out.append(SubmitResult(slot.sequence, record_id, None, False, code, message))
        return out

    def refused(self) -> list[SubmitResult]:
        with self._lock:
            return self._refused()

    def _refused(self) -> list[SubmitResult]:
        out = []
        while self._pending and self._pending[0].envelope is None:
            slot = self._pending.popleft()
            out.append(
                SubmitResult(
                    slot.sequence, "", None, False, grpc.StatusCode.INVALID_ARGUMENT, slot.error
                )
            )
        return out

    def unanswered(self) -> int:
        with self._lock:
            return len(self._pending)

    def done(self) -> bool:
        with self._lock:
            return self._exhausted and not self._pending


# --- the client ----------------------------------------------------------------------


class AllianceClient:
    """A member's connection to its regional gateway. Use it as a context manager."""

    def __init__(
        self,
        profile: Profile,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        max_message_bytes: int = _DEFAULT_MAX_MESSAGE_BYTES,
        stream_chunk: int = _DEFAULT_STREAM_CHUNK,
        batch_records: int = BATCH_RECORDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.profile = profile
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self._stream_chunk = stream_chunk
        if batch_records < 1:
            raise ValueError("batch_records must be at least 1 (1: one record a message)")
        self._batch_records = batch_records
        self._sleep = sleep
        self._signing_key: SigningKey | None = None
        ca, cert, key = profile.tls_files()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )
        # The channel's own reconnect backoff follows the retry policy, so a retry after
        # the gateway came back is not refused by a channel still waiting to reconnect.
        options: list[tuple[str, int | str]] = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.initial_reconnect_backoff_ms", int(self._retry.initial_backoff_s * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(self._retry.initial_backoff_s * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(self._retry.max_backoff_s * 1000)),
        ]
        if profile.server_name is not None:
            options.append(("grpc.ssl_target_name_override", profile.server_name))
        self._channel = grpc.secure_channel(profile.gateway, credentials, options)
        self._exchange = exchange_pb2_grpc.ExchangeStub(self._channel)
        self._audit = audit_pb2_grpc.AuditLogStub(self._channel)

    @property
    def member_id(self) -> str:
        return self.profile.member_id

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AllianceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------

    def _unary(self, method: grpc.UnaryUnaryMultiCallable[_Req, _Resp], request: _Req) -> _Resp:
        delays = self._retry.delays()
        while True:
            try:
                return method(request, timeout=self._timeout_s)
            except grpc.RpcError as e:
                self._backoff(e, delays)

    def _backoff(self, e: grpc.RpcError, delays: Iterator[float]) -> None:
        """Wait before retrying an UNAVAILABLE call; raise ``ClientError`` otherwise."""
        if e.code() is grpc.StatusCode.UNAVAILABLE:
            delay = next(delays, None)
            if delay is not None:
                logger.info(
                    "gateway %s unavailable; retrying in %.2fs", self.profile.gateway, delay
                )
                self._sleep(delay)
                return
        raise _client_error(e, self.profile.gateway) from e

    def _resumable(
        self, open_at: Callable[[int], Iterator[ex.LogEntry]], start: int, *, forever: bool
    ) -> Generator[LogEntry, None, None]:
        """Entries from ``start`` on; after UNAVAILABLE (or, ``forever``, a closed
        stream) reopen at the next index. Progress resets the backoff."""
        cursor = start
        delays = self._retry.delays()
        while True:
            call = open_at(cursor)
            opened = time.monotonic()
            try:
                for msg in call:
                    entry = _log_entry(msg)
                    cursor = entry.log_index + 1
                    delays = self._retry.delays()
                    yield entry
            except grpc.RpcError as e:
                # A stream that ran a while (e.g. ended at the gateway's maximum stream
                # age while nothing new came) was healthy: start the backoff afresh.
                if time.monotonic() - opened > self._retry.max_backoff_s:
                    delays = self._retry.delays()
                self._backoff(e, delays)
                continue
            finally:
                cancel = getattr(call, "cancel", None)
                if callable(cancel):
                    cancel()
            if not forever:
                return
            delay = next(delays, None)
            if delay is None:
                raise ClientError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"the gateway at {self.profile.gateway} closed the stream and is not back",
                    advice=_unreachable_advice(self.profile.gateway),
                )
            self._sleep(delay)

    def _envelope(self, item: Statement | dsse.Envelope) -> dsse.Envelope:
        if isinstance(item, dsse.Envelope):
            return item
        if self._signing_key is None:
            self._signing_key = self.profile.signing_key()
        return codec.seal(item, self._signing_key)

    def sign(self, statement: Statement) -> dsse.Envelope:
        """The DSSE envelope of ``statement`` signed with the member's key."""
        return self._envelope(statement)

    # -- Exchange ----------------------------------------------------------------------

    def submit(self, item: Statement | dsse.Envelope) -> SubmitResult:
        """Sign (if a statement) and submit one record; idempotent by record id.

        Raises ``ClientError`` when the gateway refuses the record.
        """
        env = self._envelope(item)
        request = ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env))
        response = self._unary(self._exchange.SubmitRecord, request)
        return SubmitResult(0, response.record_id, response.log_index, response.duplicate)

    def submit_many(
        self,
        items: Iterable[Statement | dsse.Envelope],
        on_result: Callable[[SubmitResult], None] | None = None,
    ) -> Iterator[SubmitResult]:
        """Submit over a SubmitBatches stream (SubmitRecords with a gateway that has no
        batches): one result per item, in input order.

        A refused record is a result with its status code and message, not an
        exception. Items are signed lazily, ``batch_records`` at a time, so an iterable
        of any length streams; a batch is sent when it is full or the items end, so an
        iterable that waits between items (records as they happen) wants a client made
        with ``batch_records=1``.
        """
        feed = _Feed(iter(items), self._envelope, self._stream_chunk)
        delays = self._retry.delays()
        batched = self._batch_records > 1

        def emit(results: Sequence[SubmitResult]) -> Iterator[SubmitResult]:
            for result in results:
                if on_result is not None:
                    on_result(result)
                yield result

        while not feed.done():
            before = feed.unanswered()
            answered = 0
            call: Any = (
                self._exchange.SubmitBatches(feed.batches(self._batch_records, BATCH_BYTES))
                if batched
                else self._exchange.SubmitRecords(feed.requests())
            )
            try:
                for msg in call:
                    for result in msg.results if batched else (msg,):
                        results = feed.answer(result)
                        answered += len(results)
                        delays = self._retry.delays()
                        yield from emit(results)
            except grpc.RpcError as e:
                if batched and not answered and e.code() in _NO_BATCHES:
                    # A gateway from before batches (its deny-by-default policy answers a
                    # method it does not know PERMISSION_DENIED); a caller truly refused
                    # is refused SubmitRecords too, and hears it from there.
                    batched = False
                    continue
                self._backoff(e, delays)
                continue
            finally:
                call.cancel()
            refused = feed.refused()
            answered += len(refused)
            yield from emit(refused)
            if feed.failure is not None:
                raise feed.failure
            if not answered and feed.unanswered() and feed.unanswered() <= before:
                raise ClientError(
                    grpc.StatusCode.INTERNAL,
                    f"the gateway ended the stream without answering {feed.unanswered()} records",
                )

    def get(self, record_id: str) -> LogEntry:
        record_id = codec.record_id_from_pb(record_id, "record_id")
        response = self._unary(self._exchange.GetRecord, ex.GetRecordRequest(record_id=record_id))
        return _log_entry(response.entry)

    def check(self, subjects: Iterable[Subject]) -> list[SubjectStatus]:
        """Is each subject listed? One status per subject, in order (≤ 1,000 a call)."""
        wanted = list(subjects)
        out: list[SubjectStatus] = []
        for start in range(0, len(wanted), CHECK_CHUNK):
            chunk = wanted[start : start + CHECK_CHUNK]
            request = ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(s) for s in chunk])
            response = self._unary(self._exchange.CheckSubjects, request)
            if len(response.results) != len(chunk):
                raise ClientError(
                    grpc.StatusCode.INTERNAL,
                    f"the gateway answered {len(response.results)} of {len(chunk)} subjects",
                )
            out.extend(
                SubjectStatus(
                    subject=subject,
                    listed=r.listed,
                    listings=tuple(_listing_state(s) for s in r.listings),
                )
                for subject, r in zip(chunk, response.results, strict=True)
            )
        return out

    def list_listings(
        self,
        *,
        list_kind: ListKind | None = None,
        conduct: ConductType | None = None,
        region_prefix: str = "",
        step: LifecycleStep | None = None,
        overdue_only: bool = False,
        in_force_only: bool = False,
        page_size: int = 100,
    ) -> Iterator[ListingState]:
        """Every listing matching the filters, page after page."""
        token = ""
        while True:
            request = ex.ListListingsRequest(
                list=pb.ListKind.ValueType(list_kind.value if list_kind else 0),
                conduct=pb.ConductType.ValueType(conduct.value if conduct else 0),
                region_prefix=region_prefix,
                step=pb.LifecycleStep.ValueType(step.value if step else 0),
                overdue_only=overdue_only,
                in_force_only=in_force_only,
                page_size=page_size,
                page_token=token,
            )
            response = self._unary(self._exchange.ListListings, request)
            for state in response.listings:
                yield _listing_state(state)
            token = response.next_page_token
            if not token:
                return

    def watch(self, from_index: int = 0) -> Generator[LogEntry, None, None]:
        """Records in log order from ``from_index``, then new ones as they come.

        Never ends by itself; after UNAVAILABLE it resumes from the next index.
        ``close()`` the generator (or stop iterating it) to end the call.
        """
        return self._resumable(
            lambda cursor: self._exchange.WatchRecords(ex.WatchRecordsRequest(from_index=cursor)),
            from_index,
            forever=True,
        )

    # -- AuditLog ----------------------------------------------------------------------

    def checkpoint(self, tree_size: int = 0) -> str:
        """The signed checkpoint of ``tree_size`` (0: the latest), with the cosignatures
        the gateway holds for it."""
        request = au.GetCheckpointRequest(tree_size=tree_size)
        return self._unary(self._audit.GetCheckpoint, request).note

    def inclusion_proof(self, leaf: str | int, tree_size: int = 0) -> InclusionProof:
        """Proof for a record id or a leaf index in the tree of ``tree_size`` (0: latest)."""
        if isinstance(leaf, str):
            request = au.GetInclusionProofRequest(
                record_id=codec.record_id_from_pb(leaf, "record_id"), tree_size=tree_size
            )
        else:
            request = au.GetInclusionProofRequest(leaf_index=leaf, tree_size=tree_size)
        r = self._unary(self._audit.GetInclusionProof, request)
        return InclusionProof(r.leaf_index, r.tree_size, tuple(r.hashes))

    def consistency_proof(self, first_size: int, second_size: int) -> tuple[bytes, ...]:
        request = au.GetConsistencyProofRequest(first_size=first_size, second_size=second_size)
        return tuple(self._unary(self._audit.GetConsistencyProof, request).hashes)

    def entries(self, start: int, end: int) -> Generator[LogEntry, None, None]:
        """Log entries ``[start, end)`` in order; resumes after UNAVAILABLE."""
        if not 0 <= start <= end:
            raise RecordError(f"entries: need 0 <= start <= end, got {start}, {end}")
        return self._resumable(
            lambda cursor: self._audit.GetEntries(au.GetEntriesRequest(start=cursor, end=end)),
            start,
            forever=False,
        )

    # -- Health ------------------------------------------------------------------------

    def gateway_version(self, *, retry: bool = True) -> VersionCheck:
        """Is the gateway serving, and which protocol does it speak beside this client's?

        One health check (open to any caller that passed mutual TLS), retried while
        the gateway is unavailable unless ``retry`` is false; ``warning()`` says what
        a mismatch means.
        """
        delays = self._retry.delays() if retry else iter(())
        while True:
            try:
                return ask_gateway(self._channel, timeout_s=self._timeout_s)
            except grpc.RpcError as e:
                self._backoff(e, delays)

    def add_cosignature(self, checkpoint_body: str, signature_line: str) -> None:
        request = au.AddCosignatureRequest(
            checkpoint=checkpoint_body, signature_line=signature_line
        )
        self._unary(self._audit.AddCosignature, request)
