"""Who read what: the access log kept for personal-information accountability
(PIPL art. 56 asks for processing records kept at least three years).

What is kept answers "which member read which subject when" and stays small
(docs/OPERATIONS.md, "Access log"): per member, UTC day and RPC the number of calls
and of items read, first and last time; and for each call that read subjects
(CheckSubjects) or records (GetRecord), who, when (to the second) and their keyed
digests, 16 bytes each. Subjects are never stored in clear: the digest is
HMAC-SHA-256 under a key derived from the gateway's signing key, cut to 16 bytes.

A member may read at most ``daily_quota`` subjects and records a UTC day (0: no
quota); past it its reads are refused (``QuotaError``, RESOURCE_EXHAUSTED, with the
wait until midnight UTC). Each gateway process counts on its own, starting from what
the database holds for the day.

Reads must not wait for this write, so entries go through a queue and a writer thread
that digests and appends them in batches, gathered for up to a tenth of a second;
``flush()`` waits until everything queued is stored (tests, shutdown). Old days are
pruned only past the configured retention.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.errors import GatewayError
from gateway.service.ledger import Clock, utc_now
from gateway.storage import AccessEntry, AccessStore, LegacyRow

logger = logging.getLogger(__name__)

__all__ = ["DIGEST_INFO", "RPC_CODES", "AccessLog", "QuotaError", "read_digest"]

# The HKDF info naming the digest key (SigningKey.derive_secret).
DIGEST_INFO = b"alliance-gateway/access-log/v1"
# RPCs as stored (access_days.rpc): fixed, never renumbered.
RPC_CODES = {
    "CheckSubjects": 1,
    "GetRecord": 2,
    "ListListings": 3,
    "WatchRecords": 4,
    "GetEntries": 5,
}
_COUNTED = (RPC_CODES["CheckSubjects"], RPC_CODES["GetRecord"])
_SUBJECT, _RECORD = b"subject", b"record"
_SECONDS_A_DAY = 86_400

_BATCH = 500
# An entry waits up to this long for others to share its transaction: lookups come many
# a second, and a commit of its own for each would take GIL time from every lookup.
_GATHER_S = 0.1
_STOP = object()


def read_digest(key: bytes, kind: bytes, value: str) -> bytes:
    """The stored form of one item read: HMAC-SHA-256(key, kind ‖ 0x00 ‖ UTF-8 value),
    first 16 bytes. ``kind`` is b"subject" (a subject key such as
    ``uscc:91330100716105852F``) or b"record" (a record id, lowercase hex)."""
    return hmac.digest(key, kind + b"\x00" + value.encode(), "sha256")[:16]


class QuotaError(GatewayError):
    """A member read its daily quota of subjects (RESOURCE_EXHAUSTED)."""

    advice = "retry after midnight UTC, or ask the operator for a larger access_log_daily_quota"
    reason = "quota-exceeded"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, advice=f"retry in {retry_after_s:.0f} s (after midnight UTC)")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class _Read:
    at: datetime
    member_id: str
    rpc: int
    kind: bytes
    values: Sequence[str]


class AccessLog:
    def __init__(
        self,
        store: AccessStore,
        *,
        key: bytes,
        retention_days: int,
        daily_quota: int = 0,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._key = key
        self._retention = timedelta(days=retention_days)
        self._quota = daily_quota
        self._clock = clock
        self._lock = threading.Lock()
        self._used: dict[str, tuple[int, int]] = {}  # member id -> (day, items read)
        self._queue: queue.Queue[_Read | object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def read(
        self,
        member_id: str,
        rpc: str,
        *,
        subjects: Sequence[str] = (),
        records: Sequence[str] = (),
    ) -> None:
        """Note that ``member_id`` called ``rpc`` reading ``subjects`` (subject keys) or
        ``records`` (record ids); QuotaError when that is past its daily quota."""
        now = self._clock()
        code = RPC_CODES[rpc]
        values, kind = (subjects, _SUBJECT) if subjects else (records, _RECORD)
        if values and self._quota:
            self._charge(member_id, len(values), now)
        self._queue.put(_Read(now, member_id, code, kind, values))

    def _charge(self, member_id: str, n: int, now: datetime) -> None:
        day = int(now.timestamp()) // _SECONDS_A_DAY
        with self._lock:
            known = self._used.get(member_id)
        if known is None or known[0] != day:
            # The first read of the day in this process: start from what is stored.
            stored = self._store.items_read(member_id, day, _COUNTED)
            with self._lock:
                known = self._used.get(member_id)
                if known is None or known[0] != day:
                    known = self._used[member_id] = (day, stored)
        with self._lock:
            used = self._used[member_id][1]
            if used + n <= self._quota:
                self._used[member_id] = (day, used + n)
                return
        wait = (day + 1) * _SECONDS_A_DAY - now.timestamp()
        raise QuotaError(
            f"{member_id} has read {used} of its {self._quota} subjects and records today "
            f"(UTC); this call asks for {n} more",
            retry_after_s=max(1.0, wait),
        )

    def flush(self) -> None:
        self._queue.join()

    def prune(self) -> int:
        """Delete days older than the retention; returns how many rows."""
        cutoff = self._clock() - self._retention
        return self._store.prune(int(cutoff.timestamp()) // _SECONDS_A_DAY)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def convert_legacy(self) -> int:
        """Move the old access log (subjects in clear, schema 0003) into digests."""
        converted = self._store.convert_legacy(self._legacy_entries)
        if converted:
            logger.info("access log: %s entries of the old format converted", converted)
        return converted

    def _legacy_entries(self, rows: Sequence[LegacyRow]) -> list[AccessEntry]:
        out = []
        for row in rows:
            code = RPC_CODES.get(row.rpc)
            if code is None:
                continue
            try:
                detail = json.loads(row.detail)
            except ValueError:
                detail = {}
            if row.rpc == "CheckSubjects":
                read = _Read(row.at, row.member_id, code, _SUBJECT, detail.get("subjects", []))
            elif row.rpc == "GetRecord":
                read = _Read(row.at, row.member_id, code, _RECORD, [detail.get("record_id", "")])
            else:
                read = _Read(row.at, row.member_id, code, _RECORD, ())
            out.append(self._entry(read))
        return out

    def _entry(self, read: _Read) -> AccessEntry:
        key, kind = self._key, read.kind
        digests = tuple(read_digest(key, kind, v) for v in read.values)
        return AccessEntry(read.at, read.member_id, read.rpc, digests)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                self._queue.task_done()
                return
            batch = [first]
            until = time.monotonic() + _GATHER_S
            while len(batch) < _BATCH:
                try:
                    nxt = self._queue.get(timeout=max(until - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)
                    self._queue.task_done()
                    break
                batch.append(nxt)
            try:
                self._store.append([self._entry(r) for r in batch if isinstance(r, _Read)])
            except Exception:  # the writer must outlive any one batch
                logger.exception("access log write failed; %s entries lost", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()
