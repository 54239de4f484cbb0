"""The SQL adapter behind the use cases: ``SqlStore`` for reads, ``UnitOfWork`` for the
sequencer's writes.

Only this package imports sqlalchemy. Writes happen in a ``UnitOfWork`` (one
transaction); the sequencer is the only writer of records, log nodes and
projections, so the log and the state it implies never disagree.

Both types are assembled here from one part per topic, each in its own module with
its SQL and row mapping: the log and its records (``gateway.storage.log``), the
listing projections and subject lookups (``listings``), members (``members``),
checkpoints and cosignatures (``checkpoints``), peer cursors and evidence (``peers``).
What the parts share is in ``gateway.storage.base``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Dialect, Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.logcheck import DamageMap
from gateway.errors import StorageError
from gateway.storage.checkpoints import CheckpointStore, CheckpointWrites
from gateway.storage.disclosures import SubjectIndex, truncate_wal
from gateway.storage.listings import ListingStore, ListingWrites
from gateway.storage.log import LogStore, LogWrites
from gateway.storage.members import MemberWrites
from gateway.storage.models import Base, sqlite_stored_time
from gateway.storage.peers import PeerStore, PeerWrites

__all__ = ["SqlStore", "UnitOfWork"]

logger = logging.getLogger(__name__)

_RECORDS = Base.metadata.tables["records"]


def _unchanged(value: object) -> object:
    return value


class UnitOfWork(LogWrites, ListingWrites, MemberWrites, CheckpointWrites, PeerWrites):
    """The writes of one sequencer batch, committed together or not at all."""

    def __init__(
        self,
        conn: Connection,
        index: SubjectIndex | None,
        stored_time: Callable[[object], object],
    ) -> None:
        self._c = conn
        self._index = index
        self._time = stored_time


def stored_time_for(dialect: Dialect) -> Callable[[object], object]:
    """Aware datetimes as the UtcDateTime columns store them, for rows handed to the
    driver as is (``UnitBase._insert_rows``)."""
    if dialect.name == "sqlite":
        return sqlite_stored_time
    stored_time = _RECORDS.c.received_at.type.dialect_impl(dialect)
    return stored_time.bind_processor(dialect) or _unchanged


class SqlStore(LogStore, ListingStore, CheckpointStore, PeerStore):
    """Reads for the use cases, and ``unit_of_work()`` for the sequencer's writes.

    Log reads never hand out what storage lost or altered: entries come contiguous and
    each hashes to its record id, nodes come complete, and nothing in a range of
    ``damage`` (kept by ``gateway.storage.integrity``) is read; any of these raises
    ``LogDamageError`` (``DATA_LOSS``) instead.
    """

    def __init__(self, engine: Engine, *, subject_index: SubjectIndex | None = None) -> None:
        """``subject_index``: the key of the lookup index, needed to write listings and to
        look subjects up (read-only tools open the store without it)."""
        self.engine = engine
        self.damage = DamageMap()
        self.subject_index = subject_index
        self._stored_time = stored_time_for(engine.dialect)
        # An erasure's WAL truncation still to do (SQLite; see truncate_wal).
        self.wal_pending = False
        self._wal_lock = threading.Lock()

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        try:
            with self.engine.begin() as conn:
                yield UnitOfWork(conn, self.subject_index, self._stored_time)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def truncate_wal(self) -> bool:
        """SQLite: checkpoint and truncate the WAL (after an erasure); else nothing.

        False when a reader or writer kept it busy: ``wal_pending`` then stays set until
        a later call (the gateway's ticker retries) succeeds. Calls are serialized, so
        the flag always tells the outcome of the latest attempt."""
        with self._wal_lock:
            try:
                done = truncate_wal(self.engine)
            except SQLAlchemyError as e:
                self.wal_pending = True
                raise StorageError(f"WAL checkpoint failed: {e}") from e
            if not done:
                logger.warning(
                    "the WAL could not be truncated after an erasure (a reader or writer "
                    "is busy); erased values stay on disk until the next attempt"
                )
            self.wal_pending = not done
            return done
