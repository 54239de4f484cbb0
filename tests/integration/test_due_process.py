"""Due process end to end on real gateways (mTLS on port 0, real databases), driven by a
controllable clock: identification, jurisdiction, objections, corrections that win,
and two federated regions computing the same state under the issuing alliance's
policy (issue 16)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from gwtest import (
    USCC,
    Alliance,
    Member,
    listing,
    pg_base_url,
    pg_schema_url,
    submit,
    zhejiang,
)
from test_compliance import (
    Clock,
    escalations,
    eventually,
    gateway_at,
    reserve_port,
    sanction,
    send,
    step_of,
    utc,
)

from gateway.core import dsse
from gateway.core.crypto import load_signing_key
from gateway.core.disclosure import Disclosure, Group
from gateway.core.lifecycle import Lifecycle
from gateway.core.notes import NoteSigner
from gateway.core.obligations import ListingCompliance, ObligationKind, ObligationState
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    PAYLOAD_TYPES,
    LifecycleStep,
    SanctionAction,
    StatusChange,
    StoreRef,
    Subject,
    add_months,
)
from gateway.core.workdays import ReportMonth
from gateway.errors import NotFoundError
from gateway.ops.app import Gateway
from gateway.ops.policy_file import parse_policy
from gateway.pb.alliance.v1 import statements_pb2 as pb

S = LifecycleStep
OTHER_USCC = "9133010052601815XH"
EVIDENCE = hashlib.sha256(b"the seller's evidence: shipping records of the orders").digest()
_DECISIONS = (S.CORRECTED, S.REMOVED, S.UPHELD, S.WITHDRAWN)


def change(member: Member, listing_id: str, s: LifecycleStep, at: datetime) -> StatusChange:
    """A status change with the fields its step requires."""
    return StatusChange(
        issuer=member.member_id,
        listing_id=listing_id,
        step=s,
        effective_at=at,
        decision_ref="ZJ-AMR-2026-D7" if s in _DECISIONS else "",
        reason="the seller objects: the orders were real"
        if s is S.DISPUTED
        else ("decided on the evidence" if s in _DECISIONS else ""),
        decided_by="Hangzhou Intermediate People's Court" if s is S.REMOVED else "",
        document_sha256=EVIDENCE if s is S.DISPUTED else b"",
    )


def refused(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def state(gw: Gateway, listing_id: str) -> ListingCompliance:
    return gw.compliance.compliance.listing(listing_id)


def life(gw: Gateway, listing_id: str) -> Lifecycle:
    return state(gw, listing_id).lifecycle


def unit_report(gw: Gateway, month: ReportMonth, unit: str = "33") -> dict[str, Any]:
    reports = gw.compliance.reports
    document = reports.compute(month, None, reports.checkpoint())
    found: dict[str, Any] = next(u for u in document["units"] if u["unit"] == unit)
    return found


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def members(a: Alliance) -> tuple[Member, Member, Member]:
    return a.members["zj-amr"], a.members["shop-a"], a.members["shop-b"]


def test_reported_identified_corrected_in_time(alliance: Alliance, database_url: str) -> None:
    amr, shop_a, _ = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        report = send(shop_a, gw, listing(shop_a, region_code="330100", listed_at=clock()))
        reported = life(gw, report)
        assert not reported.identified and reported.deadline is None
        # Three months later nothing escalates: a report runs no deadline.
        clock.set(utc(2026, 9, 2))
        gw.compliance.tick()
        assert escalations(gw) == []
        assert state(gw, report).obligations == ()

        # The platform cannot identify its own report; the unit's authority does.
        err = refused(lambda: send(shop_a, gw, change(shop_a, report, S.IDENTIFIED, clock())))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "may not identify it: an authority of reporting unit 33 (Zhejiang)" in (
            err.details() or ""
        )
        send(amr, gw, change(amr, report, S.IDENTIFIED, clock()))
        identified = life(gw, report)
        assert identified.identified_at == utc(2026, 9, 2)
        assert identified.deadline == add_months(utc(2026, 9, 2), 3)  # from the identification
        assert step_of(amr, gw, USCC[0]) == [S.IDENTIFIED]

        # Corrected the day before the deadline: never escalated.
        clock.set(utc(2026, 12, 1))
        send(shop_a, gw, change(shop_a, report, S.CORRECTED, clock()))
        clock.set(utc(2026, 12, 3))
        gw.compliance.tick()
        assert escalations(gw) == []
        assert step_of(amr, gw, USCC[0]) == [S.CORRECTED]
        assert unit_report(gw, ReportMonth(2026, 9))["identified"] == 1
        december = unit_report(gw, ReportMonth(2026, 12))
        assert (december["corrected_in_time"], december["escalated"]) == (1, 0)


def test_listed_disputed_withdrawn_owes_lifts_and_counts_as_an_error(
    alliance: Alliance, database_url: str
) -> None:
    amr, shop_a, shop_b = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        subject = Subject(uscc=USCC[0], stores=(StoreRef(shop_a.member_id, "a-7"),))
        lid = send(amr, gw, listing(amr, subject=subject, listed_at=clock()))  # due 1 Sep
        clock.set(utc(2026, 9, 1, 0, 0, 1))
        gw.compliance.tick()
        assert [e[2].listing_id for e in escalations(gw)] == [lid]
        clock.set(utc(2026, 9, 2))
        send(shop_a, gw, sanction(shop_a, lid, SanctionAction.APPLIED, clock()))

        # The seller objects through the platform of its store, with its evidence.
        clock.set(utc(2026, 9, 10))
        err = refused(lambda: send(shop_b, gw, change(shop_b, lid, S.DISPUTED, clock())))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "holds no store of the subject" in (err.details() or "")
        bare = pb.StatusChange(
            issuer=shop_a.member_id, listing_id=lid, step=pb.LIFECYCLE_STEP_DISPUTED, reason="no"
        )
        bare.effective_at.FromDatetime(clock())
        err = refused(lambda: send_raw(shop_a, gw, bare))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "document_sha256: required for DISPUTED" in (err.details() or "")
        send(shop_a, gw, change(shop_a, lid, S.DISPUTED, clock()))
        assert life(gw, lid).open_dispute is not None
        # The store's platform objects; it does not decide.
        err = refused(lambda: send(shop_a, gw, change(shop_a, lid, S.WITHDRAWN, clock())))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED

        clock.set(utc(2026, 9, 15))
        send(amr, gw, change(amr, lid, S.WITHDRAWN, clock()))
        withdrawn = state(gw, lid)
        assert withdrawn.step is S.WITHDRAWN and not withdrawn.in_force
        assert step_of(amr, gw, USCC[0]) == [S.WITHDRAWN]
        (owed,) = withdrawn.obligations
        assert (owed.platform, owed.kind, owed.state) == (
            shop_a.member_id,
            ObligationKind.LIFT,
            ObligationState.PENDING,
        )
        clock.set(utc(2026, 9, 15) + gw.compliance.compliance.grace + timedelta(seconds=1))
        (owed,) = state(gw, lid).obligations
        assert owed.state is ObligationState.OUTSTANDING

        september = unit_report(gw, ReportMonth(2026, 9))
        assert september["withdrawn"] == 1
        assert (september["removed"], september["corrected_in_time"]) == (0, 0)
        assert (september["disputes_opened"], september["disputes_withdrawn"]) == (1, 1)
        assert september["outstanding_lifts"] == {"CLOSE_STORE": 1}


def send_raw(member: Member, gw: Gateway, message: pb.StatusChange) -> str:
    """Sign hand-built bytes (a statement the client library would not build), as a
    status-change.v2: its text moves into a disclosure the payload commits to."""
    text = pb.StatusChange()
    for name in ("decision_ref", "reason", "decided_by"):
        setattr(text, name, getattr(message, name))
        message.ClearField(name)
    disclosure = Disclosure(Group.TEXT, os.urandom(32), text.SerializeToString(deterministic=True))
    message.commitments.add(group=int(Group.TEXT), digest=disclosure.digest)
    env = dsse.with_disclosures(
        dsse.sign(
            PAYLOAD_TYPES[StatusChange],
            message.SerializeToString(deterministic=True),
            member.signing_key,
        ),
        (disclosure,),
    )
    with member.channel(gw.port) as ch:
        record_id: str = submit(ch, env).record_id
    return record_id


def test_disputed_upheld_escalates_later_by_the_disputes_length(
    alliance: Alliance, database_url: str
) -> None:
    amr, shop_a, _ = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        lid = send(amr, gw, listing(amr, listed_at=clock()))  # due 1 September
        clock.set(utc(2026, 8, 1))
        send(amr, gw, change(amr, lid, S.DISPUTED, clock()))  # on the seller's behalf
        # While the dispute is open, the deadline does not run and nothing escalates.
        clock.set(utc(2026, 9, 2))
        gw.compliance.tick()
        assert escalations(gw) == []
        assert life(gw, lid).deadline is None
        # Undecided after 15 working days: a gauge (and the alert on it) says so.
        gw.compliance.refresh_gauges()
        registry = gw.metrics.registry
        assert registry.get_sample_value("alliance_compliance_open_disputes", {"unit": "33"}) == 1
        assert (
            registry.get_sample_value("alliance_compliance_overdue_disputes", {"unit": "33"}) == 1
        )
        assert unit_report(gw, ReportMonth(2026, 8))["disputes_overdue_at_month_end"] == 1

        clock.set(utc(2026, 9, 5))
        err = refused(lambda: send(shop_a, gw, change(shop_a, lid, S.UPHELD, clock())))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        send(amr, gw, change(amr, lid, S.UPHELD, clock()))
        moved = utc(2026, 9, 1) + (utc(2026, 9, 5) - utc(2026, 8, 1))  # open 35 days
        assert life(gw, lid).deadline == moved == utc(2026, 10, 6)
        clock.set(moved)
        gw.compliance.tick()
        assert escalations(gw) == []
        clock.set(moved + timedelta(seconds=1))
        gw.compliance.tick()
        ((_, _, escalation),) = escalations(gw)
        assert escalation.listing_id == lid and escalation.effective_at == moved
        assert life(gw, lid).escalated_at == moved
        gw.compliance.refresh_gauges()
        assert registry.get_sample_value("alliance_compliance_open_disputes", {"unit": "33"}) in (
            None,
            0,
        )
        september = unit_report(gw, ReportMonth(2026, 9))
        assert (september["disputes_upheld"], september["escalated"]) == (1, 0)
        assert unit_report(gw, ReportMonth(2026, 10))["escalated"] == 1


def test_a_correction_recorded_after_the_escalation_wins(
    alliance: Alliance, database_url: str
) -> None:
    amr, _, _ = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        lid = send(amr, gw, listing(amr, listed_at=clock()))  # due 1 September
        clock.set(utc(2026, 9, 1, 0, 0, 1))
        gw.compliance.tick()
        assert len(escalations(gw)) == 1
        assert state(gw, lid).obligations  # every active platform owes a sanction
        # Corrected on 31 August, recorded on 3 September.
        clock.set(utc(2026, 9, 3))
        send(amr, gw, change(amr, lid, S.CORRECTED, utc(2026, 8, 31)))
        corrected = state(gw, lid)
        assert corrected.step is S.CORRECTED and corrected.escalated_at is None
        assert corrected.obligations == ()
        assert step_of(amr, gw, USCC[0]) == [S.CORRECTED]
        august = unit_report(gw, ReportMonth(2026, 8))
        september = unit_report(gw, ReportMonth(2026, 9))
        assert (august["corrected_in_time"], august["corrected_late"]) == (1, 0)
        assert september["escalated"] == 0  # counted once, as corrected in time
        gw.compliance.refresh_gauges()
        labels = {"list": "blacklist", "unit": "33"}
        registry = gw.metrics.registry
        assert registry.get_sample_value("alliance_compliance_escalated_listings", labels) in (
            None,
            0,
        )


def test_jurisdiction_national_authorities_and_accepted_sources(
    alliance: Alliance, database_url: str
) -> None:
    amr, shop_a, _ = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        national = alliance.member("authority", "ndrc-list", region="110000")
        gw.core.members.add(
            national.member_id,
            national.region,
            national.signing_key.public_key().raw,
            possession=prove_possession(national.signing_key, national.member_id),
            national=True,
        )
        guangdong = listing(amr, uscc=USCC[1], region_code="440300", listed_at=clock())
        err = refused(lambda: send(amr, gw, guangdong))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (
            "acts for reporting unit 33 (Zhejiang) only: it may not list a subject of reporting "
            "unit 44 (Guangdong) (region_code 440300)"
        ) in (err.details() or "")
        # A platform reports the Guangdong seller; Zhejiang's authority may not identify it.
        report = send(
            shop_a, gw, listing(shop_a, uscc=USCC[1], region_code="440300", listed_at=clock())
        )
        err = refused(lambda: send(amr, gw, change(amr, report, S.IDENTIFIED, clock())))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "reporting unit 44 (Guangdong)" in (err.details() or "")
        # The national list's issuer lists and identifies in any unit.
        nat_listing = listing(national, uscc=USCC[2], region_code="440300", listed_at=clock())
        assert send(national, gw, nat_listing)
        send(national, gw, change(national, report, S.IDENTIFIED, clock()))
        assert life(gw, report).identified_at == clock()

        # The alliance's policy: only unit 33 takes platform reports.
        gw.core.policy_admin.set(parse_policy({"units_accepting_platform_reports": ["33"]}))
        clock.set(utc(2026, 6, 2))
        err = refused(
            lambda: send(
                shop_a,
                gw,
                listing(shop_a, uscc=OTHER_USCC, region_code="440300", listed_at=clock()),
            )
        )
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "reporting unit 44 (Guangdong) does not accept platform reports" in (
            err.details() or ""
        )
        assert send(
            shop_a, gw, listing(shop_a, uscc=OTHER_USCC, region_code="330100", listed_at=clock())
        )


def test_two_regions_compute_the_same_state_under_the_issuing_alliances_policy(
    tmp_path: Path, database_url: str
) -> None:
    zj = Alliance(tmp_path / "zj", "zj.alliance.test", region="330100")
    gd = Alliance(tmp_path / "gd", "gd.alliance.test", region="440300")
    zj_amr = zj.member("authority", "zj-amr", region="330000")
    gd_shop = gd.member("platform", "gd-shop")
    ports = {a.trust_domain: reserve_port() for a in (zj, gd)}

    def peer(a: Alliance) -> dict[str, Any]:
        origin = f"{a.trust_domain}/alliance-log/v1"
        key = load_signing_key(a.gw_dir / "signing-key.pem")
        return {
            "name": a.gateway_name,
            "address": f"127.0.0.1:{ports[a.trust_domain]}",
            "trust_domain": a.trust_domain,
            "ca_file": str(a.ca),
            "log_origin": origin,
            "log_vkey": NoteSigner(origin, key).verifier().vkey,
        }

    def both(*gateways: Gateway) -> Iterator[Gateway]:
        yield from gateways

    clock = Clock(utc(2026, 6, 1))
    with ExitStack() as stack:
        urls = {"zj": f"sqlite:///{tmp_path / 'zj'}.db", "gd": f"sqlite:///{tmp_path / 'gd'}.db"}
        if not database_url.startswith("sqlite"):
            urls["zj"] = database_url
            urls["gd"] = stack.enter_context(pg_schema_url(pg_base_url() or ""))
        configs = [
            a.config(
                urls[name],
                listen_address=f"127.0.0.1:{ports[a.trust_domain]}",
                federation_backoff_initial_s=0.1,
                federation_backoff_max_s=0.5,
                peers=[peer(b)],
            )
            for name, a, b in (("zj", zj, gd), ("gd", gd, zj))
        ]
        a = stack.enter_context(gateway_at(configs[0], clock, (zj_amr,)))
        b = stack.enter_context(gateway_at(configs[1], clock, (gd_shop,)))
        # Each alliance signs its own dispute limit: Zhejiang 2 working days, Guangdong 40.
        _, zj_policy = a.core.policy_admin.set(parse_policy({"dispute_decision_working_days": 2}))
        b.core.policy_admin.set(parse_policy({"dispute_decision_working_days": 40}))
        eventually(
            lambda: b.core.policies.current(zj.trust_domain) == zj_policy,
            "GD holds Zhejiang's policy",
        )

        # A Zhejiang listing, and a Guangdong platform's report of a Zhejiang seller.
        lid = send(zj_amr, a, listing(zj_amr, listed_at=clock()))  # due 1 September
        report = send(
            gd_shop, b, listing(gd_shop, uscc=USCC[1], region_code="330100", listed_at=clock())
        )
        eventually(lambda: a.core.store.record_by_id(report) is not None, "ZJ holds the report")
        # The Zhejiang authority identifies the Guangdong report at its own gateway.
        clock.set(utc(2026, 6, 10))
        send(zj_amr, a, change(zj_amr, report, S.IDENTIFIED, clock()))
        clock.set(utc(2026, 8, 3))
        send(zj_amr, a, change(zj_amr, lid, S.DISPUTED, clock()))

        def same(listing_id: str) -> bool:
            try:
                return life(a, listing_id) == life(b, listing_id)
            except NotFoundError:
                return False  # not replicated yet

        eventually(lambda: same(lid) and same(report), "GD folds the same state")
        assert life(b, report).deadline == add_months(utc(2026, 6, 10), 3)
        assert life(b, lid).open_dispute is not None

        # 10 August: past Zhejiang's 2 working days, well within Guangdong's 40 — each
        # gateway judges the Zhejiang listing's dispute by Zhejiang's policy.
        clock.set(utc(2026, 8, 10))
        for gw in both(a, b):
            opened, overdue = gw.compliance.compliance.disputes(clock())
            assert (opened, overdue) == ({"33": 1}, {"33": 1})

        clock.set(utc(2026, 8, 13))
        send(zj_amr, a, change(zj_amr, lid, S.UPHELD, clock()))
        eventually(lambda: same(lid), "GD folds the decision")
        assert life(b, lid).deadline == utc(2026, 9, 11)  # moved out by 10 days

        # Each issuing gateway escalates its own listing at the deadline in force; the
        # other holds the escalation and computes the same state.
        clock.set(utc(2026, 9, 11, 0, 0, 1))
        for gw in both(a, b):
            gw.compliance.tick()
        assert [e[2].listing_id for e in escalations(a)] == [lid]
        assert [e[2].listing_id for e in escalations(b)] == [report]
        eventually(
            lambda: len(escalations(a)) == 2 and len(escalations(b)) == 2,
            "the escalations replicate",
        )
        for listing_id in (lid, report):
            assert same(listing_id)
        assert life(a, lid).escalated_at == utc(2026, 9, 11)
        assert life(a, report).escalated_at == add_months(utc(2026, 6, 10), 3)
        assert unit_report(a, ReportMonth(2026, 8)) == unit_report(b, ReportMonth(2026, 8))
