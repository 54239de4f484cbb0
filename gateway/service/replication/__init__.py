"""Pull replication between regional gateways (DESIGN.md §5).

- ``peer``: what a peer sends, the connection to it, the log we pull, settings, status;
- ``puller``: receiving (``PeerPuller``, one thread per peer we pull from;
  ``Replication``, all of them);
- ``verify``: the checks on what a peer sends (checkpoints, consistency, each record),
  before any of it is stored;
- ``feed``: serving (``ReplicationFeed``, the server side of ``Replicate``, and the
  ``CheckpointBeacon`` that wakes its streams).
"""

from gateway.service.replication.feed import CheckpointBeacon, ReplicationFeed
from gateway.service.replication.peer import (
    PeerCheckpoint,
    PeerClient,
    PeerEntry,
    PeerItem,
    PeerLog,
    PeerStatus,
    ReplicationSettings,
    ReplicationStream,
)
from gateway.service.replication.puller import PeerPuller, Replication

__all__ = [
    "CheckpointBeacon",
    "PeerCheckpoint",
    "PeerClient",
    "PeerEntry",
    "PeerItem",
    "PeerLog",
    "PeerPuller",
    "PeerStatus",
    "Replication",
    "ReplicationFeed",
    "ReplicationSettings",
    "ReplicationStream",
]
