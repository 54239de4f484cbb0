"""Checking a public feed entry against the audited log (docs/PROTOCOL.md §8.4).

``verify_entry_proof`` takes the JSON document of ``GET /v1/entries/{id}/proof`` (parsed)
and the log's note verifier key, and checks, in this order:

1. the checkpoint note is signed by the log's key; its size is the document's tree size;
2. every leaf has a known role, once; its envelope hashes (SHA-256 of its PAE bytes) to
   its record id, and its RFC 9162 audit path leads from ``SHA-256(0x00 ‖ PAE)`` at its
   index to the checkpoint's root;
3. the ``authority`` leaf is a member record signed with the log's key (a gateway signs
   its members' records with the key its checkpoints are signed with) of a member
   whose role is authority: the deciding authority the entry names, whose trust domain
   is the publishing gateway's (the deciding authority's alliance publishes, §8.1);
4. an authority's listing: the authority is the listing's issuer and the ``listing``
   leaf is signed by a key of its record; there is no ``reporter``,
   ``reporter_gateway`` or ``identification`` leaf. A platform's report: the
   ``reporter`` leaf is the issuer's member record and the listing is signed by one of
   its keys; the ``identification`` leaf is an IDENTIFIED status change of this
   listing, issued and signed by the authority (a key of its record), which acts for
   the listing's reporting unit or nationally. A platform of the publishing alliance:
   its record is signed with the log's key, and there is no ``reporter_gateway`` leaf.
   A platform of another alliance: the ``reporter_gateway`` leaf is that alliance's
   gateway's own member record (role gateway, of the platform's trust domain, issued
   by itself and signed by a key it lists), which the publishing log holds (a gateway
   takes it in only from a configured peer); the platform's record is issued by that
   gateway and signed by one of its keys;
5. a ``removal`` leaf refers to the listing, closes it, and is signed by the listing's
   issuer, the deciding authority, another authority acting for the listing's unit
   whose member record is the ``remover`` leaf, or (by its issuer) the gateway;
6. the published fields equal those computed from the signed statements
   (``publication.entry_fields``).

Payloads are decoded by the caller's ``decode`` (``gateway.codec.decode_statement``):
the core knows no protobuf. Any failure raises ``VerificationError`` naming the part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.core import dsse, merkle
from gateway.core.crypto import VerifyingKey
from gateway.core.disclosure import Disclosure, Group
from gateway.core.fold import ListingView
from gateway.core.identifiers import MemberId, Role
from gateway.core.lifecycle import StepRecord, derive, identified_when_signed
from gateway.core.notes import Checkpoint, NoteVerifier, open_checkpoint
from gateway.core.policy import has_jurisdiction
from gateway.core.publication import (
    CLOSING_STEPS,
    FIELD_LABELS,
    Identification,
    PublicStatus,
    entry_fields,
    publication,
)
from gateway.core.statements import (
    LifecycleStep,
    Listing,
    MemberRecord,
    Statement,
    StatusChange,
)
from gateway.errors import GatewayError, LogIntegrityError, VerificationError

__all__ = ["Leaf", "VerifiedEntry", "parse_leaf", "verify_entry_proof"]

Decoder = Callable[[str, bytes, tuple[Disclosure, ...]], Statement]


@dataclass(frozen=True, slots=True)
class Leaf:
    role: str
    log_index: int
    record_id: str
    envelope: dsse.Envelope
    audit_path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class VerifiedEntry:
    checkpoint: Checkpoint
    fields: Mapping[str, str]
    leaves: int


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationError(f"{what}: must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise VerificationError(f"{what}: not base64: {e}") from None


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VerificationError(f"{what}: must be a non-negative integer")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise VerificationError(f"{what}: must be a string")
    return value


def _disclosures(items: object, what: str) -> tuple[Disclosure, ...]:
    """A leaf's disclosures (revision 4): ``[{group, salt, value}]``, bytes in base64."""
    if not isinstance(items, list):
        raise VerificationError(f"{what}: must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("group") not in tuple(Group):
            raise VerificationError(f"{what}: each is an object with a group of 1 to 3")
        out.append(
            Disclosure(
                Group(item["group"]),
                _b64(item.get("salt"), f"{what}.salt"),
                _b64(item.get("value"), f"{what}.value"),
            )
        )
    return tuple(out)


def parse_leaf(doc: object, what: str) -> Leaf:
    if not isinstance(doc, dict):
        raise VerificationError(f"{what}: must be an object")
    env = doc.get("envelope")
    if not isinstance(env, dict) or not isinstance(env.get("signatures"), list):
        raise VerificationError(f"{what}.envelope: must be a DSSE envelope object")
    try:
        envelope = dsse.Envelope(
            payload=_b64(env.get("payload"), f"{what}.envelope.payload"),
            payload_type=_str(env.get("payloadType"), f"{what}.envelope.payloadType"),
            signatures=tuple(
                dsse.Signature(
                    keyid=_str(s.get("keyid", ""), f"{what}.envelope.signatures.keyid"),
                    sig=_b64(s.get("sig"), f"{what}.envelope.signatures.sig"),
                )
                for s in env["signatures"]
                if isinstance(s, dict)
            ),
            disclosures=_disclosures(env.get("disclosures", []), f"{what}.envelope.disclosures"),
        )
    except GatewayError as e:
        raise VerificationError(f"{what}.envelope: {e}") from None
    path = doc.get("audit_path")
    if not isinstance(path, list):
        raise VerificationError(f"{what}.audit_path: must be a list")
    return Leaf(
        role=_str(doc.get("role"), f"{what}.role"),
        log_index=_int(doc.get("log_index"), f"{what}.log_index"),
        record_id=_str(doc.get("record_id"), f"{what}.record_id"),
        envelope=envelope,
        audit_path=tuple(_b64(h, f"{what}.audit_path") for h in path),
    )


def _included(leaf: Leaf, checkpoint: Checkpoint) -> None:
    entry = leaf.envelope.pae()
    if hashlib.sha256(entry).hexdigest() != leaf.record_id:
        raise VerificationError(
            f"{leaf.role} leaf: its envelope does not hash to record id {leaf.record_id}"
        )
    try:
        merkle.verify_inclusion(
            leaf.log_index,
            checkpoint.size,
            merkle.leaf_hash(entry),
            leaf.audit_path,
            checkpoint.root_hash,
        )
    except LogIntegrityError as e:
        raise VerificationError(f"{leaf.role} leaf: not in the checkpoint's tree: {e}") from e


def _statement(leaf: Leaf, decode: Decoder) -> Statement:
    try:
        envelope = leaf.envelope
        return decode(envelope.payload_type, envelope.payload, envelope.disclosures)
    except GatewayError as e:
        raise VerificationError(f"{leaf.role} leaf: the payload does not parse: {e}") from e


def _signed_by(leaf: Leaf, keys: list[VerifyingKey], who: str) -> None:
    try:
        dsse.verify(leaf.envelope, keys)
    except VerificationError as e:
        raise VerificationError(f"{leaf.role} leaf: not signed by {who}: {e}") from e


# The leaves of a proof (docs/PROTOCOL.md §8.4): always the listing and the deciding
# authority's member record; for a platform's report also the platform's member record
# and the identification, and, when the platform is of another alliance, that alliance's
# gateway's record; for a removed entry the removal (and, by another authority, its record).
_REQUIRED = frozenset({"listing", "authority"})
_REPORT = frozenset({"reporter", "identification"})
_ROLES = _REQUIRED | _REPORT | {"reporter_gateway", "removal", "remover"}


def _leaves(doc: Mapping[str, Any], checkpoint: Checkpoint) -> dict[str, Leaf]:
    raw_leaves = doc.get("leaves")
    if not isinstance(raw_leaves, list):
        raise VerificationError("leaves: must be a list")
    leaves: dict[str, Leaf] = {}
    for i, raw in enumerate(raw_leaves):
        leaf = parse_leaf(raw, f"leaves[{i}]")
        if leaf.role not in _ROLES:
            raise VerificationError(f"leaves[{i}]: unknown role {leaf.role!r}")
        if leaf.role in leaves:
            raise VerificationError(f"leaves[{i}]: a second {leaf.role} leaf")
        _included(leaf, checkpoint)
        leaves[leaf.role] = leaf
    for role in sorted(_REQUIRED):
        if role not in leaves:
            raise VerificationError(f"leaves: no {role} leaf")
    return leaves


def _member(leaf: Leaf, log_key: VerifyingKey, decode: Decoder) -> MemberRecord:
    member = _member_from(leaf, decode)
    _signed_by(leaf, [log_key], "the log's gateway key")
    return member


def _domain(member_id: str) -> str:
    return MemberId.parse(member_id).trust_domain


def _reporter(
    leaves: Mapping[str, Leaf],
    listing: Listing,
    publisher: str,
    log_key: VerifyingKey,
    decode: Decoder,
) -> MemberRecord:
    """The platform's member record, vouched for by the log's key (a platform of the
    publishing alliance, ``publisher``) or by its own alliance's gateway record
    (``reporter_gateway``)."""
    reporter_leaf = leaves["reporter"]
    gateway_leaf = leaves.get("reporter_gateway")
    if _domain(listing.issuer) == publisher:
        if gateway_leaf is not None:
            raise VerificationError(
                f"reporter_gateway leaf: {listing.issuer} is of the publishing alliance, "
                "whose log key signs its record"
            )
        return _member(reporter_leaf, log_key, decode)
    if gateway_leaf is None:
        raise VerificationError(
            f"leaves: no reporter_gateway leaf (the platform {listing.issuer} is of another "
            "alliance: its gateway's record vouches for the platform's)"
        )
    gateway = _member_from(gateway_leaf, decode)
    gateway_id = MemberId.parse(gateway.member_id)
    if (
        gateway_id.role is not Role.GATEWAY
        or gateway.role is not Role.GATEWAY
        or gateway_id.trust_domain != _domain(listing.issuer)
    ):
        raise VerificationError(
            f"reporter_gateway leaf: {gateway.member_id} is not a gateway of the platform's "
            f"trust domain {_domain(listing.issuer)}"
        )
    if gateway.issuer != gateway.member_id:
        raise VerificationError(
            f"reporter_gateway leaf: issued by {gateway.issuer}, not by the gateway itself"
        )
    _signed_by(gateway_leaf, _keys(gateway), f"the gateway {gateway.member_id} itself")
    reporter = _member_from(reporter_leaf, decode)
    if reporter.issuer != gateway.member_id:
        raise VerificationError(
            f"reporter leaf: issued by {reporter.issuer}, not by the gateway {gateway.member_id}"
        )
    _signed_by(reporter_leaf, _keys(gateway), f"the gateway {gateway.member_id}")
    return reporter


def _member_from(leaf: Leaf, decode: Decoder) -> MemberRecord:
    member = _statement(leaf, decode)
    if not isinstance(member, MemberRecord):
        raise VerificationError(f"{leaf.role} leaf: not a member record")
    return member


def _keys(member: MemberRecord) -> list[VerifyingKey]:
    return [VerifyingKey.from_raw(k.public_key) for k in member.keys]


def _acts_for(leaf: Leaf, authority: MemberRecord, listing: Listing) -> None:
    """``authority`` acts for the listing's reporting unit, or nationally."""
    if not has_jurisdiction(authority.region_code, authority.scope, listing.region_code):
        raise VerificationError(
            f"{leaf.role} leaf: {authority.member_id} (region {authority.region_code}) "
            f"does not act for the listing's region {listing.region_code}"
        )


def _identification(
    leaf: Leaf, listing_id: str, listing: Listing, authority: MemberRecord, decode: Decoder
) -> Identification:
    stmt = _statement(leaf, decode)
    if not isinstance(stmt, StatusChange) or stmt.step is not LifecycleStep.IDENTIFIED:
        raise VerificationError("identification leaf: not an IDENTIFIED status change")
    if stmt.listing_id != listing_id:
        raise VerificationError("identification leaf: refers to another listing")
    if stmt.issuer != authority.member_id:
        raise VerificationError(
            f"identification leaf: issued by {stmt.issuer}, not by the authority leaf's "
            f"member {authority.member_id}"
        )
    _acts_for(leaf, authority, listing)
    _signed_by(leaf, _keys(authority), f"the authority {authority.member_id}")
    return Identification(leaf.record_id, stmt)


def _removal(
    leaves: Mapping[str, Leaf],
    listing: Listing,
    signers: Mapping[str, list[VerifyingKey]],
    log_key: VerifyingKey,
    decode: Decoder,
) -> StatusChange:
    leaf = leaves["removal"]
    stmt = _statement(leaf, decode)
    if not isinstance(stmt, StatusChange) or stmt.step not in CLOSING_STEPS:
        raise VerificationError("removal leaf: not a closing status change")
    if stmt.listing_id != leaves["listing"].record_id:
        raise VerificationError("removal leaf: refers to another listing")
    keys = signers.get(stmt.issuer)
    remover_leaf = leaves.get("remover")
    if keys is not None:
        if remover_leaf is not None:
            raise VerificationError(
                f"remover leaf: the removal is signed by {stmt.issuer}, whose record is "
                "another leaf"
            )
        _signed_by(leaf, keys, stmt.issuer)
    elif remover_leaf is not None:
        remover = _member(remover_leaf, log_key, decode)
        if remover.member_id != stmt.issuer:
            raise VerificationError(
                f"remover leaf: a record of {remover.member_id}, not of the removal's "
                f"issuer {stmt.issuer}"
            )
        if MemberId.parse(remover.member_id).role is not Role.AUTHORITY:
            raise VerificationError(f"remover leaf: {remover.member_id} is not an authority")
        _acts_for(remover_leaf, remover, listing)
        _signed_by(leaf, _keys(remover), f"the authority {remover.member_id}")
    else:
        _signed_by(leaf, [log_key], "the listing's issuer, its authority or the log's gateway")
    return stmt


def _signed_listing(
    leaves: Mapping[str, Leaf],
    listing: Listing,
    authority: MemberRecord,
    log_key: VerifyingKey,
    decode: Decoder,
) -> tuple[Identification | None, dict[str, list[VerifyingKey]]]:
    """Check who signed the listing (and, for a report, who identified it); the keys of
    the members a removal may come from."""
    listing_leaf = leaves["listing"]
    if identified_when_signed(listing):
        extra = sorted((_REPORT | {"reporter_gateway"}) & leaves.keys())
        if extra:
            raise VerificationError(f"leaves: an authority's listing has no {extra[0]} leaf")
        if authority.member_id != listing.issuer:
            raise VerificationError(
                f"authority leaf: a record of {authority.member_id}, not of the issuer "
                f"{listing.issuer}"
            )
        _signed_by(listing_leaf, _keys(authority), f"the issuer {listing.issuer}")
        return None, {listing.issuer: _keys(authority)}
    for role in sorted(_REPORT):
        if role not in leaves:
            raise VerificationError(
                f"leaves: no {role} leaf (the listing is a report of {listing.issuer}, "
                "published only once an authority identified it)"
            )
    reporter = _reporter(leaves, listing, _domain(authority.member_id), log_key, decode)
    if reporter.member_id != listing.issuer:
        raise VerificationError(
            f"reporter leaf: a record of {reporter.member_id}, not of the issuer {listing.issuer}"
        )
    _signed_by(listing_leaf, _keys(reporter), f"the issuer {listing.issuer}")
    ident = _identification(
        leaves["identification"], listing_leaf.record_id, listing, authority, decode
    )
    return ident, {listing.issuer: _keys(reporter), authority.member_id: _keys(authority)}


def verify_entry_proof(
    doc: Mapping[str, Any],
    verifier: NoteVerifier,
    *,
    decode: Decoder,
    at: datetime | None = None,
) -> VerifiedEntry:
    """Verify one proof document (see the module docstring); return what it proved."""
    checkpoint = open_checkpoint(_str(doc.get("checkpoint"), "checkpoint"), verifier)
    if checkpoint.size != doc.get("tree_size"):
        raise VerificationError(
            f"tree_size {doc.get('tree_size')} is not the checkpoint's size {checkpoint.size}"
        )
    leaves = _leaves(doc, checkpoint)
    log_key = VerifyingKey.from_raw(verifier.key.raw)

    listing_leaf = leaves["listing"]
    listing = _statement(listing_leaf, decode)
    if not isinstance(listing, Listing):
        raise VerificationError("listing leaf: not a listing")
    authority = _member(leaves["authority"], log_key, decode)
    if MemberId.parse(authority.member_id).role is not Role.AUTHORITY:
        raise VerificationError(f"authority leaf: {authority.member_id} is not an authority")
    ident, signers = _signed_listing(leaves, listing, authority, log_key, decode)

    removal_leaf = leaves.get("removal")
    removal = None
    if removal_leaf is not None:
        removal = _removal(leaves, listing, signers, log_key, decode)
    elif "remover" in leaves:
        raise VerificationError("leaves: a remover leaf without a removal leaf")

    steps = []
    if ident is not None:
        steps.append(
            StepRecord(ident.record_id, LifecycleStep.IDENTIFIED, ident.change.effective_at)
        )
    if removal is not None and removal_leaf is not None:
        steps.append(StepRecord(removal_leaf.record_id, removal.step, removal.effective_at))
    view = ListingView(
        listing_id=listing_leaf.record_id,
        listing=listing,
        lifecycle=derive(listing_leaf.record_id, listing, steps),
        sanctions={},
    )
    try:
        pub = publication(
            view,
            removal=removal,
            identification=ident,
            # The deciding authority's alliance publishes (its record the log key signed).
            publisher_trust_domain=_domain(authority.member_id),
            at=datetime.now(UTC) if at is None else at,
            apply_periods=False,
        )
    except ValueError as e:
        raise VerificationError(f"the signed statements do not make an entry: {e}") from e
    if pub is None or pub.status is PublicStatus.EXPIRED:
        raise VerificationError("the signed statements describe nothing the feed publishes")
    expected = entry_fields(pub, authority_name=authority.display_name)
    published = doc.get("entry")
    if not isinstance(published, dict):
        raise VerificationError("entry: must be an object")
    wrong = [k for k in FIELD_LABELS if published.get(k) != expected[k]]
    if wrong:
        details = ", ".join(
            f"{k} ({FIELD_LABELS[k]}): published {published.get(k)!r}, signed {expected[k]!r}"
            for k in wrong
        )
        raise VerificationError(f"the published fields differ from the signed ones: {details}")
    if (pub.status is PublicStatus.REMOVED) != (removal is not None):
        raise VerificationError("status does not match the removal leaf")
    return VerifiedEntry(checkpoint, expected, len(leaves))
