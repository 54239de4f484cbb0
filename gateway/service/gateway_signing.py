"""The gateway signing a statement of its own: the one path every record the gateway
issues itself takes (escalations, retirements, holiday calendars, alliance policies,
monthly reports, report submissions) before it is appended.

The statement is authorized as if the gateway had submitted it (the same policy a
member's record passes, with no signer region: the gateway belongs to none), encoded
deterministically (the salts of a redactable statement's disclosures derived from the
gateway's key) and signed with the gateway's key, so replicas that sign the same
statement produce the same bytes and the same record id.
"""

from __future__ import annotations

from gateway import codec
from gateway.core.crypto import SigningKey
from gateway.core.identifiers import MemberId
from gateway.core.policy import authorize_statement
from gateway.core.statements import Listing, Statement
from gateway.service.ledger import Accepted

__all__ = ["sign_as_gateway"]


def sign_as_gateway(
    statement: Statement,
    *,
    key: SigningKey,
    gateway_id: str,
    origin: str,
    listing: Listing | None = None,
) -> Accepted:
    """``statement`` authorized for and signed by the gateway ``gateway_id``, ready to
    append; ``listing`` is the listing a lifecycle step applies to."""
    authorize_statement(MemberId.parse(gateway_id), statement, listing=listing, signer_region=None)
    env = codec.seal(statement, key)  # salts derived from the key (codec.seal)
    return Accepted(env, env.record_id, gateway_id, statement, origin)
