"""Federation state in SQL: where replication from each peer stands (``peer_cursors``)
and the evidence of peers' misbehaving logs (``federation_evidence``).

``PeerWrites`` is the part of ``UnitOfWork`` that saves a peer's cursor with the
records of the same batch; ``PeerStore`` the part of ``SqlStore`` that reads cursors
and evidence and saves either on its own (a new checkpoint, a failure, a fork).
"""

from __future__ import annotations

import dataclasses
from base64 import b64decode, b64encode
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.errors import StorageError
from gateway.storage.base import StoreBase, UnitBase
from gateway.storage.models import Base, FederationEvidenceRow, PeerCursorRow

__all__ = ["PeerCursor", "PeerStore", "PeerWrites", "StoredEvidence"]

_CURSORS = Base.metadata.tables["peer_cursors"]


@dataclass(frozen=True)
class PeerCursor:
    """Replication state for one peer gateway (see ``PeerCursorRow``)."""

    peer: str
    origin: str
    next_index: int
    range_hashes: tuple[bytes, ...]
    checkpoint_size: int
    checkpoint_root: bytes | None
    checkpoint_note: str | None
    caught_up_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str
    updated_at: datetime


@dataclass(frozen=True)
class StoredEvidence:
    peer: str
    origin: str
    kind: str
    accepted_note: str
    conflicting_note: str
    proof: tuple[bytes, ...]
    detail: str
    recorded_at: datetime


def _cursor(row: PeerCursorRow) -> PeerCursor:
    hashes = row.range_hashes
    return PeerCursor(
        peer=row.peer,
        origin=row.origin,
        next_index=row.next_index,
        range_hashes=tuple(hashes[i : i + 32] for i in range(0, len(hashes), 32)),
        checkpoint_size=row.checkpoint_size,
        checkpoint_root=row.checkpoint_root,
        checkpoint_note=row.checkpoint_note,
        caught_up_at=row.caught_up_at,
        last_success_at=row.last_success_at,
        consecutive_failures=row.consecutive_failures,
        last_error=row.last_error,
        updated_at=row.updated_at,
    )


def _merge_cursor(conn: Connection, c: PeerCursor) -> None:
    """Insert or update; a cursor never moves backwards (two replicas pulling one peer)."""
    row = conn.execute(select(_CURSORS).where(_CURSORS.c.peer == c.peer).with_for_update()).first()
    if row is not None and row.origin == c.origin:
        if row.next_index > c.next_index:
            hashes = row.range_hashes
            c = dataclasses.replace(
                c,
                next_index=row.next_index,
                range_hashes=tuple(hashes[i : i + 32] for i in range(0, len(hashes), 32)),
            )
        if row.checkpoint_size > c.checkpoint_size:
            c = dataclasses.replace(
                c,
                checkpoint_size=row.checkpoint_size,
                checkpoint_root=row.checkpoint_root,
                checkpoint_note=row.checkpoint_note,
            )
    values = {f.name: getattr(c, f.name) for f in dataclasses.fields(PeerCursor)}
    values["range_hashes"] = b"".join(c.range_hashes)
    if row is None:
        conn.execute(insert(_CURSORS).values(values))
    else:
        conn.execute(update(_CURSORS).where(_CURSORS.c.peer == c.peer).values(values))


class PeerWrites(UnitBase):
    """The federation state's part of a ``UnitOfWork``."""

    def put_peer_cursor(self, cursor: PeerCursor) -> None:
        """Save a peer's replication state with the records of the same batch."""
        _merge_cursor(self._c, cursor)


class PeerStore(StoreBase):
    """The federation state's part of a ``SqlStore``: cursors and evidence."""

    def peer_cursor(self, peer: str) -> PeerCursor | None:
        with self._read() as s:
            row = s.get(PeerCursorRow, peer)
            return None if row is None else _cursor(row)

    def peer_cursors(self) -> list[PeerCursor]:
        with self._read() as s:
            return [
                _cursor(r) for r in s.scalars(select(PeerCursorRow).order_by(PeerCursorRow.peer))
            ]

    def put_peer_cursor(self, cursor: PeerCursor) -> None:
        """Save a peer's state on its own (a new checkpoint, a failure, no records)."""
        try:
            with self.engine.begin() as conn:
                _merge_cursor(conn, cursor)
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def add_evidence(self, evidence: StoredEvidence) -> None:
        try:
            with Session(self.engine) as s, s.begin():
                s.add(
                    FederationEvidenceRow(
                        peer=evidence.peer,
                        origin=evidence.origin,
                        kind=evidence.kind,
                        accepted_note=evidence.accepted_note,
                        conflicting_note=evidence.conflicting_note,
                        proof="".join(b64encode(h).decode() + "\n" for h in evidence.proof),
                        detail=evidence.detail,
                        recorded_at=evidence.recorded_at,
                    )
                )
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def evidence(self, peer: str | None = None) -> list[StoredEvidence]:
        q = select(FederationEvidenceRow).order_by(FederationEvidenceRow.id)
        if peer is not None:
            q = q.where(FederationEvidenceRow.peer == peer)
        with self._read() as s:
            return [
                StoredEvidence(
                    peer=r.peer,
                    origin=r.origin,
                    kind=r.kind,
                    accepted_note=r.accepted_note,
                    conflicting_note=r.conflicting_note,
                    proof=tuple(b64decode(line) for line in r.proof.splitlines()),
                    detail=r.detail,
                    recorded_at=r.recorded_at,
                )
                for r in s.scalars(q)
            ]
