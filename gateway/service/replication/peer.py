"""A peer as replication sees it: what a peer sends (``PeerCheckpoint``, ``PeerEntry``),
the connection to it (``PeerClient``, implemented by ``gateway.transport.peer_client``),
the log we pull from it (``PeerLog``), the puller's settings and its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.core import dsse
from gateway.core.notes import NoteVerifier

__all__ = [
    "PeerCheckpoint",
    "PeerClient",
    "PeerEntry",
    "PeerItem",
    "PeerLog",
    "PeerStatus",
    "ReplicationSettings",
    "ReplicationStream",
]


# -- what travels ------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerCheckpoint:
    """A signed checkpoint note and the consistency proof from ``first_size`` to it.

    ``size`` is what the sender says the tree size is; only the verified note counts.
    """

    note: str
    size: int
    first_size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class PeerEntry:
    log_index: int
    record_id: str
    envelope: dsse.Envelope


PeerItem = PeerCheckpoint | PeerEntry


class ReplicationStream(Protocol):
    def __iter__(self) -> Iterator[PeerItem]: ...

    def cancel(self) -> None: ...


class PeerClient(Protocol):
    """A connection to one peer gateway (``gateway.transport.peer_client``)."""

    def replicate(self, from_index: int, known_tree_size: int) -> ReplicationStream: ...

    def consistency_proof(self, first_size: int, second_size: int) -> list[bytes]: ...

    def add_cosignature(self, checkpoint_body: str, signature_line: str) -> None: ...

    def close(self) -> None: ...


# -- the peers we pull -------------------------------------------------------------------


@dataclass(frozen=True)
class PeerLog:
    """A peer log we pull: whose it is and how to check its checkpoints."""

    member_id: str  # the peer gateway's member id
    origin: str
    verifier: NoteVerifier


@dataclass(frozen=True)
class ReplicationSettings:
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # Entries held before asking the peer for a prefix proof (bounds memory in catch-up).
    batch_max_entries: int = 1000


@dataclass(frozen=True)
class PeerStatus:
    peer: str
    origin: str
    next_index: int
    peer_size: int  # size of the newest verified checkpoint
    since: datetime  # when we started pulling (or first recorded this peer)
    caught_up_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str
    connected: bool = False

    @property
    def entries_behind(self) -> int:
        return max(0, self.peer_size - self.next_index)

    def seconds_behind(self, now: datetime) -> float:
        """0 while connected (or last seen) with every entry of the newest checkpoint;
        otherwise the time since our copy of the peer's log was last complete."""
        if self.entries_behind == 0 and self.consecutive_failures == 0:
            return 0.0
        return max(0.0, (now - (self.caught_up_at or self.since)).total_seconds())
