"""The certificates made by ``certs`` work with gRPC's TLS stack (BoringSSL) for mTLS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certs import pki

TD = "north.example"
PLATFORM = f"spiffe://{TD}/platform/acme"
METHOD = "/test.Echo/Echo"


@dataclass(frozen=True)
class Pki:
    ca_dir: Path
    ca_pem: bytes
    server: pki.IssuedFiles
    client: pki.IssuedFiles
    foreign_client: pki.IssuedFiles
    expired_client: pki.IssuedFiles


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    pki.create_ca(root / "ca", TD)
    pki.create_ca(root / "other-ca", TD)
    now = dt.datetime.now(dt.UTC)
    return Pki(
        ca_dir=root / "ca",
        ca_pem=(root / "ca" / "ca.pem").read_bytes(),
        server=pki.issue_gateway(root / "ca", TD, "gw1", root / "server"),
        client=pki.issue_member(root / "ca", PLATFORM, root / "client"),
        foreign_client=pki.issue_member(root / "other-ca", PLATFORM, root / "foreign"),
        expired_client=pki.issue_member(
            root / "ca",
            PLATFORM,
            root / "expired",
            not_before=now - dt.timedelta(days=30),
            not_after=now - dt.timedelta(days=1),
        ),
    )


@contextmanager
def _echo_server(material: Pki, seen: list[Mapping[str, list[bytes]]]) -> Iterator[str]:
    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        # types-grpcio says Mapping[str, bytes]; each value is really a list of bytes.
        auth = cast("Mapping[str, Iterable[bytes]]", context.auth_context())
        seen.append({k: list(v) for k, v in auth.items()})
        return request

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    credentials = grpc.ssl_server_credentials(
        [(material.server.key.read_bytes(), material.server.cert.read_bytes())],
        root_certificates=material.ca_pem,
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=1).wait()


def _call(address: str, ca_pem: bytes, key: bytes | None, cert: bytes | None) -> bytes:
    credentials = grpc.ssl_channel_credentials(ca_pem, key, cert)
    # No ssl_target_name_override: the gateway certificate carries IP SAN 127.0.0.1.
    with grpc.secure_channel(address, credentials) as channel:
        echo: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        return echo(b"ping", timeout=10)


def _files(issued: pki.IssuedFiles) -> tuple[bytes, bytes]:
    return issued.key.read_bytes(), issued.cert.read_bytes()


def _forge(material: Pki, member_id: str) -> tuple[bytes, bytes]:
    """A certificate the CA key signs directly, bypassing issue_member's checks."""
    ca_cert = x509.load_pem_x509_certificate(material.ca_pem)
    ca_key = serialization.load_pem_private_key(
        (material.ca_dir / "ca-key.pem").read_bytes(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(member_id)]),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def test_member_certificate_authenticates_and_exposes_spiffe_id(material: Pki) -> None:
    seen: list[Mapping[str, list[bytes]]] = []
    with _echo_server(material, seen) as address:
        assert _call(address, material.ca_pem, *_files(material.client)) == b"ping"
    (auth,) = seen
    assert auth["transport_security_type"] == [b"ssl"]
    # gRPC sets peer_spiffe_id only for exactly one URI SAN that is a valid SPIFFE id.
    assert auth["peer_spiffe_id"] == [PLATFORM.encode()]
    assert auth["peer_uri"] == [PLATFORM.encode()]
    assert auth["x509_subject_alternative_name"] == [PLATFORM.encode()]
    (pem,) = auth["x509_pem_cert"]
    assert pki.read_member_id(pem) == PLATFORM
    assert pki.certificate_serial(pem) == material.client.serial


def test_gateway_certificate_works_as_a_client(material: Pki) -> None:
    seen: list[Mapping[str, list[bytes]]] = []
    with _echo_server(material, seen) as address:
        assert _call(address, material.ca_pem, *_files(material.server)) == b"ping"
    (auth,) = seen
    member_id = f"spiffe://{TD}/gateway/gw1".encode()
    assert auth["peer_spiffe_id"] == [member_id]
    # The SAN list mixes URI, DNS and IP names: read the member id from peer_spiffe_id.
    assert auth["x509_subject_alternative_name"] == [member_id, b"localhost", b"127.0.0.1"]
    assert auth["peer_dns"] == [b"localhost"]


@pytest.mark.parametrize("which", ["foreign_ca", "no_client_cert", "expired", "outside_domain"])
def test_untrusted_clients_are_refused(material: Pki, which: str) -> None:
    key: bytes | None
    cert: bytes | None
    if which == "foreign_ca":
        key, cert = _files(material.foreign_client)
    elif which == "no_client_cert":
        key, cert = None, None
    elif which == "expired":
        key, cert = _files(material.expired_client)
    else:  # the CA's name constraint confines URI SANs to its trust domain
        key, cert = _forge(material, "spiffe://south.example/platform/acme")
    seen: list[Mapping[str, list[bytes]]] = []
    with _echo_server(material, seen) as address, pytest.raises(grpc.RpcError) as raised:
        _call(address, material.ca_pem, key, cert)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert seen == []


def test_client_refuses_a_server_from_another_ca(material: Pki, tmp_path: Path) -> None:
    pki.create_ca(tmp_path / "third", TD)
    third_ca = (tmp_path / "third" / "ca.pem").read_bytes()
    with _echo_server(material, []) as address, pytest.raises(grpc.RpcError) as raised:
        _call(address, third_ca, *_files(material.client))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
