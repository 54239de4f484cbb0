"""Load for the reliability tests, and the checks that end them.

``Loader`` threads submit signed records to gateway processes over real mTLS (the
SubmitRecords stream and unary SubmitRecord, mixed), and write every acknowledgement
into an ``AckBook``: record id and the log index the gateway answered. A record that
was sent but not answered when a call broke (a crash, a hung peer) is *in doubt*: it
may or may not be in the log. ``CheckpointWatcher`` keeps every distinct checkpoint
note a gateway served. ``read_log`` and ``check_*`` then prove, from the gateway's own
answers and signatures, what the tests promise.

Imported as ``loadgen`` (see ``procs``'s docstring for why not ``reliability.loadgen``).
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
from gwtest import Member, audit, exchange, listing

from gateway import codec
from gateway.core import dsse, merkle
from gateway.core.identifiers import _org_code_check, _uscc_check
from gateway.core.notes import Checkpoint, NoteVerifier, open_checkpoint
from gateway.core.statements import SanctionAction, SanctionConfirmation, SanctionMeasure
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex

_OK = grpc.StatusCode.OK.value[0]
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]


def make_uscc(n: int) -> str:
    """A valid Unified Social Credit Code numbered ``n`` (both check characters hold)."""
    body = f"{n:08d}"
    code17 = "91330100" + body + _org_code_check(body)
    return code17 + _uscc_check(code17)


SUBJECTS = tuple(make_uscc(n) for n in range(1, 25))
MEASURES = tuple(m for m in SanctionMeasure if m is not SanctionMeasure.OTHER)


def listings(
    member: Member, tag: str, subjects: Sequence[str] = SUBJECTS
) -> Iterator[dsse.Envelope]:
    """Endless distinct listings by ``member`` (an authority), over a pool of sellers."""
    listed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    for n in itertools.count():
        statement = listing(
            member,
            uscc=subjects[n % len(subjects)],
            decision_ref=f"{tag}-{n}",
            listed_at=listed_at,
        )
        yield member.sign(statement)


def confirmations(
    platform: Member, listing_ids: Callable[[], Sequence[str]]
) -> Iterator[dsse.Envelope]:
    """Endless sanction confirmations by ``platform`` on listings it can see."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for n in itertools.count():
        ids = listing_ids()
        while not ids:
            time.sleep(0.05)
            ids = listing_ids()
        statement = SanctionConfirmation(
            issuer=platform.member_id,
            listing_id=ids[(n * 7) % len(ids)],
            measure=MEASURES[n % len(MEASURES)],
            action=SanctionAction.APPLIED,
            effective_at=start + timedelta(seconds=n),
        )
        yield platform.sign(statement)


def open_channel(member: Member, port: int) -> grpc.Channel:
    """A member's mTLS channel that reconnects quickly once a restarted gateway is back."""
    return grpc.secure_channel(
        f"127.0.0.1:{port}",
        member.credentials(),
        [
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 300),
        ],
    )


# -- what was acknowledged -----------------------------------------------------------------


@dataclass
class AckBook:
    """Acknowledged records and records in doubt, shared by loader threads."""

    acked: dict[str, int] = field(default_factory=dict)
    envelopes: dict[str, dsse.Envelope] = field(default_factory=dict)
    in_doubt: dict[str, dsse.Envelope] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, env: dsse.Envelope, record_id: str, log_index: int) -> None:
        with self._lock:
            if record_id != env.record_id:
                self.conflicts.append(f"answer for {env.record_id} names {record_id}")
            before = self.acked.setdefault(record_id, log_index)
            if before != log_index:
                self.conflicts.append(f"{record_id} acknowledged at {before} and {log_index}")
            self.envelopes[record_id] = env
            self.in_doubt.pop(record_id, None)
            self.ack_times.append(time.monotonic())

    def doubt(self, envs: Sequence[dsse.Envelope]) -> None:
        with self._lock:
            for env in envs:
                if env.record_id not in self.acked:
                    self.in_doubt[env.record_id] = env

    def acked_ids(self) -> list[str]:
        with self._lock:
            return list(self.acked)

    def snapshot(self) -> tuple[dict[str, int], list[dsse.Envelope]]:
        with self._lock:
            return dict(self.acked), list(self.in_doubt.values())

    def acks_after(self, t: float) -> int:
        with self._lock:
            return sum(1 for a in self.ack_times if a > t)

    def first_ack_after(self, t: float) -> float | None:
        with self._lock:
            later = [a for a in self.ack_times if a > t]
        return min(later) if later else None

    def merge(self, other: AckBook) -> None:
        acked, doubtful = other.snapshot()
        with self._lock:
            for rid, idx in acked.items():
                before = self.acked.setdefault(rid, idx)
                if before != idx:
                    self.conflicts.append(f"{rid} acknowledged at {before} and {idx}")
                self.envelopes[rid] = other.envelopes[rid]
            for env in doubtful:
                if env.record_id not in self.acked:
                    self.in_doubt[env.record_id] = env
            for rid in self.acked:
                self.in_doubt.pop(rid, None)


