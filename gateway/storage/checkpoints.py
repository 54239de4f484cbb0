"""Signed checkpoints of our log and the cosignatures peers add to them
(``checkpoints``, ``cosignatures``).

``CheckpointWrites`` is the part of ``UnitOfWork`` through which the ledger stores a
checkpoint with the batch it covers; ``CheckpointStore`` the part of ``SqlStore`` that
reads checkpoints and keeps cosignatures (each in its own transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.errors import StorageError
from gateway.storage.base import StoreBase, UnitBase
from gateway.storage.models import Base, CheckpointRow, CosignatureRow

__all__ = ["CheckpointStore", "CheckpointWrites", "StoredCheckpoint"]

_CHECKPOINTS = Base.metadata.tables["checkpoints"]
_LATEST_CHECKPOINT_SIZE = select(func.max(_CHECKPOINTS.c.tree_size))


@dataclass(frozen=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    note: str
    signed_at: datetime


def _checkpoint(row: CheckpointRow) -> StoredCheckpoint:
    return StoredCheckpoint(
        tree_size=row.tree_size, root_hash=row.root_hash, note=row.note, signed_at=row.signed_at
    )


class CheckpointWrites(UnitBase):
    """The checkpoints' part of a ``UnitOfWork``."""

    def latest_checkpoint_size(self) -> int | None:
        return self._c.execute(_LATEST_CHECKPOINT_SIZE).scalar()

    def insert_checkpoint(self, cp: StoredCheckpoint) -> None:
        self._c.execute(
            insert(_CHECKPOINTS).values(
                tree_size=cp.tree_size, root_hash=cp.root_hash, note=cp.note, signed_at=cp.signed_at
            )
        )


class CheckpointStore(StoreBase):
    """The checkpoints' part of a ``SqlStore``: checkpoints and their cosignatures."""

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._read() as s:
            row = s.scalars(
                select(CheckpointRow).order_by(CheckpointRow.tree_size.desc()).limit(1)
            ).first()
            return None if row is None else _checkpoint(row)

    def checkpoint_at(self, tree_size: int) -> StoredCheckpoint | None:
        with self._read() as s:
            row = s.get(CheckpointRow, tree_size)
            return None if row is None else _checkpoint(row)

    def checkpoint_after(self, tree_size: int) -> StoredCheckpoint | None:
        """The smallest checkpoint of a tree larger than ``tree_size``."""
        with self._read() as s:
            row = s.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.tree_size > tree_size)
                .order_by(CheckpointRow.tree_size)
                .limit(1)
            ).first()
            return None if row is None else _checkpoint(row)

    def put_cosignature(self, tree_size: int, cosigner: str, line: str, timestamp: int) -> int:
        """Keep ``line`` unless the cosigner's held cosignature of that checkpoint is
        newer: cosignature times never move backwards. Returns the timestamp now held."""
        try:
            with Session(self.engine) as s, s.begin():
                held = s.get(CosignatureRow, (tree_size, cosigner), with_for_update=True)
                if held is not None and held.timestamp > timestamp:
                    return held.timestamp
                s.merge(
                    CosignatureRow(
                        tree_size=tree_size,
                        cosigner=cosigner,
                        signature_line=line,
                        timestamp=timestamp,
                    )
                )
                return timestamp
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def cosignatures(self, tree_size: int) -> list[str]:
        with self._read() as s:
            return list(
                s.scalars(
                    select(CosignatureRow.signature_line)
                    .where(CosignatureRow.tree_size == tree_size)
                    .order_by(CosignatureRow.cosigner)
                )
            )
