"""A gRPC health probe over mTLS (grpc.health.v1), for container and Kubernetes checks."""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import FederationError


def probe(
    target: str,
    *,
    ca_file: Path,
    cert_file: Path,
    key_file: Path,
    timeout_s: float,
    service: str = "",
) -> bool:
    """True when the server at ``target`` reports SERVING; FederationError when unreachable."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes(),
        private_key=key_file.read_bytes(),
        certificate_chain=cert_file.read_bytes(),
    )
    with grpc.secure_channel(target, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as e:
            raise FederationError(f"{target}: {e.code().name}: {e.details()}") from e
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