class Loader(threading.Thread):
    """Submit ``records`` to a gateway until stopped; record acknowledgements in ``book``.

    Rounds alternate: a SubmitRecords stream of ``stream_size`` records (with
    ``batch_records``, every other one a SubmitBatches stream of the same records in
    batches of that many), and every ``unary_every``-th round a few unary SubmitRecord
    calls. A broken call puts what it
    had sent and not yet heard back about in doubt and retries after a short pause.
    With several ``ports`` (replicas behind a load balancer), a broken call moves the
    loader to the next one, and with ``resend_in_doubt`` it first resends its records
    in doubt there (submission is idempotent by record id).
    """

    def __init__(
        self,
        member: Member,
        ports: Sequence[int],
        records: Iterator[dsse.Envelope],
        book: AckBook,
        *,
        name: str,
        stream_size: int = 50,
        unary_every: int = 3,
        timeout_s: float = 5.0,
        pause_s: float = 0.0,
        resend_in_doubt: bool = False,
        batch_records: int = 0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.batch_records = batch_records
        self.batch_acks = 0  # records acknowledged in SubmitBatches answers
        self.batch_breaks = 0  # SubmitBatches calls broken with batches unanswered
        self.member = member
        self.ports = list(ports)
        self.records = records
        self.book = book
        self.stream_size = stream_size
        self.unary_every = unary_every
        self.timeout_s = timeout_s
        self.pause_s = pause_s
        self.resend_in_doubt = resend_in_doubt
        self.failures: collections.Counter[str] = collections.Counter()
        self.refused: list[str] = []
        self.sent = 0
        self.crash: str | None = None
        self._stop_event = threading.Event()
        self._target = 0
        self._channels: dict[int, grpc.Channel] = {}

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop_event.set()
        self.join(timeout_s)
        assert not self.is_alive(), f"{self.name} did not stop"
        assert self.crash is None, f"{self.name} died: {self.crash}"

    @property
    def port(self) -> int:
        return self.ports[self._target]

    def run(self) -> None:
        try:
            for rounds in itertools.count():
                if self._stop_event.is_set():
                    return
                if rounds % self.unary_every == self.unary_every - 1:
                    ok = self._unary()
                elif self.batch_records and rounds % 2:
                    ok = self._batches()
                else:
                    ok = self._stream()
                if not ok:
                    self._target = (self._target + 1) % len(self.ports)
                    self._stop_event.wait(0.05)
                    if self.resend_in_doubt:
                        self._resend()
                elif self.pause_s:
                    self._stop_event.wait(self.pause_s)
        except Exception as e:
            self.crash = f"{type(e).__name__}: {e}"
            raise
        finally:
            for ch in self._channels.values():
                ch.close()

    def _channel(self) -> grpc.Channel:
        port = self.port
        if port not in self._channels:
            self._channels[port] = open_channel(self.member, port)
        return self._channels[port]

    def _next(self) -> dsse.Envelope:
        self.sent += 1
        return next(self.records)

    def _unary(self, envs: Sequence[dsse.Envelope] | None = None) -> bool:
        stub = exchange(self._channel())
        todo = list(envs) if envs is not None else [self._next() for _ in range(5)]
        for i, env in enumerate(todo):
            if self._stop_event.is_set() and envs is None:
                self.book.doubt(todo[i:])  # never sent: harmless to resubmit later
                return True
            try:
                reply = stub.SubmitRecord(
                    ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env)),
                    timeout=self.timeout_s,
                )
            except grpc.RpcError as e:
                self.failures[e.code().name] += 1
                self.book.doubt(todo[i:])
                return False
            self.book.ack(env, reply.record_id, reply.log_index)
        return True

    def _stream(self) -> bool:
        in_flight: collections.deque[dsse.Envelope] = collections.deque()
        # Drawn here, not in gRPC's request thread: a broken call's thread may still be
        # inside the generator when the next call starts.
        batch = [self._next() for _ in range(self.stream_size)]

        def requests() -> Iterator[ex.SubmitRecordRequest]:
            for env in batch:
                in_flight.append(env)  # before gRPC can send it
                yield ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env))

        call = exchange(self._channel()).SubmitRecords(requests(), timeout=self.timeout_s * 4)
        try:
            for result in call:
                env = in_flight.popleft()
                if result.code == _OK:
                    self.book.ack(env, result.record_id, result.log_index)
                elif result.code == _UNAVAILABLE:  # the gateway is shutting down
                    self.failures["UNAVAILABLE(result)"] += 1
                    self.book.doubt([env])
                else:
                    self.refused.append(f"{result.code}: {result.message}")
        except grpc.RpcError as e:
            self.failures[e.code().name] += 1
            self.book.doubt(list(in_flight))
            return False
        finally:
            call.cancel()
        return True

    def _batches(self) -> bool:
        """A SubmitBatches stream of ``stream_size`` records in batches of
        ``batch_records``; a broken call puts every batch sent and not answered in doubt."""
        records = [self._next() for _ in range(self.stream_size)]
        in_flight: collections.deque[list[dsse.Envelope]] = collections.deque()

        def requests() -> Iterator[ex.SubmitBatch]:
            for at in range(0, len(records), self.batch_records):
                envs = records[at : at + self.batch_records]
                in_flight.append(envs)  # before gRPC can send it
                yield ex.SubmitBatch(
                    records=[ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs]
                )

        call = exchange(self._channel()).SubmitBatches(requests(), timeout=self.timeout_s * 4)
        try:
            for answer in call:
                envs = in_flight.popleft()
                assert len(answer.results) == len(envs), "one result per record of the batch"
                for env, result in zip(envs, answer.results, strict=True):
                    if result.code == _OK:
                        self.book.ack(env, result.record_id, result.log_index)
                        self.batch_acks += 1
                    elif result.code == _UNAVAILABLE:
                        self.failures["UNAVAILABLE(result)"] += 1
                        self.book.doubt([env])
                    else:
                        self.refused.append(f"{result.code}: {result.message}")
        except grpc.RpcError as e:
            self.failures[e.code().name] += 1
            self.batch_breaks += bool(in_flight)
            self.book.doubt([env for envs in in_flight for env in envs])
            return False
        finally:
            call.cancel()
        return True

    def _resend(self) -> None:
        _, doubtful = self.book.snapshot()
        if doubtful:
            self._unary(doubtful)


