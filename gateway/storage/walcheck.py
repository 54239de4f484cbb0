"""SQLite WAL checkpoints on a thread of their own, off the sequencer's commits.

In WAL mode a commit appends pages to the ``-wal`` file; a *checkpoint* copies them
back into the database file. By default SQLite runs one inside whichever commit finds
the WAL over 1,000 pages, so the sequencer's append transaction pays for it. On a large
log that is about half of an append: each listing's inserts into the random-keyed
indexes (record id, listing id, subject digest, the disclosures' key) dirty pages spread
over the whole file, and the checkpoint writes them there and syncs the file
(docs/PERFORMANCE.md, round three continued).

A gateway therefore opens its engine with automatic checkpoints off
(``make_engine(..., background_checkpoints=True)``) and runs a ``WalCheckpointer``: a
thread that runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s``. PASSIVE never
waits for a reader or the writer, so it never delays a commit; the pages it copies are
written while the sequencer prepares and commits the next batch, and SQLite releases the
GIL while it does so. Under continuous writes the WAL would then never start over (see
``_restart``): past ``restart_frames`` pages a RESTART checkpoint holds the writer back
for the little a PASSIVE run left, so the WAL stays bounded.

Durability does not change: a commit is on disk once the WAL is synced
(``synchronous=FULL``), whether or not a checkpoint has copied it yet, and SQLite
recovers from the WAL after a crash. Engines made without ``background_checkpoints``
(tools that open the file directly) keep SQLite's automatic checkpoints. Erasure's
``truncate_wal`` (gateway.storage.disclosures) still empties the WAL when it must,
through the same ``checkpoint``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.storage.db import sqlite_file

__all__ = ["CheckpointRun", "WalCheckpointer", "background_checkpoints_apply", "checkpoint"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointRun:
    """One ``wal_checkpoint``: frames in the WAL, and how many of them are in the
    database file now (equal: the WAL can start over at the next commit)."""

    busy: bool
    wal_frames: int
    checkpointed: int

    @property
    def complete(self) -> bool:
        return not self.busy and self.checkpointed == self.wal_frames


def background_checkpoints_apply(engine: Engine) -> bool:
    """Whether ``engine`` has a WAL to checkpoint: a SQLite file (``sqlite_file``)."""
    return sqlite_file(engine.url)


def checkpoint(conn: Connection, mode: str, *, wait_ms: int | None = None) -> CheckpointRun:
    """``PRAGMA wal_checkpoint(mode)`` on ``conn``. ``wait_ms``: how long a mode that
    waits (RESTART, TRUNCATE) may wait for readers and the writer, instead of the
    connection's busy timeout (restored after)."""
    if wait_ms is None:
        busy, frames, done = conn.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})").one()
        return CheckpointRun(bool(busy), int(frames), int(done))
    waited = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        return checkpoint(conn, mode)
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited)}")


class WalCheckpointer:
    """Checkpoints the WAL of ``engine`` every ``interval_s`` until ``stop``: PASSIVE,
    and RESTART once it holds more than ``restart_frames`` pages (64 MB at the default
    4 KB page) so that it starts over."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval_s: float = 0.25,
        restart_frames: int = 16_384,
        restart_wait_ms: int = 100,
    ) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._restart_frames = restart_frames
        self._restart_wait_ms = restart_wait_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self.last: CheckpointRun | None = None

    @classmethod
    def started_for(cls, engine: Engine) -> WalCheckpointer | None:
        """A running checkpointer for ``engine`` (made with ``background_checkpoints``),
        or None where there is no WAL to copy (PostgreSQL, an in-memory SQLite)."""
        if not background_checkpoints_apply(engine):
            return None
        checkpointer = cls(engine)
        checkpointer.start()
        return checkpointer

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread, then copy what the WAL still holds (the last connection to
        close would do it too, but not while a reader elsewhere keeps the file open)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.run_once()

    def run_once(self) -> CheckpointRun | None:
        """One PASSIVE checkpoint, and a RESTART when the WAL has grown past
        ``restart_frames``; None when the database could not be reached (logged, tried
        again at the next interval)."""
        try:
            with self._engine.connect() as conn:
                run = checkpoint(conn, "PASSIVE")
                if run.wal_frames > self._restart_frames:
                    run = self._restart(conn) or run
        except SQLAlchemyError as e:
            logger.warning("WAL checkpoint failed, retrying: %s", e)
            return None
        self.last = run
        return run

    def _restart(self, conn: Connection) -> CheckpointRun | None:
        """Make the next commit start the WAL over. A writer that commits without pause
        never finds the WAL fully copied when it begins (a PASSIVE checkpoint copies up
        to the commits before it, and the writer has committed again by the time it
        ends), so the WAL would grow for as long as ingest lasts. RESTART holds new
        writers back until it has copied the rest, a short wait after the PASSIVE run;
        it gives up after ``restart_wait_ms`` when a reader still needs the old pages
        (a long audit read) and is tried again at the next interval."""
        run = checkpoint(conn, "RESTART", wait_ms=self._restart_wait_ms)
        if run.busy:
            return None
        self.restarts += 1
        return run

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.run_once()
