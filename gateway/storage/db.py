"""Engine creation, SQLite pragmas and the Alembic migration check."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import StorageError

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
# json_each for batched key look-ups (3.38 has JSON built in); UPDATE ... RETURNING (3.35).
SQLITE_MINIMUM = (3, 38, 0)
_SQLITE_POOL = 32


def make_engine(url: str, *, pool_size: int = 8, background_checkpoints: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL, full fsync on commit and a busy timeout,
    and files only their owner may read (``owner_only``). ``background_checkpoints``:
    SQLite's automatic WAL checkpoints are off on this engine's connections, and the
    caller runs a ``gateway.storage.walcheck.WalCheckpointer`` (a gateway does)."""
    kwargs: dict[str, Any] = {}
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            # Keep a connection for every thread that may hold one at once (the RPC
            # workers, streams, sequencer, access log, ticker ...): past SQLAlchemy's
            # default of five, each extra connection was opened and closed again per
            # use, paying its pragmas and SQLite's parse of the schema, and losing its
            # statement cache. SQLite connections are cheap to keep. (An in-memory
            # database has a pool of its own kind.)
            if sqlite_file(parsed):
                kwargs.update(pool_size=_SQLITE_POOL, max_overflow=_SQLITE_POOL)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        engine = create_engine(parsed, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as e:
        raise StorageError(f"database_url: cannot use {url!r}: {e}") from e
    if engine.dialect.name == "sqlite":
        check_sqlite_version(sqlite3.sqlite_version_info)
        if sqlite_file(engine.url):
            owner_only(Path(str(engine.url.database)))
        event.listen(engine, "connect", _sqlite_pragmas)
        if background_checkpoints:
            event.listen(engine, "connect", _no_automatic_checkpoints)
    return engine


def sqlite_file(url: URL) -> bool:
    """Whether ``url`` names a SQLite database in a file (not ``:memory:``, nor a
    ``mode=memory`` URI): one with a WAL, a file mode and a pool of kept connections."""
    return (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and url.query.get("mode") != "memory"
    )


def owner_only(database: Path) -> None:
    """Create the SQLite file mode 0600, or tighten an existing one (and its -wal and
    -shm files): the database holds the access log. SQLite creates -wal and -shm with
    the mode of the database file."""
    try:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
                logger.warning("%s was readable by others: now owner-only (0600)", path)
    except OSError as e:
        raise StorageError(f"database_url: cannot create {database}: {e}") from e


def check_sqlite_version(version: tuple[int, int, int]) -> None:
    """Refuse a SQLite library older than the queries need, before anything is stored."""
    if version < SQLITE_MINIMUM:
        raise StorageError(
            f"SQLite {'.'.join(map(str, version))} is too old: the gateway needs "
            f"{'.'.join(map(str, SQLITE_MINIMUM))} or newer",
            advice="use a Python built against a newer SQLite (Debian 12 has 3.40), or PostgreSQL",
        )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # An acknowledged record must survive power loss: fsync the WAL on every commit.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted content is overwritten with zeros (erasure, issue 18): no erased
    # disclosure survives in a free page of the database file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _no_automatic_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> str:
    """Apply every pending migration; returns the head revision."""
    cfg = _alembic_config(engine)
    try:
        command.upgrade(cfg, "head")
    except SQLAlchemyError as e:
        raise StorageError(f"migration failed: {e}") from e
    return head_revision()


def head_revision() -> str:
    head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as e:
        raise StorageError(f"cannot read the schema revision: {e}") from e


def check_schema(engine: Engine) -> None:
    """Refuse to serve on a schema that is not at the code's head revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise StorageError(
            f"database schema is at revision {current or 'none'}, this gateway needs {head}",
            advice="run `alliance-gateway migrate --config FILE` (back up the database first)",
        )