def stop_all(loaders: Sequence[Loader]) -> None:
    """Stop every loader, then fail if one of them did not stop or had died."""
    problems = []
    for loader in loaders:
        try:
            loader.stop()
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, problems


class CheckpointWatcher(threading.Thread):
    """Every distinct checkpoint note the gateways at ``ports`` served, in order seen."""

    def __init__(self, member: Member, ports: Sequence[int], *, interval_s: float = 0.1) -> None:
        super().__init__(name="checkpoint-watcher", daemon=True)
        self.member = member
        self.ports = list(ports)
        self.interval_s = interval_s
        self.notes: list[str] = []
        self.seen_at: list[float] = []
        self._known: set[str] = set()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        channels = [open_channel(self.member, p) for p in self.ports]
        try:
            while not self._stop_event.wait(self.interval_s):
                for ch in channels:
                    try:
                        note = audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=1).note
                    except grpc.RpcError:
                        continue
                    self._keep(note)
        finally:
            for ch in channels:
                ch.close()

    def _keep(self, note: str) -> None:
        # Cosignatures arrive later on the same checkpoint: key by the signed body.
        body = note.split("\n\n", 1)[0]
        with self._lock:
            if body not in self._known:
                self._known.add(body)
                self.notes.append(note)
                self.seen_at.append(time.monotonic())

    def seen(self, before: float | None = None) -> list[str]:
        with self._lock:
            return [
                n
                for n, t in zip(self.notes, self.seen_at, strict=True)
                if before is None or t < before
            ]

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


# -- reading and checking a log --------------------------------------------------------------


@dataclass(frozen=True)
class LogCopy:
    """A gateway's log as served: its newest checkpoint (verified) and every entry."""

    checkpoint: Checkpoint
    note: str
    record_ids: list[str]
    leaves: list[bytes]

    @property
    def size(self) -> int:
        return self.checkpoint.size

    def index_of(self) -> dict[str, int]:
        return {rid: i for i, rid in enumerate(self.record_ids)}


