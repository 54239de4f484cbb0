"""The caller's identity: the single SPIFFE URI SAN of its verified client certificate."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import grpc
from cryptography import x509

from gateway.core.identifiers import MemberId
from gateway.errors import PermissionError, RecordError

_PEM_KEY = "x509_pem_cert"


@dataclass(frozen=True)
class Caller:
    member: MemberId
    serial: int

    @property
    def member_id(self) -> str:
        return str(self.member)


def caller_of(context: grpc.ServicerContext) -> Caller:
    """Identify the peer; PermissionError when its certificate names no valid member."""
    pems = context.auth_context().get(_PEM_KEY)
    if not pems:
        raise PermissionError("no client certificate was presented")
    return _parse(pems[0])


@functools.lru_cache(maxsize=4096)
def _parse(pem: bytes) -> Caller:
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as e:
        raise PermissionError("the client certificate has no SPIFFE URI SAN") from e
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        raise PermissionError(
            f"the client certificate must carry exactly one URI SAN, it has {len(uris)}"
        )
    try:
        member = MemberId.parse(uris[0])
    except RecordError as e:
        raise PermissionError(f"the certificate's URI SAN is not a member id: {e}") from e
    return Caller(member=member, serial=cert.serial_number)
