"""The client side of federation: one mTLS channel to a peer gateway.

Implements ``gateway.service.replication.PeerClient``. We present our gateway's
certificate and trust only the peer's CA. Whatever the channel says is checked again
above it: checkpoints by the peer's log key, records by their signers' keys, so the
channel's job is access control and confidentiality, not the log's integrity.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc

from gateway import codec
from gateway.errors import FederationError, GatewayError
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import audit_pb2_grpc, federation_pb2_grpc
from gateway.pb.alliance.v1 import federation_pb2 as fe
from gateway.service.replication import PeerCheckpoint, PeerEntry, PeerItem

# Notice a peer that vanished without closing the connection (the stream is idle
# between checkpoints, so only pings show the connection is alive).
_KEEPALIVE_MS = 20_000
_KEEPALIVE_TIMEOUT_MS = 10_000


class GrpcPeerClient:
    def __init__(
        self,
        address: str,
        *,
        peer_ca: bytes,
        certificate_chain: bytes,
        private_key: bytes,
        max_message_bytes: int = 4 * 1024 * 1024,
        timeout_s: float = 10.0,
    ) -> None:
        self._address = address
        self._timeout_s = timeout_s
        credentials = grpc.ssl_channel_credentials(
            root_certificates=peer_ca,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
        self._channel = grpc.secure_channel(
            address,
            credentials,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.keepalive_time_ms", _KEEPALIVE_MS),
                ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
            ],
        )
        self._federation = federation_pb2_grpc.FederationStub(self._channel)
        self._audit = audit_pb2_grpc.AuditLogStub(self._channel)

    @classmethod
    def from_files(
        cls,
        address: str,
        *,
        peer_ca_file: Path,
        cert_file: Path,
        key_file: Path,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> GrpcPeerClient:
        try:
            return cls(
                address,
                peer_ca=peer_ca_file.read_bytes(),
                certificate_chain=cert_file.read_bytes(),
                private_key=key_file.read_bytes(),
                max_message_bytes=max_message_bytes,
            )
        except OSError as e:
            raise FederationError(f"cannot read TLS material for peer {address}: {e}") from e

    def replicate(self, from_index: int, known_tree_size: int) -> _Stream:
        call = self._federation.Replicate(
            fe.ReplicateRequest(from_index=from_index, known_tree_size=known_tree_size)
        )
        return _Stream(call, self._address)

    def consistency_proof(self, first_size: int, second_size: int) -> list[bytes]:
        try:
            reply = self._audit.GetConsistencyProof(
                au.GetConsistencyProofRequest(first_size=first_size, second_size=second_size),
                timeout=self._timeout_s,
            )
        except grpc.RpcError as e:
            raise _error(self._address, "GetConsistencyProof", e) from e
        return list(reply.hashes)

    def add_cosignature(self, checkpoint_body: str, signature_line: str) -> None:
        try:
            self._audit.AddCosignature(
                au.AddCosignatureRequest(checkpoint=checkpoint_body, signature_line=signature_line),
                timeout=self._timeout_s,
            )
        except grpc.RpcError as e:
            raise _error(self._address, "AddCosignature", e) from e

    def close(self) -> None:
        self._channel.close()


class _Stream:
    def __init__(self, call: Iterator[fe.ReplicateResponse], address: str) -> None:
        self._call = call
        self._address = address
        self._cancelled = False

    def __iter__(self) -> Iterator[PeerItem]:
        try:
            for response in self._call:
                yield _item(response)
        except grpc.RpcError as e:
            if self._cancelled:
                return
            raise _error(self._address, "Replicate", e) from e

    def cancel(self) -> None:
        self._cancelled = True
        cancel = getattr(self._call, "cancel", None)
        if callable(cancel):
            cancel()


def _item(response: fe.ReplicateResponse) -> PeerItem:
    which = response.WhichOneof("item")
    if which == "checkpoint":
        update = response.checkpoint
        return PeerCheckpoint(
            note=update.checkpoint.note,
            size=update.consistency.second_size,
            first_size=update.consistency.first_size,
            proof=tuple(bytes(h) for h in update.consistency.hashes),
        )
    if which == "entry":
        entry = response.entry
        try:
            envelope = codec.envelope_from_pb(entry.envelope)
        except GatewayError as e:
            raise FederationError(f"entry {entry.log_index}: malformed envelope: {e}") from e
        return PeerEntry(log_index=entry.log_index, record_id=entry.record_id, envelope=envelope)
    raise FederationError("the peer sent an empty ReplicateResponse")


def _error(address: str, method: str, e: grpc.RpcError) -> FederationError:
    code = e.code() if isinstance(e, grpc.Call) else None
    details = e.details() if isinstance(e, grpc.Call) else str(e)
    name = code.name if code is not None else "UNKNOWN"
    advice = None
    if code is grpc.StatusCode.PERMISSION_DENIED:
        advice = "the peer does not list this gateway as a peer: exchange configuration"
    elif code is grpc.StatusCode.UNAVAILABLE:
        advice = "the peer is down or unreachable; replication retries with backoff"
    return FederationError(f"peer {address}: {method}: {name}: {details}", advice=advice)
