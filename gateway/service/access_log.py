"""Who read what: the access log kept for personal-information accountability
(PIPL art. 56 asks for processing records kept at least three years).

Reads must not wait for this write, so entries go through a queue and a writer thread
that appends them in batches, gathered for up to a tenth of a second; ``flush()`` waits
until everything queued is stored (tests, shutdown). Old entries are pruned only past
the configured retention.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from gateway.errors import GatewayError
from gateway.service.ledger import Clock, utc_now
from gateway.storage import SqlStore

logger = logging.getLogger(__name__)

_BATCH = 500
# An entry waits up to this long for others to share its transaction: lookups come many
# a second, and a commit of its own for each would take GIL time from every lookup.
_GATHER_S = 0.1
_STOP = object()


class AccessLog:
    def __init__(self, store: SqlStore, *, retention_days: int, clock: Clock = utc_now) -> None:
        self._store = store
        self._retention = timedelta(days=retention_days)
        self._clock = clock
        self._queue: queue.Queue[tuple[datetime, str, str, str] | object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def record(self, member_id: str, rpc: str, detail: Mapping[str, object]) -> None:
        """Note that ``member_id`` called ``rpc`` asking for ``detail`` (subjects, ids)."""
        text = json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        self._queue.put((self._clock(), member_id, rpc, text))

    def flush(self) -> None:
        self._queue.join()

    def prune(self) -> int:
        """Delete entries older than the retention; returns how many."""
        return self._store.prune_access_log(self._clock() - self._retention)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

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
                self._store.log_access(batch)  # type: ignore[arg-type]
            except GatewayError:
                logger.exception("access log write failed; %s entries lost", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()
