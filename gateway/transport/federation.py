"""alliance.v1.Federation: serve our log to peer gateways (Replicate).

The interceptor admits only gateways (policy) that are configured peers or our own
replicas (admission); the feed (``gateway.service.replication.ReplicationFeed``)
decides what to send. Only entries covered by a checkpoint already sent are sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc

from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import federation_pb2 as fe
from gateway.pb.alliance.v1 import federation_pb2_grpc
from gateway.service.replication import PeerCheckpoint, ReplicationFeed
from gateway.transport import messages
from gateway.transport.streams import guard_of


class FederationServicer(federation_pb2_grpc.FederationServicer):
    def __init__(self, feed: ReplicationFeed, *, stopping: threading.Event) -> None:
        self._feed = feed
        self._stopping = stopping

    def Replicate(
        self, request: fe.ReplicateRequest, context: grpc.ServicerContext
    ) -> Iterator[fe.ReplicateResponse]:
        guard = guard_of(context)

        def active() -> bool:
            guard.check()  # ends the stream of a peer that is no longer admitted
            return bool(context.is_active()) and not self._stopping.is_set()

        for item in self._feed.stream(request.from_index, request.known_tree_size, active):
            if isinstance(item, PeerCheckpoint):
                yield fe.ReplicateResponse(checkpoint=checkpoint_update(item))
            else:
                yield fe.ReplicateResponse(entry=messages.log_entry(item))


def checkpoint_update(item: PeerCheckpoint) -> fe.CheckpointUpdate:
    return fe.CheckpointUpdate(
        checkpoint=au.SignedCheckpoint(note=item.note),
        consistency=au.ConsistencyProof(
            first_size=item.first_size,
            second_size=item.size,
            hashes=list(item.proof),
        ),
    )
