"""Authorization policy, tested from its own tables (deny by default)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from gateway.core.calendar_record import days_of
from gateway.core.identifiers import MemberId
from gateway.core.policy import (
    RPC_ROLES,
    STATEMENT_SIGNERS,
    authorize_erasure,
    authorize_statement,
    has_jurisdiction,
    require_configured_gateway,
    rpc_allowed,
)
from gateway.core.statements import (
    AlliancePolicy,
    AuthorityScope,
    ConductType,
    Erasure,
    ErasureBasis,
    GovernmentMeasure,
    GovernmentMeasureKind,
    HolidayCalendar,
    LifecycleStep,
    Listing,
    ListKind,
    MemberKey,
    MemberRecord,
    MemberStatus,
    MonthlyReport,
    ReportSubmission,
    Role,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    StatusChange,
    StoreRef,
    Subject,
    SubmittedFile,
)
from gateway.core.workdays import YearCalendar
from gateway.errors import GatewayError, NotFoundError, PermissionError, RecordError
from gateway.pb.alliance.v1 import audit_pb2, compliance_pb2, exchange_pb2, federation_pb2

T0 = datetime(2024, 11, 30, tzinfo=UTC)
LID = "cd" * 32
ZJ = "zj.alliance"
GD = "gd.alliance"


def mid(role: Role, name: str = "m", domain: str = ZJ) -> MemberId:
    return MemberId(domain, role, name)


def make_statement(cls: type[Statement], issuer: MemberId) -> Statement:
    """A valid statement of ``cls`` issued by ``issuer`` (policy is not validation)."""
    s = str(issuer)
    if cls is Listing:
        return Listing(
            issuer=s,
            subject=Subject(uscc="91330100716105852F"),
            list=ListKind.BLACKLIST,
            conduct=ConductType.COUNTERFEIT,
            region_code="330100",
            decision_ref="d",
            listed_at=T0,
        )
    if cls is StatusChange:
        return StatusChange(
            issuer=s, listing_id=LID, step=LifecycleStep.NOTICE_SERVED, effective_at=T0
        )
    if cls is SanctionConfirmation:
        return SanctionConfirmation(
            issuer=s,
            listing_id=LID,
            measure=SanctionMeasure.CLOSE_STORE,
            action=SanctionAction.APPLIED,
            effective_at=T0,
        )
    if cls is AlliancePolicy:
        return AlliancePolicy(issuer=s, issued_at=T0)
    if cls is Erasure:
        return Erasure(
            issuer=s,
            record_ids=(LID,),
            basis=ErasureBasis.PURPOSE_ACHIEVED,
            legal_basis="PIPL art. 47(1): publication ended",
            effective_at=T0,
        )
    if cls is GovernmentMeasure:
        return GovernmentMeasure(
            issuer=s,
            listing_id=LID,
            kind=GovernmentMeasureKind.SUMMONS,
            decision_ref="浙市监约〔2026〕12号",
            effective_at=T0,
        )
    if cls is MonthlyReport:
        return MonthlyReport(
            issuer=s,
            month="2026-10",
            unit="",
            checkpoint_size=1,
            checkpoint_root=bytes(32),
            content=b"{}",
        )
    if cls is HolidayCalendar:
        return HolidayCalendar(s, 2027, days_of(YearCalendar(2027)), "notice", T0)
    if cls is ReportSubmission:
        return ReportSubmission(
            issuer=s,
            month="2026-10",
            unit="",
            report_id=LID,
            recipient="NDRC",
            submitted_at=T0,
            files=(SubmittedFile("report.pdf", bytes(32)),),
        )
    return MemberRecord(
        issuer=s,
        member_id=str(mid(Role.PLATFORM, "shop", issuer.trust_domain)),
        role=Role.PLATFORM,
        region_code="330100",
        keys=(MemberKey(b"\x01" * 32, T0),),
        status=MemberStatus.ACTIVE,
        issued_at=T0,
    )


def listing_by(issuer: MemberId, region: str = "330100") -> Listing:
    lst = make_statement(Listing, issuer)
    assert isinstance(lst, Listing)
    return Listing(
        issuer=lst.issuer,
        subject=lst.subject,
        list=lst.list,
        conduct=lst.conduct,
        region_code=region,
        decision_ref=lst.decision_ref,
        listed_at=lst.listed_at,
    )


def status_change(issuer: MemberId, step: LifecycleStep) -> StatusChange:
    closing = step in (
        LifecycleStep.CORRECTED,
        LifecycleStep.REMOVED,
        LifecycleStep.UPHELD,
        LifecycleStep.WITHDRAWN,
    )
    return StatusChange(
        issuer=str(issuer),
        listing_id=LID,
        step=step,
        effective_at=T0,
        decision_ref="d" if closing else "",
        reason="r" if closing or step is LifecycleStep.DISPUTED else "",
        decided_by="c" if step is LifecycleStep.REMOVED else "",
        document_sha256=bytes(32) if step is LifecycleStep.DISPUTED else b"",
    )


# --- RPCs ----------------------------------------------------------------------------


def _all_rpcs() -> set[str]:
    methods = set()
    for module in (exchange_pb2, audit_pb2, federation_pb2, compliance_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods.add(f"/{service.full_name}/{method.name}")
    return methods


def test_rpc_table_covers_exactly_the_proto() -> None:
    assert set(RPC_ROLES) == _all_rpcs()
    assert len(RPC_ROLES) == 18


@pytest.mark.parametrize(("method", "role"), list(itertools.product(sorted(RPC_ROLES), list(Role))))
def test_rpc_allowed_follows_table(method: str, role: Role) -> None:
    assert rpc_allowed(method, role) is (role in RPC_ROLES[method])


@pytest.mark.parametrize(
    ("method", "roles"),
    [
        # A gateway's records travel by replication only (docs/PROTOCOL.md §5).
        ("/alliance.v1.Exchange/SubmitRecord", {Role.PLATFORM, Role.AUTHORITY}),
        ("/alliance.v1.Exchange/SubmitRecords", {Role.PLATFORM, Role.AUTHORITY}),
        ("/alliance.v1.Exchange/SubmitBatches", {Role.PLATFORM, Role.AUTHORITY}),
        ("/alliance.v1.Exchange/CheckSubjects", set(Role)),
        ("/alliance.v1.Exchange/WatchRecords", set(Role)),
        ("/alliance.v1.AuditLog/GetEntries", set(Role)),
        ("/alliance.v1.AuditLog/AddCosignature", {Role.GATEWAY, Role.MONITOR}),
        ("/alliance.v1.Federation/Replicate", {Role.GATEWAY}),
    ],
)
def test_rpc_table_content(method: str, roles: set[Role]) -> None:
    assert RPC_ROLES[method] == roles


@pytest.mark.parametrize(
    "method",
    ["/alliance.v1.Exchange/Unknown", "", "alliance.v1.Exchange/SubmitRecord", "/x.Y/Z"],
)
def test_unknown_methods_are_denied(method: str) -> None:
    assert not any(rpc_allowed(method, role) for role in Role)


def test_monitor_writes_nothing() -> None:
    writes = {m for m in RPC_ROLES if "Submit" in m or "Replicate" in m}
    assert not any(rpc_allowed(m, Role.MONITOR) for m in writes)
    assert all(Role.MONITOR not in roles for roles in STATEMENT_SIGNERS.values())


# --- statements: every role x every type, as itself and as another member -------------


# Statements whose issuer must be a gateway (the model refuses any other issuer).
GATEWAY_ONLY = (MemberRecord, MonthlyReport, HolidayCalendar, ReportSubmission, AlliancePolicy)


def _kwargs(cls: type[Statement], signer: MemberId) -> dict[str, object]:
    if cls in (StatusChange, GovernmentMeasure):
        # The signer's own listing in its own unit: role is the only thing that can refuse.
        return {"listing": listing_by(signer), "signer_region": "330100"}
    return {"listing": None, "signer_region": "330100"}


@pytest.mark.parametrize(
    ("cls", "role"), list(itertools.product(list(STATEMENT_SIGNERS), list(Role)))
)
def test_statement_signers_as_itself(cls: type[Statement], role: Role) -> None:
    signer = mid(role)
    if cls in GATEWAY_ONLY and role is not Role.GATEWAY:
        # Refused one layer earlier: such a statement cannot even be built.
        with pytest.raises(
            RecordError,
            match=r"^(member_record|monthly_report|holiday_calendar|report_submission"
            r"|alliance_policy)\.issuer: must",
        ):
            make_statement(cls, signer)
        return
    stmt = make_statement(cls, signer)
    if role in STATEMENT_SIGNERS[cls]:
        authorize_statement(signer, stmt, **_kwargs(cls, signer))  # type: ignore[arg-type]
    else:
        with pytest.raises(PermissionError, match=rf"^a {role.name.lower()} may not sign a"):
            authorize_statement(signer, stmt, **_kwargs(cls, signer))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cls", "role"), list(itertools.product(list(STATEMENT_SIGNERS), list(Role)))
)
def test_statement_signed_as_another_member_is_refused(cls: type[Statement], role: Role) -> None:
    signer = mid(role, "me")
    if cls in GATEWAY_ONLY:
        signer = mid(Role.GATEWAY, "me")  # only gateways can issue these at all
    stmt = make_statement(cls, MemberId(signer.trust_domain, signer.role, "someone-else"))
    with pytest.raises(PermissionError, match=r"^issuer .* is not the signer .*: members sign"):
        authorize_statement(signer, stmt, **_kwargs(cls, signer))  # type: ignore[arg-type]


def test_signers_table_content() -> None:
    assert STATEMENT_SIGNERS[Listing] == {Role.PLATFORM, Role.AUTHORITY}
    assert STATEMENT_SIGNERS[SanctionConfirmation] == {Role.PLATFORM}
    assert STATEMENT_SIGNERS[MemberRecord] == {Role.GATEWAY}
    assert STATEMENT_SIGNERS[MonthlyReport] == {Role.GATEWAY}
    assert STATEMENT_SIGNERS[AlliancePolicy] == {Role.GATEWAY}
    assert STATEMENT_SIGNERS[HolidayCalendar] == {Role.GATEWAY}
    assert STATEMENT_SIGNERS[ReportSubmission] == {Role.GATEWAY}
    assert STATEMENT_SIGNERS[StatusChange] == {Role.PLATFORM, Role.AUTHORITY, Role.GATEWAY}
    assert STATEMENT_SIGNERS[GovernmentMeasure] == {Role.AUTHORITY}
    # Narrowed per named record by authorize_erasure.
    assert STATEMENT_SIGNERS[Erasure] == {Role.PLATFORM, Role.AUTHORITY, Role.GATEWAY}


# --- erasures: who may erase each named record ----------------------------------------


def test_erasure_is_authorized_record_by_record() -> None:
    shop = mid(Role.PLATFORM, "shop")
    listing = listing_by(shop)  # reporting unit 33
    corrected = status_change(shop, LifecycleStep.CORRECTED)
    own: dict[str, tuple[Statement, Listing | None]] = {
        "a" * 64: (listing, listing),
        "b" * 64: (corrected, listing),
    }

    def erase(
        signer: MemberId,
        named: dict[str, tuple[Statement, Listing | None]],
        region: str | None = "330100",
        scope: AuthorityScope | None = None,
    ) -> None:
        erasure = make_statement(Erasure, signer)
        assert isinstance(erasure, Erasure)
        authorize_erasure(signer, erasure, named, signer_region=region, signer_scope=scope)

    # The issuer, the gateway of its trust domain, an authority of the listing's unit
    # or a national one erase every record of the listing.
    erase(shop, own)
    erase(mid(Role.GATEWAY, "gw"), own)
    erase(mid(Role.AUTHORITY, "amr"), own, "330000")
    erase(mid(Role.AUTHORITY, "samr", GD), own, "110000", AuthorityScope.NATIONAL)
    # Another platform, even for one record among its own, is refused for that record.
    other = mid(Role.PLATFORM, "other")
    mixed: dict[str, tuple[Statement, Listing | None]] = {
        **own,
        "c" * 64: (status_change(other, LifecycleStep.CORRECTED), listing),
    }
    with pytest.raises(
        PermissionError, match=rf"^{other} may not erase record a{{64}} of {shop}: its issuer"
    ) as refused:
        erase(other, mixed)
    assert refused.value.reason == "not-allowed-to-erase"
    # The gateway of another trust domain is refused.
    with pytest.raises(PermissionError, match=r"may not erase record a{64}") as refused:
        erase(mid(Role.GATEWAY, "gw", GD), own)
    assert refused.value.reason == "not-allowed-to-erase"
    # An authority of another unit, or of an unknown one, is refused naming the units.
    with pytest.raises(
        PermissionError, match=r"reporting unit 44 \(.*\) only: it may not erase records of"
    ) as refused:
        erase(mid(Role.AUTHORITY, "gd-amr", GD), own, "440300")
    assert refused.value.reason == "outside-unit"
    with pytest.raises(PermissionError, match=r"reporting unit unknown only"):
        erase(mid(Role.AUTHORITY, "amr"), own, None)
    # An authority and a record whose listing is unknown: nothing to judge by, refused.
    with pytest.raises(PermissionError, match=r"may not erase record b{64}") as refused:
        erase(mid(Role.AUTHORITY, "amr"), {"b" * 64: (corrected, None)}, "330000")
    assert refused.value.reason == "not-allowed-to-erase"


# --- government measures and NOT_APPLICABLE answers ----------------------------------


def test_government_measure_by_an_authority_of_the_unit_or_national() -> None:
    authority = mid(Role.AUTHORITY, "gd-amr", GD)
    measure = make_statement(GovernmentMeasure, authority)
    listing = listing_by(mid(Role.PLATFORM, "shop"), region="330100")
    # An authority of another unit is refused, naming both units.
    with pytest.raises(
        PermissionError,
        match=r"reporting unit 44 \(.*\) only: it may not take government measures on "
        r"listing .* of a subject of reporting unit 33 ",
    ) as refused:
        authorize_statement(authority, measure, listing=listing, signer_region="440300")
    assert refused.value.reason == "outside-unit"
    with pytest.raises(PermissionError, match=r"reporting unit unknown"):
        authorize_statement(authority, measure, listing=listing, signer_region=None)
    # An authority of unit scope (stated or not) of another unit is refused too.
    with pytest.raises(PermissionError, match=r"reporting unit 11 "):
        authorize_statement(
            authority,
            measure,
            listing=listing,
            signer_region="110000",
            signer_scope=AuthorityScope.UNIT,
        )
    # The unit's authority, or any national one, may.
    authorize_statement(authority, measure, listing=listing, signer_region="330000")
    authorize_statement(
        authority,
        measure,
        listing=listing,
        signer_region="110000",
        signer_scope=AuthorityScope.NATIONAL,
    )
    with pytest.raises(NotFoundError, match=r"^government_measure\.listing_id: unknown"):
        authorize_statement(authority, measure, listing=None, signer_region="330000")


def test_a_named_store_platform_may_not_answer_not_applicable() -> None:
    shop = mid(Role.PLATFORM, "shop")
    other = mid(Role.PLATFORM, "other")
    base = listing_by(mid(Role.AUTHORITY, "amr"))
    listing = Listing(
        issuer=base.issuer,
        subject=Subject(uscc="91330100716105852F", stores=(StoreRef(str(shop), "s-1"),)),
        list=base.list,
        conduct=base.conduct,
        region_code=base.region_code,
        decision_ref=base.decision_ref,
        listed_at=base.listed_at,
    )

    def answer(platform: MemberId) -> SanctionConfirmation:
        return SanctionConfirmation(
            issuer=str(platform),
            listing_id=LID,
            measure=None,
            action=SanctionAction.NOT_APPLICABLE,
            effective_at=T0,
        )

    with pytest.raises(PermissionError, match=r"names store 's-1' of .*may not answer"):
        authorize_statement(shop, answer(shop), listing=listing, signer_region="330100")
    authorize_statement(other, answer(other), listing=listing, signer_region="330100")


# --- status changes: who may change whose listing ------------------------------------

PLATFORM_ISSUER = mid(Role.PLATFORM, "shop")
NON_ESCALATION = [
    s
    for s in LifecycleStep
    if s not in (LifecycleStep.LISTED, LifecycleStep.ESCALATED, LifecycleStep.RETIRED)
]
# The steps members (issuers, authorities) may sign: all but LISTED and the gateway's
# RETIRED.
MEMBER_STEPS = [s for s in LifecycleStep if s not in (LifecycleStep.LISTED, LifecycleStep.RETIRED)]


def test_status_change_without_listing_is_not_found() -> None:
    signer = mid(Role.AUTHORITY)
    with pytest.raises(NotFoundError, match=r"^status_change\.listing_id: unknown listing"):
        authorize_statement(
            signer,
            status_change(signer, LifecycleStep.NOTICE_SERVED),
            listing=None,
            signer_region="330100",
        )


@pytest.mark.parametrize(
    "step",
    [
        s
        for s in LifecycleStep
        if s not in (LifecycleStep.LISTED, LifecycleStep.IDENTIFIED, LifecycleStep.RETIRED)
    ],
)
def test_issuer_may_record_any_step_but_identify(step: LifecycleStep) -> None:
    authorize_statement(
        PLATFORM_ISSUER,
        status_change(PLATFORM_ISSUER, step),
        listing=listing_by(PLATFORM_ISSUER),
        signer_region=None,
    )


@pytest.mark.parametrize("step", MEMBER_STEPS)
@pytest.mark.parametrize("region", ["330100", "330000", "331099"])
def test_authority_of_same_unit_may_change(step: LifecycleStep, region: str) -> None:
    authority = mid(Role.AUTHORITY, "zj-credit", GD)  # trust domain does not matter
    authorize_statement(
        authority,
        status_change(authority, step),
        listing=listing_by(PLATFORM_ISSUER, "330106"),
        signer_region=region,
    )


def test_a_platform_may_not_identify_its_own_report() -> None:
    with pytest.raises(PermissionError, match=r"may not identify it: an authority of reporting"):
        authorize_statement(
            PLATFORM_ISSUER,
            status_change(PLATFORM_ISSUER, LifecycleStep.IDENTIFIED),
            listing=listing_by(PLATFORM_ISSUER),
            signer_region="330100",
        )
    # An authority's own listing: harmless (it is identified when signed).
    authority = mid(Role.AUTHORITY, "zj-credit")
    authorize_statement(
        authority,
        status_change(authority, LifecycleStep.IDENTIFIED),
        listing=listing_by(authority),
        signer_region="330000",
    )


@pytest.mark.parametrize("region", ["440300", None])
def test_authority_of_other_unit_may_not(region: str | None) -> None:
    authority = mid(Role.AUTHORITY, "gd-credit")
    with pytest.raises(
        PermissionError,
        match=r"acts for reporting unit .* only: it may not record CORRECTED for a subject of "
        r"reporting unit 33 \(Zhejiang\)",
    ):
        authorize_statement(
            authority,
            status_change(authority, LifecycleStep.CORRECTED),
            listing=listing_by(PLATFORM_ISSUER, "330106"),
            signer_region=region,
        )


@pytest.mark.parametrize("step", MEMBER_STEPS)
def test_a_national_authority_may_change_any_unit(step: LifecycleStep) -> None:
    national = mid(Role.AUTHORITY, "ndrc", GD)
    authorize_statement(
        national,
        status_change(national, step),
        listing=listing_by(PLATFORM_ISSUER, "330106"),
        signer_region="110000",
        signer_scope=AuthorityScope.NATIONAL,
    )
    # The same authority with the scope of its unit may not.
    with pytest.raises(PermissionError, match=r"acts for reporting unit 11 \(Beijing\) only"):
        authorize_statement(
            national,
            status_change(national, step),
            listing=listing_by(PLATFORM_ISSUER, "330106"),
            signer_region="110000",
            signer_scope=AuthorityScope.UNIT,
        )


def _with_store(issuer: MemberId, platform: MemberId) -> Listing:
    lst = listing_by(issuer)
    assert lst.subject is not None
    return dataclasses.replace(
        lst, subject=Subject(uscc=lst.subject.uscc, stores=(StoreRef(str(platform), "s1"),))
    )


def test_the_seller_objects_through_a_platform_of_its_stores() -> None:
    store_platform = mid(Role.PLATFORM, "mall")
    lst = _with_store(PLATFORM_ISSUER, store_platform)
    authorize_statement(
        store_platform,
        status_change(store_platform, LifecycleStep.DISPUTED),
        listing=lst,
        signer_region="330100",
    )
    # ... which decides nothing: the issuer's side or an authority of the unit does.
    for step in (LifecycleStep.UPHELD, LifecycleStep.WITHDRAWN, LifecycleStep.IDENTIFIED):
        with pytest.raises(PermissionError, match=r"may not change listing .*: only its issuer"):
            authorize_statement(
                store_platform,
                status_change(store_platform, step),
                listing=lst,
                signer_region="330100",
            )
    other = mid(Role.PLATFORM, "bazaar")
    with pytest.raises(PermissionError, match=r"holds no store of the subject of listing"):
        authorize_statement(
            other,
            status_change(other, LifecycleStep.DISPUTED),
            listing=lst,
            signer_region="330100",
        )


@pytest.mark.parametrize(
    ("region", "scope", "allowed"),
    [
        ("330100", AuthorityScope.UNIT, True),
        ("330000", None, True),  # a v1 record: its unit
        ("440300", AuthorityScope.UNIT, False),
        (None, None, False),
        ("110000", AuthorityScope.NATIONAL, True),
    ],
)
def test_an_authority_lists_only_in_its_jurisdiction(
    region: str | None, scope: AuthorityScope | None, allowed: bool
) -> None:
    authority = mid(Role.AUTHORITY, "credit")
    lst = make_statement(Listing, authority)  # region_code 330100
    if allowed:
        authorize_statement(authority, lst, listing=None, signer_region=region, signer_scope=scope)
        return
    with pytest.raises(PermissionError) as info:
        authorize_statement(authority, lst, listing=None, signer_region=region, signer_scope=scope)
    assert "may not list a subject of reporting unit 33 (Zhejiang) (region_code 330100)" in str(
        info.value
    )
    assert "an authority of unit 33, or a national authority" in info.value.advice


def test_a_platform_lists_anywhere() -> None:
    # Which platform reports a unit accepts is the alliance's policy (intake), not a role rule.
    platform = mid(Role.PLATFORM, "shop")
    authorize_statement(
        platform, make_statement(Listing, platform), listing=None, signer_region=None
    )


def test_other_platform_may_not_change() -> None:
    other = mid(Role.PLATFORM, "mall")
    with pytest.raises(PermissionError, match=r"may not change listing .*: only its issuer"):
        authorize_statement(
            other,
            status_change(other, LifecycleStep.NOTICE_SERVED),
            listing=listing_by(PLATFORM_ISSUER),
            signer_region="330100",
        )


def test_gateway_of_issuer_domain_may_escalate() -> None:
    gw = mid(Role.GATEWAY, "hz")
    authorize_statement(
        gw,
        status_change(gw, LifecycleStep.ESCALATED),
        listing=listing_by(PLATFORM_ISSUER),
        signer_region="330100",
    )


def test_gateway_of_other_domain_may_not_escalate() -> None:
    gw = mid(Role.GATEWAY, "gz", GD)
    with pytest.raises(PermissionError, match=r"may escalate only listings issued in trust domain"):
        authorize_statement(
            gw,
            status_change(gw, LifecycleStep.ESCALATED),
            listing=listing_by(PLATFORM_ISSUER),
            signer_region="330100",
        )


@pytest.mark.parametrize("step", NON_ESCALATION)
def test_gateway_may_only_escalate_or_retire(step: LifecycleStep) -> None:
    gw = mid(Role.GATEWAY, "hz")
    with pytest.raises(PermissionError, match=rf"may only ESCALATE .*not record {step.name}$"):
        authorize_statement(
            gw,
            status_change(gw, step),
            listing=listing_by(PLATFORM_ISSUER),
            signer_region="330100",
        )


# --- member records ------------------------------------------------------------------


def test_gateway_vouches_only_for_its_trust_domain() -> None:
    gw = mid(Role.GATEWAY, "hz")
    record = make_statement(MemberRecord, mid(Role.GATEWAY, "hz", GD))
    # Issued by the GD gateway: the signer is not the issuer.
    with pytest.raises(PermissionError, match=r"^issuer .* is not the signer"):
        authorize_statement(gw, record, listing=None, signer_region=None)
    # Signed by the GD gateway itself: allowed.
    authorize_statement(mid(Role.GATEWAY, "hz", GD), record, listing=None, signer_region=None)


# --- refusals compared whole (found by mutation testing, docs/TESTING.md) -------------
#
# Every refusal is compared whole, with its reason and advice: a member is told who may
# sign what it tried (the units, the trust domain, the issuer), and a client program
# branches on the reason.

DEFAULT_ADVICE = PermissionError.advice
SHOP = mid(Role.PLATFORM, "shop")
MALL = mid(Role.PLATFORM, "mall")
GW = mid(Role.GATEWAY, "hz")
GW_GD = mid(Role.GATEWAY, "gz", GD)
AUTHORITY_GD = mid(Role.AUTHORITY, "gd", GD)
UNIT_ADVICE = "an authority of unit 33, or a national authority, acts for that subject"


def _forged_member_record(member_id: str) -> Callable[[], None]:
    """GW vouching for ``member_id``, written past the model's own checks (the policy
    judges the record again on its own)."""

    def call() -> None:
        record = make_statement(MemberRecord, GW)
        object.__setattr__(record, "member_id", member_id)
        authorize_statement(GW, record, listing=None, signer_region=None)

    return call


def _change(signer: MemberId, step: LifecycleStep) -> Callable[[], None]:
    return lambda: authorize_statement(
        signer, status_change(signer, step), listing=listing_by(SHOP), signer_region=None
    )


def _forged_issuer(listing: Listing, issuer: str) -> Listing:
    """``listing`` with its issuer overwritten past the model's own checks."""
    object.__setattr__(listing, "issuer", issuer)
    return listing


