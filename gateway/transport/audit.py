"""alliance.v1.AuditLog: checkpoints, proofs, entries and cosignatures."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from gateway import codec
from gateway.errors import RecordError
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import audit_pb2_grpc
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.access_log import AccessLog
from gateway.service.audit import AuditService
from gateway.transport import messages
from gateway.transport.identity import caller_of

_PAGE = 1000


class AuditLogServicer(audit_pb2_grpc.AuditLogServicer):
    def __init__(self, audit: AuditService, access_log: AccessLog | None = None) -> None:
        self._audit = audit
        self._access_log = access_log

    def GetCheckpoint(
        self, request: au.GetCheckpointRequest, context: grpc.ServicerContext
    ) -> au.SignedCheckpoint:
        return au.SignedCheckpoint(note=self._audit.checkpoint_note(request.tree_size))

    def GetInclusionProof(
        self, request: au.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> au.InclusionProof:
        which = request.WhichOneof("leaf")
        if which == "record_id":
            index = self._audit.index_of(codec.record_id_from_pb(request.record_id, "record_id"))
        elif which == "leaf_index":
            index = request.leaf_index
        else:
            raise RecordError("leaf: set record_id or leaf_index")
        by_id = which == "record_id"  # index_of read the entry, intact
        size, hashes = self._audit.inclusion_proof(index, request.tree_size, entry_read=by_id)
        return au.InclusionProof(leaf_index=index, tree_size=size, hashes=hashes)

    def GetConsistencyProof(
        self, request: au.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> au.ConsistencyProof:
        hashes = self._audit.consistency_proof(request.first_size, request.second_size)
        return au.ConsistencyProof(
            first_size=request.first_size, second_size=request.second_size, hashes=hashes
        )

    def GetEntries(
        self, request: au.GetEntriesRequest, context: grpc.ServicerContext
    ) -> Iterator[ex.LogEntry]:
        start, end = self._audit.entry_range(request.start, request.end)
        if self._access_log is not None:
            self._access_log.read(caller_of(context).member_id, "GetEntries")
        while start < end and context.is_active():
            records = self._audit.entries(start, end, limit=_PAGE)
            if not records:
                break
            for record in records:
                yield messages.log_entry(record)
            start = records[-1].log_index + 1

    def AddCosignature(
        self, request: au.AddCosignatureRequest, context: grpc.ServicerContext
    ) -> au.AddCosignatureResponse:
        caller = caller_of(context).member_id
        self._audit.add_cosignature(caller, request.checkpoint, request.signature_line)
        return au.AddCosignatureResponse()
