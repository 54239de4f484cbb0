"""The alliance PKI tool: a CA per trust domain, member certificates whose single URI
SAN is the member id (SPIFFE), revocation through a CRL, Ed25519 record-signing keys.
"""

from __future__ import annotations

from certs.pki import (
    CRL_FILE,
    ROLES,
    CaFiles,
    IssuedFiles,
    RevocationList,
    certificate_not_after,
    certificate_serial,
    create_ca,
    generate_signing_key,
    issue_gateway,
    issue_member,
    parse_member_id,
    possession_proof,
    read_member_id,
    refresh_crl,
    revoke,
    signing_public_key_hex,
    write_public_key,
)
from gateway.core.identifiers import MemberId  # the one member-id grammar, from the core

__all__ = [
    "CRL_FILE",
    "ROLES",
    "CaFiles",
    "IssuedFiles",
    "MemberId",
    "RevocationList",
    "certificate_not_after",
    "certificate_serial",
    "create_ca",
    "generate_signing_key",
    "issue_gateway",
    "issue_member",
    "parse_member_id",
    "possession_proof",
    "read_member_id",
    "refresh_crl",
    "revoke",
    "signing_public_key_hex",
    "write_public_key",
]
