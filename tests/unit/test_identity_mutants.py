"""Who the caller is, and which CA may vouch for it: the refusals named exactly.

Written against the mutants that survived ``gateway/transport/identity.py``'s first
mutation run (docs/TESTING.md, run 4). A refusal reaches the caller as its gRPC status
message and the ``alliance-reason`` trailer (docs/PROTOCOL.md, Reason codes), so the
message, the advice and the reason are compared whole: a holder of a misissued
certificate, or the CA operator reading the refusal log, must be told which rule the
certificate broke.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from certtest import certificate, pem
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certs import pki
from gateway.core.identifiers import MemberId
from gateway.errors import PermissionError, RecordError
from gateway.transport.identity import TrustBundles, caller_of

DOMAIN = "north.example"
MEMBER = f"spiffe://{DOMAIN}/platform/acme"


class _Context:
    """The part of a grpc.ServicerContext that identity reads."""

    def __init__(self, pem: bytes | None) -> None:
        self._pem = pem

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return {} if self._pem is None else {"x509_pem_cert": [self._pem]}


def _caller_of(pem: bytes | None) -> Any:
    return caller_of(cast(grpc.ServicerContext, _Context(pem)))


def _pem(sans: list[x509.GeneralName] | None) -> bytes:
    """A leaf carrying exactly ``sans`` (no SubjectAlternativeName at all when None).
    identity reads what TLS verified; the chain is the TrustBundles' business."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
    return pem(certificate(name, ec.generate_private_key(ec.SECP256R1()), sans=sans))


def _refusal(pem: bytes | None) -> PermissionError:
    with pytest.raises(PermissionError) as refused:
        _caller_of(pem)
    return refused.value


def test_a_call_without_a_certificate_is_refused_as_unauthenticated() -> None:
    """A call that reached a handler with no client certificate (a listener configured
    without client authentication) is refused with the reason clients act on,
    ``unauthenticated`` ("present a certificate"), not the catch-all
    ``permission-denied`` ("your role may not")."""
    refused = _refusal(None)
    assert refused.message == "no client certificate was presented"
    assert refused.reason == "unauthenticated"


def test_a_certificate_without_a_san_extension_names_the_missing_spiffe_id() -> None:
    """Attack: a certificate a peer's unconstrained CA issued to a non-member service.
    The refusal says what is missing, so it is not mistaken for a revoked member."""
    refused = _refusal(_pem(None))
    assert refused.message == "the client certificate has no SPIFFE URI SAN"
    assert refused.reason == "permission-denied"


@pytest.mark.parametrize(
    ("sans", "count"),
    [
        ([x509.DNSName("acme.example")], 0),
        (
            [
                x509.UniformResourceIdentifier(MEMBER),
                x509.UniformResourceIdentifier(f"spiffe://{DOMAIN}/authority/amr"),
            ],
            2,
        ),
    ],
)
def test_a_certificate_must_carry_exactly_one_uri_san(
    sans: list[x509.GeneralName], count: int
) -> None:
    """Attack: a certificate naming two members (a platform and an authority) would
    act as whichever one the gateway picked; one with only a DNS name names none.
    Both are refused, and the refusal counts the URI SANs it found."""
    refused = _refusal(_pem(sans))
    assert refused.message == (
        f"the client certificate must carry exactly one URI SAN, it has {count}"
    )


def test_a_uri_san_that_is_not_a_member_id_is_refused_with_the_rule_it_breaks() -> None:
    """Attack: a URI inside the trust domain that names no role (``admin``): nothing to
    authorize. The refusal quotes the member-id rule the URI breaks."""
    uri = f"spiffe://{DOMAIN}/admin/acme"
    with pytest.raises(RecordError) as rule:
        MemberId.parse(uri)
    refused = _refusal(_pem([x509.UniformResourceIdentifier(uri)]))
    assert refused.message == f"the certificate's URI SAN is not a member id: {rule.value}"


def test_the_one_member_id_is_the_caller() -> None:
    """The control: one URI SAN, a member id, names the caller."""
    assert _caller_of(_pem([x509.UniformResourceIdentifier(MEMBER)])).member_id == MEMBER


# --- which CA may vouch for which trust domain ------------------------------------------


@pytest.fixture(scope="module")
def pki_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundles")
    pki.create_ca(root / "old-ca", DOMAIN)
    pki.create_ca(root / "new-ca", DOMAIN)
    pki.create_ca(root / "south-ca", "south.example")
    return root


def _issued(root: Path, ca: str, member: str) -> Any:
    files = pki.issue_member(root / ca, member, root / "out" / ca)
    return _caller_of(files.cert.read_bytes())


def test_during_a_ca_rollover_both_cas_of_the_domain_vouch_for_it(pki_root: Path) -> None:
    """A trust domain's bundle holds its old and its new CA while certificates are
    reissued. A member certificate issued by the second CA of the bundle is admitted:
    the check tries every CA of the domain, not only the first."""
    bundles = TrustBundles(
        {DOMAIN: [pki_root / "old-ca" / "ca.pem", pki_root / "new-ca" / "ca.pem"]}
    )
    bundles.check(_issued(pki_root, "new-ca", MEMBER))
    bundles.check(_issued(pki_root, "old-ca", MEMBER))


def test_a_ca_outside_the_domain_s_bundle_cannot_vouch_for_it(pki_root: Path) -> None:
    """Attack: a certificate for one of our members from a CA our TLS trusts but that
    is not ours (a peer region's, or our retired CA once it left the bundle). Refused,
    naming the member, the trust domain and which certificate to use instead."""
    bundles = TrustBundles(
        {
            DOMAIN: [pki_root / "old-ca" / "ca.pem"],
            "south.example": [pki_root / "south-ca" / "ca.pem"],
        }
    )
    with pytest.raises(PermissionError) as refused:
        bundles.check(_issued(pki_root, "new-ca", MEMBER))
    assert refused.value.message == (
        f"the certificate of {MEMBER} was not issued by a CA of trust domain {DOMAIN}"
    )
    assert refused.value.advice == "use the certificate your own alliance's CA issued"
    assert refused.value.reason == "permission-denied"
