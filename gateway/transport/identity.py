"""The caller's identity: the single SPIFFE URI SAN of its verified client certificate."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from gateway.core.identifiers import MemberId
from gateway.errors import PermissionError, RecordError

_PEM_KEY = "x509_pem_cert"
# The attribute under which the interceptor leaves the caller it authenticated on the
# call's context (grpc gives a context no other place for per-call values).
_AUTHENTICATED = "_alliance_caller"


@dataclass(frozen=True)
class Caller:
    member: MemberId
    serial: int
    certificate: x509.Certificate = field(compare=False, repr=False)

    @property
    def member_id(self) -> str:
        return str(self.member)


def caller_of(context: grpc.ServicerContext) -> Caller:
    """Identify the peer; PermissionError when its certificate names no valid member.

    The caller the interceptor authenticated for this call when there is one (see
    ``authenticated``), so a handler does not read and parse the certificate again.
    """
    known = getattr(context, _AUTHENTICATED, None)
    if isinstance(known, Caller):
        return known
    pems = context.auth_context().get(_PEM_KEY)
    if not pems:
        raise PermissionError("no client certificate was presented", reason="unauthenticated")
    return _parse(pems[0])


def authenticated(context: grpc.ServicerContext, caller: Caller) -> None:
    """Keep ``caller``, which passed every check, with the call for its handler."""
    setattr(context, _AUTHENTICATED, caller)


def _parse_certificate(pem: bytes) -> Caller:
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
    return Caller(member=member, serial=cert.serial_number, certificate=cert)


# Cached by assignment, not by decorator: mutmut leaves decorated functions unmutated
# (docs/TESTING.md), and this is the check that names the caller.
_parse = functools.lru_cache(maxsize=4096)(_parse_certificate)


class TrustBundles:
    """Which CAs may vouch for which trust domain (SPIFFE: one bundle per trust domain).

    TLS accepts a certificate that chains to any configured root; ``check`` then requires
    that a CA configured for the trust domain the certificate names issued it, so a
    peer's CA cannot mint identities in our trust domain, or in another peer's. Alliance
    CAs issue member certificates directly (no intermediates).
    """

    def __init__(self, bundles: Mapping[str, Iterable[Path]]) -> None:
        """``bundles``: trust domain -> PEM files of its CA certificates."""
        self._cas = {
            domain: tuple(
                ca for path in paths for ca in x509.load_pem_x509_certificates(path.read_bytes())
            )
            for domain, paths in bundles.items()
        }
        self._issued_by_domain = functools.lru_cache(maxsize=4096)(self._issued_by_domain_uncached)

    def check(self, caller: Caller) -> None:
        """PermissionError unless a CA of the caller's trust domain issued its certificate."""
        domain = caller.member.trust_domain
        if not self._issued_by_domain(caller.certificate, domain):
            raise PermissionError(
                f"the certificate of {caller.member_id} was not issued by a CA of trust "
                f"domain {domain}",
                advice="use the certificate your own alliance's CA issued",
            )

    def _issued_by_domain_uncached(self, cert: x509.Certificate, domain: str) -> bool:
        for ca in self._cas.get(domain, ()):
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
        return False
