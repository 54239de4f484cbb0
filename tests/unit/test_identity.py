"""The caller's identity: parsed from the certificate once, then handed to the handler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import grpc
import pytest

from certs import pki
from gateway.errors import PermissionError
from gateway.transport.identity import authenticated, caller_of

MEMBER = "spiffe://north.example/platform/acme"


class _Context:
    """The part of a grpc.ServicerContext that identity reads, counting the reads."""

    def __init__(self, pem: bytes | None) -> None:
        self._pem = pem
        self.reads = 0

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        self.reads += 1
        return {} if self._pem is None else {"x509_pem_cert": [self._pem]}


def _context(pem: bytes | None) -> Any:
    return cast(grpc.ServicerContext, _Context(pem))


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("pki")
    pki.create_ca(root / "ca", "north.example")
    return pki.issue_member(root / "ca", MEMBER, root / "out").cert.read_bytes()


def test_a_handler_gets_the_caller_the_interceptor_authenticated(pem: bytes) -> None:
    context = _context(pem)
    caller = caller_of(context)
    authenticated(context, caller)
    assert caller_of(context) is caller
    assert context.reads == 1  # the certificate was read once for the call


def test_without_the_interceptor_the_certificate_is_read(pem: bytes) -> None:
    context = _context(pem)
    assert caller_of(context).member_id == MEMBER
    assert caller_of(context).member_id == MEMBER
    assert context.reads == 2


def test_no_certificate_is_refused() -> None:
    with pytest.raises(PermissionError):
        caller_of(_context(None))
