"""What the parts of ``SqlStore`` and ``UnitOfWork`` (gateway.storage.store) share.

``StoreBase``: the engine, the damage map and the guarded reads every part of
``SqlStore`` goes through. ``UnitBase``: the one transaction's connection and the
multi-row INSERT every part of ``UnitOfWork`` writes its batches with. The parts
themselves live beside this module, one per topic: the log and its records
(``log``), the projections (``listings``, ``members``), checkpoints and cosignatures
(``checkpoints``), and federation state (``peers``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Dialect, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.core.logcheck import DamageMap
from gateway.errors import StorageError
from gateway.storage.disclosures import SubjectIndex

__all__ = ["CHUNK", "StoreBase", "UnitBase", "autocommit"]

# SQLite limits bound parameters per statement; stay well below it.
CHUNK = 500
# Parameters in one multi-row INSERT (SQLite allows 32766, PostgreSQL 65535).
_MAX_PARAMETERS = 4000


class StoreBase:
    """The state of a ``SqlStore`` (set by its constructor) and its two kinds of read."""

    engine: Engine
    damage: DamageMap
    subject_index: SubjectIndex | None

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self.engine) as session:
                yield session
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e

    @contextmanager
    def _read_rows(self) -> Iterator[Connection]:
        """A connection for Core reads of plain rows: no ORM session or objects, and no
        transaction (``autocommit``)."""
        try:
            with autocommit(self.engine) as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e


def autocommit(engine: Engine) -> Connection:
    """A connection that reads outside a transaction. On PostgreSQL that is the
    AUTOCOMMIT isolation level (no BEGIN and ROLLBACK round trips). SQLite's driver
    begins a transaction only before a write, so a read is outside one already; setting
    the level there would only cost two statements a read (set on checkout, reset on
    checkin)."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


def placeholder(dialect: Dialect) -> str:
    """The driver's positional parameter mark, for SQL handed to it as is."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


class UnitBase:
    """The state of a ``UnitOfWork`` (set by its constructor) and its bulk INSERT.

    The writes of a batch run on one Connection with Core statements (no ORM session,
    identity map or flushes); those of every batch are built once, in each part's module.
    """

    _c: Connection
    _index: SubjectIndex | None
    # Aware datetimes as the UtcDateTime columns store them, for rows handed to the
    # driver as is (``_insert_rows``).
    _time: Callable[[object], object]

    def _select_in(self, head: str, values: Sequence[str]) -> Sequence[Any]:
        """The rows of ``head`` (``SELECT … WHERE <column>``, the caller's constant text)
        whose column is one of ``values``: one statement of fixed text for any number of
        values, handed to the driver as is. SQLAlchemy would compile an expanding ``IN``
        anew for each new count of values; a commit of a few records runs two such
        look-ups, and their Python cost a commit showed in the one-record path's profile.
        A JSON array on SQLite (json_each; the column's index is used), an array on
        PostgreSQL."""
        if not values:
            return []
        mark = placeholder(self._c.dialect)
        if self._c.dialect.name == "postgresql":
            return self._c.exec_driver_sql(f"{head} = ANY({mark})", (list(values),)).all()
        text = f"{head} IN (SELECT value FROM json_each({mark}))"  # noqa: S608 (constant head)
        return self._c.exec_driver_sql(text, (json.dumps(list(values)),)).all()

    def _insert_rows(
        self, columns: Sequence[str], rows: Sequence[tuple[object, ...]], *, table: str
    ) -> None:
        """Rows of driver-ready values as multi-row INSERTs handed to the driver as is.

        One statement per table and batch: an executemany runs the statement once per
        row, and on SQLite releases and retakes the GIL each time, which under load
        costs more than the insert. Only the values are bound; the text is built from
        the schema's own names (the caller's constants) and placeholders.
        """
        if not rows:
            return
        mark = placeholder(self._c.dialect)
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608
        placeholders = "(" + ", ".join([mark] * len(columns)) + ")"
        per_statement = max(1, _MAX_PARAMETERS // len(columns))
        for i in range(0, len(rows), per_statement):
            chunk = rows[i : i + per_statement]
            values = ", ".join([placeholders] * len(chunk))
            self._c.exec_driver_sql(head + values, tuple(v for row in chunk for v in row))