def settled_checkpoint(
    channel: grpc.Channel, verifier: NoteVerifier, origin: str, *, quiet_s: float = 1.0
) -> tuple[str, Checkpoint]:
    """The newest checkpoint once the log stopped growing for ``quiet_s``."""
    stub = audit(channel)
    last: tuple[str, Checkpoint] | None = None
    since = time.monotonic()
    deadline = since + 60
    while time.monotonic() < deadline:
        note = stub.GetCheckpoint(au.GetCheckpointRequest(), timeout=5).note
        cp = open_checkpoint(note, verifier, origin=origin)
        if last is None or cp.size != last[1].size:
            last, since = (note, cp), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return last
        time.sleep(0.1)
    raise AssertionError("the log never stopped growing")


def read_log(channel: grpc.Channel, verifier: NoteVerifier, origin: str) -> LogCopy:
    """Read and check the whole log: contiguous indexes 0..n-1, each record id the
    SHA-256 of its PAE bytes, no record twice, and the entries hash to the root the
    gateway signed."""
    note, cp = settled_checkpoint(channel, verifier, origin)
    ids: list[str] = []
    leaves: list[bytes] = []
    for entry in audit(channel).GetEntries(au.GetEntriesRequest(start=0, end=cp.size), timeout=60):
        assert entry.log_index == len(ids), f"entry {entry.log_index} where {len(ids)} was due"
        env = codec.envelope_from_pb(entry.envelope)
        assert env.record_id == entry.record_id, f"entry {entry.log_index}: wrong record id"
        ids.append(entry.record_id)
        leaves.append(merkle.leaf_hash(env.pae()))
    assert len(ids) == cp.size, f"the log served {len(ids)} of {cp.size} entries"
    duplicates = [rid for rid, n in collections.Counter(ids).items() if n > 1]
    assert not duplicates, f"records appear twice: {duplicates[:5]}"
    rng = merkle.CompactRange()
    rng.extend(leaves)
    assert rng.root() == cp.root_hash, "the entries do not hash to the signed root"
    return LogCopy(cp, note, ids, leaves)


def check_acknowledged(log: LogCopy, acked: dict[str, int]) -> None:
    """Every acknowledged record is in the log at the index it was acknowledged with."""
    where = log.index_of()
    missing = [rid for rid in acked if rid not in where]
    moved = [
        (rid, idx, where[rid]) for rid, idx in acked.items() if rid in where and where[rid] != idx
    ]
    assert not missing, f"{len(missing)} acknowledged records are lost, e.g. {missing[:3]}"
    assert not moved, f"{len(moved)} acknowledged records moved, e.g. {moved[:3]}"


def check_checkpoints(
    channel: grpc.Channel, log: LogCopy, notes: Sequence[str], verifier: NoteVerifier, origin: str
) -> int:
    """Every note is signed by the log's key and is a prefix of ``log``: the gateway's
    consistency proof verifies (RFC 9162), and the entries read hash to its root too.
    Returns how many distinct sizes were checked."""
    stub = audit(channel)
    prefix = merkle.CompactRange()
    by_size: dict[int, bytes] = {}
    for note in notes:
        cp = open_checkpoint(note, verifier, origin=origin)
        assert by_size.setdefault(cp.size, cp.root_hash) == cp.root_hash, f"fork at {cp.size}"
    for size in sorted(by_size):
        root = by_size[size]
        assert size <= log.size, f"checkpoint {size} is beyond the final log ({log.size})"
        proof: list[bytes] = []
        if 0 < size < log.size:
            reply = stub.GetConsistencyProof(
                au.GetConsistencyProofRequest(first_size=size, second_size=log.size), timeout=10
            )
            proof = list(reply.hashes)
        merkle.verify_consistency(size, log.size, root, log.checkpoint.root_hash, proof)
        prefix.extend(log.leaves[prefix.size : size])
        assert prefix.root() == root, f"the first {size} entries do not hash to checkpoint {size}"
    return len(by_size)


def resubmit(channel: grpc.Channel, envs: Sequence[dsse.Envelope]) -> list[ex.SubmitRecordResult]:
    """Submit ``envs`` again over one stream; every answer must be OK."""
    results = list(
        exchange(channel).SubmitRecords(
            (ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(e)) for e in envs), timeout=60
        )
    )
    assert len(results) == len(envs)
    bad = [r.message for r in results if r.code != _OK]
    assert not bad, f"resubmission refused: {bad[:3]}"
    return results


def set_hash(record_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(record_ids)).encode()).hexdigest()