def _erase(signer: MemberId) -> Callable[[], None]:
    """``signer`` erases SHOP's listing."""

    def call() -> None:
        erasure = make_statement(Erasure, signer)
        assert isinstance(erasure, Erasure)
        named = {"a" * 64: (listing_by(SHOP), listing_by(SHOP))}
        authorize_erasure(signer, erasure, named, signer_region=None)

    return call


CASES: list[tuple[str, Callable[[], None], type[GatewayError], str, str, str]] = [
    (
        "a member signs as another",
        lambda: authorize_statement(
            SHOP, make_statement(Listing, MALL), listing=None, signer_region=None
        ),
        PermissionError,
        f"issuer {MALL} is not the signer {SHOP}: members sign only as themselves",
        "issuer-not-signer",
        DEFAULT_ADVICE,
    ),
    (
        "a monitor lists",
        lambda: authorize_statement(
            mid(Role.MONITOR),
            make_statement(Listing, mid(Role.MONITOR)),
            listing=None,
            signer_region=None,
        ),
        PermissionError,
        "a monitor may not sign a Listing (allowed: authority, platform)",
        "role-may-not-sign",
        DEFAULT_ADVICE,
    ),
    (
        "a gateway vouches for another trust domain's member",
        _forged_member_record(str(mid(Role.PLATFORM, "shop", GD))),
        PermissionError,
        f"gateway {GW} may vouch only for members of trust domain {ZJ}, not "
        f"spiffe://{GD}/platform/shop",
        "permission-denied",
        DEFAULT_ADVICE,
    ),
    (
        "an authority of another unit takes a measure",
        lambda: authorize_statement(
            AUTHORITY_GD,
            make_statement(GovernmentMeasure, AUTHORITY_GD),
            listing=listing_by(SHOP),
            signer_region="440300",
        ),
        PermissionError,
        f"authority {AUTHORITY_GD} acts for reporting unit 44 (Guangdong) only: it may not "
        f"take government measures on listing {LID} of a subject of reporting unit 33 "
        "(Zhejiang) (region_code 330100)",
        "outside-unit",
        UNIT_ADVICE,
    ),
    (
        "a measure on an unknown listing",
        lambda: authorize_statement(
            AUTHORITY_GD,
            make_statement(GovernmentMeasure, AUTHORITY_GD),
            listing=None,
            signer_region="440300",
        ),
        NotFoundError,
        f"government_measure.listing_id: unknown listing {LID}",
        "unknown-listing",
        NotFoundError.advice,
    ),
    (
        "a status change of an unknown listing",
        lambda: authorize_statement(
            SHOP,
            status_change(SHOP, LifecycleStep.NOTICE_SERVED),
            listing=None,
            signer_region=None,
        ),
        NotFoundError,
        f"status_change.listing_id: unknown listing {LID}",
        "unknown-listing",
        NotFoundError.advice,
    ),
    (
        "the issuer retires its own listing",
        _change(SHOP, LifecycleStep.RETIRED),
        PermissionError,
        f"{SHOP} may not record RETIRED for listing {LID}: only the gateway of the issuing "
        "trust domain retires a listing, when its maximum publication period ends",
        "role-may-not-sign",
        DEFAULT_ADVICE,
    ),
    (
        "a platform identifies its own report",
        _change(SHOP, LifecycleStep.IDENTIFIED),
        PermissionError,
        f"{SHOP} reported listing {LID} and may not identify it: an authority of reporting "
        "unit 33 (Zhejiang) (or a national authority) identifies a platform's report",
        "role-may-not-sign",
        DEFAULT_ADVICE,
    ),
    (
        "an authority of another unit corrects",
        lambda: authorize_statement(
            AUTHORITY_GD,
            status_change(AUTHORITY_GD, LifecycleStep.CORRECTED),
            listing=listing_by(SHOP),
            signer_region="440300",
        ),
        PermissionError,
        f"authority {AUTHORITY_GD} acts for reporting unit 44 (Guangdong) only: it may not "
        "record CORRECTED for a subject of reporting unit 33 (Zhejiang) (region_code 330100)",
        "outside-unit",
        UNIT_ADVICE,
    ),
    (
        "a platform without a store of the subject disputes",
        _change(MALL, LifecycleStep.DISPUTED),
        PermissionError,
        f"platform {MALL} holds no store of the subject of listing {LID}: a seller objects "
        "through the listing's issuer, a platform of its stores, or an authority of "
        "reporting unit 33 (Zhejiang)",
        "not-listing-issuer",
        DEFAULT_ADVICE,
    ),
    (
        "a gateway records a step that is not its own",
        _change(GW, LifecycleStep.CORRECTED),
        PermissionError,
        "a gateway may only ESCALATE an overdue listing or RETIRE one whose publication "
        "ended, not record CORRECTED",
        "permission-denied",
        DEFAULT_ADVICE,
    ),
    (
        "another trust domain's gateway escalates",
        _change(GW_GD, LifecycleStep.ESCALATED),
        PermissionError,
        f"gateway {GW_GD} may escalate only listings issued in trust domain {GD}; {LID} "
        f"was issued by {SHOP}",
        "permission-denied",
        DEFAULT_ADVICE,
    ),
    (
        "another trust domain's gateway retires",
        _change(GW_GD, LifecycleStep.RETIRED),
        PermissionError,
        f"gateway {GW_GD} may retire only listings issued in trust domain {GD}; {LID} "
        f"was issued by {SHOP}",
        "permission-denied",
        DEFAULT_ADVICE,
    ),
    (
        "another platform changes a listing",
        _change(MALL, LifecycleStep.NOTICE_SERVED),
        PermissionError,
        f"{MALL} may not change listing {LID}: only its issuer {SHOP}, an authority of "
        "reporting unit 33 (Zhejiang) (or a national authority), or (to escalate) a "
        "gateway of its trust domain may",
        "not-listing-issuer",
        DEFAULT_ADVICE,
    ),
    (
        "another platform erases a listing",
        _erase(MALL),
        PermissionError,
        f"{MALL} may not erase record {'a' * 64} of {SHOP}: its issuer, an authority of "
        "its listing's unit, or its alliance's gateway erases it",
        "not-allowed-to-erase",
        DEFAULT_ADVICE,
    ),
    (
        "an authority of no known region erases",
        _erase(AUTHORITY_GD),
        PermissionError,
        f"authority {AUTHORITY_GD} acts for reporting unit unknown only: it may not erase "
        "records of a subject of reporting unit 33 (Zhejiang) (region_code 330100)",
        "outside-unit",
        UNIT_ADVICE,
    ),
    (
        "an authority lists outside its unit",
        lambda: authorize_statement(
            AUTHORITY_GD,
            make_statement(Listing, AUTHORITY_GD),
            listing=None,
            signer_region="440300",
        ),
        PermissionError,
        f"authority {AUTHORITY_GD} acts for reporting unit 44 (Guangdong) only: it may not "
        "list a subject of reporting unit 33 (Zhejiang) (region_code 330100)",
        "outside-unit",
        UNIT_ADVICE,
    ),
    (
        # The policy parses the listing's issuer itself (a gateway escalates only its own
        # domain's listings).
        "a listing whose issuer is no member id",
        lambda: authorize_statement(
            GW,
            status_change(GW, LifecycleStep.ESCALATED),
            listing=_forged_issuer(listing_by(SHOP), "not-a-member"),
            signer_region=None,
        ),
        RecordError,
        "listing.issuer: must start with spiffe://, got 'not-a-member'",
        "invalid-record",
        RecordError.advice,
    ),
    (
        "a member record whose member id is none",
        _forged_member_record("x"),
        RecordError,
        "member_record.member_id: must start with spiffe://, got 'x'",
        "invalid-record",
        RecordError.advice,
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "message", "reason", "advice"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_every_refusal_says_who_may(
    call: Callable[[], None], error: type[GatewayError], message: str, reason: str, advice: str
) -> None:
    with pytest.raises(error) as caught:
        call()
    assert type(caught.value) is error
    assert str(caught.value) == message
    assert caught.value.reason == reason
    assert caught.value.advice == advice


def test_only_configured_gateway_identities_sign_as_gateways() -> None:
    """A certificate with the gateway role but not configured (a rogue or retired
    gateway of a member alliance) signs nothing; members of other roles are not judged."""
    configured = [str(GW), str(GW_GD)]
    require_configured_gateway(GW, configured)
    require_configured_gateway(GW_GD, configured)
    require_configured_gateway(SHOP, [])  # not a gateway: this check does not apply
    rogue = mid(Role.GATEWAY, "rogue")
    with pytest.raises(PermissionError) as caught:
        require_configured_gateway(rogue, configured)
    assert str(caught.value) == (
        f"{rogue} is not a configured gateway: only this gateway and configured peer "
        "gateways sign member records, escalations, monthly reports, holiday calendars "
        "and report submissions"
    )
    assert caught.value.advice == (
        "a region's gateway identity is configured out of band (docs/OPERATIONS.md)"
    )
    assert caught.value.reason == "permission-denied"


@dataclass(frozen=True)
class _Unlisted:
    """A statement type the signers table does not know (one added to the protocol
    before the policy)."""

    issuer: str


def test_a_statement_type_missing_from_the_table_is_signed_by_no_one() -> None:
    for role in Role:
        signer = mid(role)
        with pytest.raises(PermissionError) as caught:
            authorize_statement(
                signer,
                _Unlisted(str(signer)),  # type: ignore[arg-type]
                listing=None,
                signer_region="330100",
                signer_scope=AuthorityScope.NATIONAL,
            )
        assert str(caught.value) == (
            f"a {role.name.lower()} may not sign a _Unlisted (allowed: none)"
        )


@pytest.mark.parametrize(
    ("region", "scope", "target", "expected"),
    [
        (None, AuthorityScope.NATIONAL, "440300", True),
        (None, None, "330100", False),
        (None, AuthorityScope.UNIT, "330100", False),
        ("330000", None, "331099", True),
        ("330000", AuthorityScope.UNIT, "440300", False),
        ("440300", None, "330100", False),
    ],
)
def test_jurisdiction_is_the_reporting_unit_or_national_scope(
    region: str | None, scope: AuthorityScope | None, target: str, expected: bool
) -> None:
    assert has_jurisdiction(region, scope, target) is expected


_FAR = mid(Role.PLATFORM, "far", GD)
_AMR = mid(Role.AUTHORITY, "amr")
_NOT_YOURS = (
    "may not erase record " + "f" * 64 + f" of {_FAR}: its issuer, an authority of its "
    "listing's unit, or its alliance's gateway erases it"
)


@pytest.mark.parametrize(
    ("signer", "region", "message"),
    [
        (SHOP, None, f"{SHOP} {_NOT_YOURS}"),  # its own record first
        (GW, None, f"{GW} {_NOT_YOURS}"),  # a record of its trust domain first
        (  # a record of its unit first
            _AMR,
            "330000",
            f"authority {_AMR} acts for reporting unit 33 (Zhejiang) only: it may not erase "
            "records of a subject of reporting unit 44 (Guangdong) (region_code 440300)",
        ),
    ],
)
def test_an_erasure_cannot_carry_a_foreign_record_past_an_allowed_one(
    signer: MemberId, region: str | None, message: str
) -> None:
    """Every named record is judged: one the signer may erase, named first, does not
    let a record of another member, trust domain and unit through after it."""
    own = listing_by(SHOP)  # unit 33, trust domain zj
    foreign = listing_by(_FAR, region="440300")
    named: dict[str, tuple[Statement, Listing | None]] = {
        "a" * 64: (own, own),
        "f" * 64: (foreign, foreign),
    }
    erasure = make_statement(Erasure, signer)
    assert isinstance(erasure, Erasure)
    with pytest.raises(PermissionError) as caught:
        authorize_erasure(signer, erasure, named, signer_region=region)
    assert str(caught.value) == message


def _erased(listing: Listing) -> Listing:
    """The listing as read after its erasure: no subject, no committed texts."""
    return dataclasses.replace(listing, subject=None, decision_ref="", redacted=True)


def test_an_erased_listing_names_no_store() -> None:
    """Once erased, a listing names no store: no platform answers NOT_APPLICABLE against
    it wrongly, and none disputes it as the seller's platform."""
    erased = _erased(_with_store(PLATFORM_ISSUER, MALL))
    applied = make_statement(SanctionConfirmation, MALL)
    assert isinstance(applied, SanctionConfirmation)
    answer = dataclasses.replace(applied, measure=None, action=SanctionAction.NOT_APPLICABLE)
    authorize_statement(MALL, answer, listing=erased, signer_region=None)
    with pytest.raises(PermissionError) as caught:
        authorize_statement(
            MALL, status_change(MALL, LifecycleStep.DISPUTED), listing=erased, signer_region=None
        )
    assert str(caught.value) == (
        f"platform {MALL} holds no store of the subject of listing {LID}: a seller objects "
        "through the listing's issuer, a platform of its stores, or an authority of "
        "reporting unit 33 (Zhejiang)"
    )


def test_a_named_store_platform_confirms_the_measure_it_applied() -> None:
    """Only NOT_APPLICABLE is refused to a platform the listing names; APPLIED is its duty,
    and NOT_APPLICABLE for a listing not yet known here is not judged by this rule."""
    listing = _with_store(PLATFORM_ISSUER, MALL)
    applied = make_statement(SanctionConfirmation, MALL)
    assert isinstance(applied, SanctionConfirmation)
    authorize_statement(MALL, applied, listing=listing, signer_region=None)
    refused = dataclasses.replace(applied, measure=None, action=SanctionAction.NOT_APPLICABLE)
    authorize_statement(MALL, refused, listing=None, signer_region=None)
    with pytest.raises(PermissionError) as caught:
        authorize_statement(MALL, refused, listing=listing, signer_region=None)
    assert str(caught.value) == (
        f"listing {LID} names store 's1' of {MALL}: the seller has an account there, so the "
        "platform may not answer NOT_APPLICABLE"
    )
    assert caught.value.advice == "confirm the measure you applied (alliance confirm-sanction)"
