"""Authorization as data: who may call which RPC, and who may sign which statement.

Deny by default: an RPC missing from ``RPC_ROLES`` is refused to everyone, and a
statement type missing from ``STATEMENT_SIGNERS`` can be signed by no one. The tables
are the policy; the functions only read them, so tests are generated from the tables.

Gateways sign what only a gateway may sign (member records, escalations, monthly
reports, holiday calendars, report submissions), so the gateway role is not enough:
the signer must be a **configured** gateway identity, ours or a peer's
(``require_configured_gateway``). Gateways do not submit records through ``Exchange``:
their records reach other gateways only by replication.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

from gateway.core.identifiers import REPORTING_UNITS, MemberId, reporting_unit
from gateway.core.statements import (
    AlliancePolicy,
    AuthorityScope,
    Erasure,
    GovernmentMeasure,
    HolidayCalendar,
    LifecycleStep,
    Listing,
    MemberRecord,
    MonthlyReport,
    ReportSubmission,
    Role,
    SanctionAction,
    SanctionConfirmation,
    Statement,
    StatusChange,
)
from gateway.errors import NotFoundError, PermissionError

__all__ = [
    "GATEWAY_STEPS",
    "RPC_ROLES",
    "STATEMENT_SIGNERS",
    "authorize_erasure",
    "authorize_statement",
    "has_jurisdiction",
    "require_configured_gateway",
    "rpc_allowed",
]

_ALL = frozenset(Role)
_SUBMITTERS = frozenset({Role.PLATFORM, Role.AUTHORITY})

RPC_ROLES: Mapping[str, frozenset[Role]] = MappingProxyType(
    {
        # Exchange: members submit records as themselves (a gateway's records travel by
        # replication only); everyone reads.
        "/alliance.v1.Exchange/SubmitRecord": _SUBMITTERS,
        "/alliance.v1.Exchange/SubmitRecords": _SUBMITTERS,
        "/alliance.v1.Exchange/SubmitBatches": _SUBMITTERS,
        "/alliance.v1.Exchange/GetRecord": _ALL,
        "/alliance.v1.Exchange/CheckSubjects": _ALL,
        "/alliance.v1.Exchange/ListListings": _ALL,
        "/alliance.v1.Exchange/WatchRecords": _ALL,
        # AuditLog: anyone verifies; peers and monitors cosign.
        "/alliance.v1.AuditLog/GetCheckpoint": _ALL,
        "/alliance.v1.AuditLog/GetInclusionProof": _ALL,
        "/alliance.v1.AuditLog/GetConsistencyProof": _ALL,
        "/alliance.v1.AuditLog/GetEntries": _ALL,
        "/alliance.v1.AuditLog/AddCosignature": frozenset({Role.GATEWAY, Role.MONITOR}),
        # Federation: gateways only.
        "/alliance.v1.Federation/Replicate": frozenset({Role.GATEWAY}),
        # Compliance: read-only, everyone.
        "/alliance.v1.Compliance/GetCompliance": _ALL,
        "/alliance.v1.Compliance/ListOutstanding": _ALL,
        "/alliance.v1.Compliance/GetReportSchedule": _ALL,
        "/alliance.v1.Compliance/GetDeadlineRules": _ALL,
        # What the calling platform owes: platforms only.
        "/alliance.v1.Compliance/ListOwed": frozenset({Role.PLATFORM}),
    }
)

STATEMENT_SIGNERS: Mapping[type[Statement], frozenset[Role]] = MappingProxyType(
    {
        Listing: frozenset({Role.PLATFORM, Role.AUTHORITY}),
        # Further narrowed per listing by authorize_statement.
        StatusChange: frozenset({Role.PLATFORM, Role.AUTHORITY, Role.GATEWAY}),
        SanctionConfirmation: frozenset({Role.PLATFORM}),
        MemberRecord: frozenset({Role.GATEWAY}),
        # A gateway reports on its own log only: the issuer is the signer.
        MonthlyReport: frozenset({Role.GATEWAY}),
        # An authority of the listing's reporting unit, or of national scope.
        GovernmentMeasure: frozenset({Role.AUTHORITY}),
        # An alliance's policy: its configured gateway, as itself (the issuer is the signer).
        AlliancePolicy: frozenset({Role.GATEWAY}),
        # The working-day calendar a gateway imported (the State Council's schedule),
        # and the record that it sent its own report.
        HolidayCalendar: frozenset({Role.GATEWAY}),
        ReportSubmission: frozenset({Role.GATEWAY}),
        # Per named record, by authorize_erasure: its issuer, an authority of its
        # listing's unit (or national), or the gateway of its issuer's trust domain.
        Erasure: frozenset({Role.PLATFORM, Role.AUTHORITY, Role.GATEWAY}),
    }
)


def rpc_allowed(method: str, role: Role) -> bool:
    """May a member of ``role`` call the full gRPC method name? Unknown methods: no."""
    return role in RPC_ROLES.get(method, frozenset())


def require_configured_gateway(signer: MemberId, gateways: Collection[str]) -> None:
    """Raise ``PermissionError`` when a gateway-role signer is not a configured gateway.

    ``gateways`` are the configured gateway identities: this gateway's own and each
    peer's (one per trust domain). Any other certificate or member record with the
    gateway role signs nothing.
    """
    if signer.role is Role.GATEWAY and str(signer) not in gateways:
        raise PermissionError(
            f"{signer} is not a configured gateway: only this gateway and configured peer "
            "gateways sign member records, escalations, monthly reports, holiday calendars "
            "and report submissions",
            advice="a region's gateway identity is configured out of band (docs/OPERATIONS.md)",
        )


def _role_names(roles: frozenset[Role]) -> str:
    return ", ".join(sorted(r.name.lower() for r in roles)) or "none"


def authorize_statement(
    signer: MemberId,
    stmt: Statement,
    *,
    listing: Listing | None,
    signer_region: str | None,
    signer_scope: AuthorityScope | None = None,
) -> None:
    """Raise ``PermissionError`` unless ``signer`` may sign ``stmt``.

    ``listing`` is the listing a status change or a government measure refers to,
    resolved by the caller (``NotFoundError`` when one comes without it);
    ``signer_region`` and
    ``signer_scope`` come from the signer's member record and scope authorities: an
    authority acts for the reporting unit of its region (scope UNIT, also when its
    record states none) or for every unit (NATIONAL).
    """
    if stmt.issuer != str(signer):
        raise PermissionError(
            f"issuer {stmt.issuer} is not the signer {signer}: members sign only as themselves",
            reason="issuer-not-signer",
        )
    kind = type(stmt).__name__
    allowed = STATEMENT_SIGNERS.get(type(stmt), frozenset())
    if signer.role not in allowed:
        raise PermissionError(
            f"a {signer.role.name.lower()} may not sign a {kind} (allowed: {_role_names(allowed)})",
            reason="role-may-not-sign",
        )
    if isinstance(stmt, Listing):
        if signer.role is Role.AUTHORITY:
            _require_jurisdiction(signer, signer_region, signer_scope, stmt.region_code, "list")
    elif isinstance(stmt, StatusChange):
        _authorize_status_change(signer, stmt, listing, signer_region, signer_scope)
    elif isinstance(stmt, SanctionConfirmation):
        _authorize_answer(signer, stmt, listing)
    elif isinstance(stmt, GovernmentMeasure):
        _authorize_government_measure(signer, stmt, listing, signer_region, signer_scope)
    elif isinstance(stmt, MemberRecord):
        member = MemberId.parse(stmt.member_id, field="member_record.member_id")
        if member.trust_domain != signer.trust_domain:
            raise PermissionError(
                f"gateway {signer} may vouch only for members of trust domain "
                f"{signer.trust_domain}, not {stmt.member_id}"
            )


def authorize_erasure(
    signer: MemberId,
    erasure: Erasure,
    named: Mapping[str, tuple[Statement, Listing | None]],
    *,
    signer_region: str | None,
    signer_scope: AuthorityScope | None = None,
) -> None:
    """Raise ``PermissionError`` unless ``signer`` may erase every named record it is
    given: ``named`` maps a record id to its statement and the listing it belongs to
    (the record itself for a listing; ``None`` when unknown).

    May erase a record: its issuer; an authority of its listing's reporting unit or of
    national scope (the authorities that decide the listing's steps); the gateway of
    its issuer's trust domain (retention)."""
    for record_id, (stmt, listing) in named.items():
        if stmt.issuer == str(signer):
            continue
        issuer = MemberId.parse(stmt.issuer)
        if signer.role is Role.GATEWAY and signer.trust_domain == issuer.trust_domain:
            continue
        if signer.role is Role.AUTHORITY and listing is not None:
            _require_jurisdiction(
                signer, signer_region, signer_scope, listing.region_code, "erase records of"
            )
            continue
        raise PermissionError(
            f"{signer} may not erase record {record_id} of {stmt.issuer}: its issuer, an "
            "authority of its listing's unit, or its alliance's gateway erases it",
            reason="not-allowed-to-erase",
        )


def _authorize_government_measure(
    signer: MemberId,
    stmt: GovernmentMeasure,
    listing: Listing | None,
    signer_region: str | None,
    signer_scope: AuthorityScope | None,
) -> None:
    """An authority takes measures on listings of its own reporting unit; a national
    authority on any listing (the same jurisdiction as for listing and identifying)."""
    if listing is None:
        raise NotFoundError(
            f"government_measure.listing_id: unknown listing {stmt.listing_id}",
            reason="unknown-listing",
        )
    _require_jurisdiction(
        signer,
        signer_region,
        signer_scope,
        listing.region_code,
        f"take government measures on listing {stmt.listing_id} of",
    )


def _authorize_answer(
    signer: MemberId, stmt: SanctionConfirmation, listing: Listing | None
) -> None:
    """A platform whose store the listing names has an account there: it must apply a
    measure, and may not answer NOT_APPLICABLE."""
    if stmt.action is not SanctionAction.NOT_APPLICABLE or listing is None:
        return
    stores = listing.subject.stores if listing.subject is not None else ()
    named = [s.store_id for s in stores if s.platform == str(signer)]
    if named:
        raise PermissionError(
            f"listing {stmt.listing_id} names store {named[0]!r} of {signer}: the seller has an "
            "account there, so the platform may not answer NOT_APPLICABLE",
            advice="confirm the measure you applied (alliance confirm-sanction)",
        )


def _unit_name(unit: str) -> str:
    name = REPORTING_UNITS.get(unit)
    return f"{unit} ({name})" if name else unit


def has_jurisdiction(
    signer_region: str | None, signer_scope: AuthorityScope | None, region_code: str
) -> bool:
    """Does an authority of this region and scope act for subjects of ``region_code``?"""
    if signer_scope is AuthorityScope.NATIONAL:
        return True
    return signer_region is not None and reporting_unit(signer_region) == reporting_unit(
        region_code
    )


def _require_jurisdiction(
    signer: MemberId,
    signer_region: str | None,
    signer_scope: AuthorityScope | None,
    region_code: str,
    action: str,
) -> None:
    if has_jurisdiction(signer_region, signer_scope, region_code):
        return
    own = "unknown" if signer_region is None else _unit_name(reporting_unit(signer_region))
    raise PermissionError(
        f"authority {signer} acts for reporting unit {own} only: it may not {action} a "
        f"subject of reporting unit {_unit_name(reporting_unit(region_code))} "
        f"(region_code {region_code})",
        advice=f"an authority of unit {reporting_unit(region_code)}, or a national "
        "authority, acts for that subject",
        reason="outside-unit",
    )


# Who, besides the issuer and the authorities of the unit, may sign a step:
# DISPUTED also the platforms of the subject's stores (the seller objects through them).
_ISSUER_MAY_NOT = frozenset({LifecycleStep.IDENTIFIED})
# The steps a gateway signs, each only for listings issued in its own trust domain:
# ESCALATED (overdue) and RETIRED (maximum publication period ended, issue 18).
GATEWAY_STEPS = frozenset({LifecycleStep.ESCALATED, LifecycleStep.RETIRED})
# Steps nobody but that gateway signs (an issuer or authority ends a listing otherwise).
_GATEWAY_ONLY = frozenset({LifecycleStep.RETIRED})
_GATEWAY_VERB = MappingProxyType(
    {LifecycleStep.ESCALATED: "escalate", LifecycleStep.RETIRED: "retire"}
)


def _authorize_status_change(
    signer: MemberId,
    stmt: StatusChange,
    listing: Listing | None,
    signer_region: str | None,
    signer_scope: AuthorityScope | None,
) -> None:
    if listing is None:
        raise NotFoundError(
            f"status_change.listing_id: unknown listing {stmt.listing_id}",
            reason="unknown-listing",
        )
    unit = reporting_unit(listing.region_code)
    step = stmt.step
    if step in _GATEWAY_ONLY and signer.role is not Role.GATEWAY:
        raise PermissionError(
            f"{signer} may not record {step.name} for listing {stmt.listing_id}: only the "
            "gateway of the issuing trust domain retires a listing, when its maximum "
            "publication period ends",
            reason="role-may-not-sign",
        )
    if signer.role is Role.AUTHORITY and has_jurisdiction(
        signer_region, signer_scope, listing.region_code
    ):
        return
    if str(signer) == listing.issuer:
        if step in _ISSUER_MAY_NOT and signer.role is not Role.AUTHORITY:
            raise PermissionError(
                f"{signer} reported listing {stmt.listing_id} and may not identify it: "
                f"an authority of reporting unit {_unit_name(unit)} (or a national "
                "authority) identifies a platform's report",
                reason="role-may-not-sign",
            )
        return
    if signer.role is Role.AUTHORITY:
        _require_jurisdiction(
            signer, signer_region, signer_scope, listing.region_code, f"record {step.name} for"
        )
    if signer.role is Role.PLATFORM and step is LifecycleStep.DISPUTED:
        # A redacted (erased) listing names no store any more.
        stores = listing.subject.stores if listing.subject is not None else ()
        if str(signer) in {s.platform for s in stores}:
            return
        raise PermissionError(
            f"platform {signer} holds no store of the subject of listing {stmt.listing_id}: "
            "a seller objects through the listing's issuer, a platform of its stores, or "
            f"an authority of reporting unit {_unit_name(unit)}",
            reason="not-listing-issuer",
        )
    if signer.role is Role.GATEWAY:
        issuer_domain = MemberId.parse(listing.issuer, field="listing.issuer").trust_domain
        if step not in GATEWAY_STEPS:
            raise PermissionError(
                "a gateway may only ESCALATE an overdue listing or RETIRE one whose "
                f"publication ended, not record {step.name}"
            )
        if signer.trust_domain == issuer_domain:
            return
        raise PermissionError(
            f"gateway {signer} may {_GATEWAY_VERB[step]} only listings issued in trust domain "
            f"{signer.trust_domain}; {stmt.listing_id} was issued by {listing.issuer}"
        )
    raise PermissionError(
        f"{signer} may not change listing {stmt.listing_id}: only its issuer "
        f"{listing.issuer}, an authority of reporting unit {_unit_name(unit)} (or a "
        "national authority), or (to escalate) a gateway of its trust domain may",
        reason="not-listing-issuer",
    )
