"""Group commit: callers hand in accepted records and wait; one thread appends them
in batches, so a commit (and its fsync) is paid once per batch, not once per record."""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

from gateway.errors import GatewayError, StorageError
from gateway.service.ledger import Accepted, Appended, Ledger

logger = logging.getLogger(__name__)

_STOP = object()


class Sequencer:
    def __init__(self, ledger: Ledger, *, max_batch: int = 512, max_wait_ms: float = 2.0) -> None:
        self._ledger = ledger
        self._max_batch = max_batch
        self._max_wait_s = max_wait_ms / 1000.0
        # (record, its future, when it was handed in)
        self._queue: queue.SimpleQueue[tuple[Accepted, Future[Appended], float] | object] = (
            queue.SimpleQueue()
        )
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
        if self._stopped.is_set():
            future.set_exception(StorageError("the gateway is shutting down"))
        else:
            self._queue.put((item, future, time.monotonic()))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            # The wait counts from when the batch's first record was handed in: one that
            # already waited behind the previous commit does not wait again.
            deadline = first[2] + self._max_wait_s  # type: ignore[index]
            while len(batch) < self._max_batch:
                timeout = deadline - time.monotonic()
                try:
                    nxt = (
                        self._queue.get(timeout=max(timeout, 0))
                        if timeout > 0
                        else (self._queue.get_nowait())
                    )
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)  # type: ignore[arg-type]

    def _commit(self, batch: list[tuple[Accepted, Future[Appended], float]]) -> None:
        try:
            results = self._ledger.append([item for item, _, _ in batch])
        except GatewayError as e:
            for _, future, _ in batch:
                future.set_exception(e)
            return
        except Exception as e:
            logger.exception("append failed")
            for _, future, _ in batch:
                future.set_exception(StorageError(f"append failed: {type(e).__name__}"))
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            future.set_result(result)
