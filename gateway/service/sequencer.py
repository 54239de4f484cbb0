"""Group commit: callers hand in accepted records and wait; one thread appends them
in batches, so a commit (and its fsync) is paid once per batch, not once per record.

A hand-off is one record (``submit``) or a client's whole batch (``submit_batch``):
a batch is never split between transactions and its records are answered together by
one future. Single records wait up to ``max_wait_ms`` for company; once a batch is in
hand the sequencer takes only what is already queued and commits at once (a batch
brings its own company, and a stream's next batch is being verified meanwhile).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError, StorageError
from gateway.service.ledger import Accepted, Appended, Ledger

logger = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True, slots=True)
class _HandOff:
    items: Sequence[Accepted]
    future: Future[Any]  # Future[Appended] when single, else Future[list[Appended]]
    at: float  # when it was handed in
    single: bool  # answered with the Appended itself, not a list


class Sequencer:
    def __init__(self, ledger: Ledger, *, max_batch: int = 512, max_wait_ms: float = 2.0) -> None:
        self._ledger = ledger
        self._max_batch = max_batch
        self._max_wait_s = max_wait_ms / 1000.0
        self._queue: queue.SimpleQueue[_HandOff | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sequencer", daemon=True)
        self._stopped = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish what was handed in, then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._stopped.set()

    def submit(self, item: Accepted) -> Future[Appended]:
        future: Future[Appended] = Future()
        self._hand_in((item,), future, single=True)
        return future

    def submit_batch(self, items: Sequence[Accepted]) -> Future[list[Appended]]:
        """Append ``items`` in one transaction; one result per item, in order."""
        future: Future[list[Appended]] = Future()
        if not items:
            future.set_result([])
            return future
        self._hand_in(items, future, single=False)
        return future

    def _hand_in(self, items: Sequence[Accepted], future: Future[Any], *, single: bool) -> None:
        if self._stopped.is_set():
            future.set_exception(StorageError("the gateway is shutting down"))
        else:
            self._queue.put(_HandOff(items, future, time.monotonic(), single))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            assert isinstance(first, _HandOff)
            batch = [first]
            count = len(first.items)
            waiting = first.single
            # The wait counts from when the batch's first record was handed in: one that
            # already waited behind the previous commit does not wait again.
            deadline = first.at + self._max_wait_s
            while count < self._max_batch:
                timeout = deadline - time.monotonic() if waiting else 0.0
                try:
                    nxt = (
                        self._queue.get(timeout=timeout)
                        if timeout > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                assert isinstance(nxt, _HandOff)
                batch.append(nxt)
                count += len(nxt.items)
                waiting = waiting and nxt.single
            self._commit(batch)

    def _commit(self, batch: list[_HandOff]) -> None:
        try:
            results = self._ledger.append([item for h in batch for item in h.items])
        except GatewayError as e:
            for h in batch:
                h.future.set_exception(e)
            return
        except Exception as e:
            logger.exception("append failed")
            for h in batch:
                h.future.set_exception(StorageError(f"append failed: {type(e).__name__}"))
            return
        at = 0
        for h in batch:
            n = len(h.items)
            mine = results[at : at + n]
            at += n
            h.future.set_result(mine[0] if h.single else mine)
