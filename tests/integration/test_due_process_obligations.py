"""Issue 17 on real gateways: obligations platforms can meet, government measures,
notices with their document hash, late notices.

Two federated regions (Zhejiang and Guangdong, each with its own CA, trust domain,
log and database), or one where the second adds nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from gwtest import USCC, Alliance, Member, listing, pg_base_url, pg_schema_url, submit
from test_compliance import Clock, eventually, gateway_at, reserve_port, utc

from gateway.core.crypto import load_signing_key
from gateway.core.notes import NoteSigner
from gateway.core.report import compute_month
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    GovernmentMeasure,
    GovernmentMeasureKind,
    LifecycleStep,
    ListKind,
    MeasureRequirement,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
)
from gateway.core.workdays import ReportMonth
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import compliance_pb2 as co
from gateway.pb.alliance.v1 import compliance_pb2_grpc
from gateway.service.reports import replay

PENDING = co.OBLIGATION_STATE_PENDING
SATISFIED = co.OBLIGATION_STATE_SATISFIED
NOT_APPLICABLE = co.OBLIGATION_STATE_NOT_APPLICABLE
NOTICE_HASH = hashlib.sha256("失信整改通知 ZJ-AMR-2026-N-7".encode()).digest()


def send(member: Member, gw: Gateway, statement: Any) -> str:
    with member.channel(gw.port) as ch:
        record_id: str = submit(ch, member.sign(statement)).record_id
    return record_id


def refused(member: Member, gw: Gateway, statement: Any) -> grpc.RpcError:
    with member.channel(gw.port) as ch, pytest.raises(grpc.RpcError) as err:
        submit(ch, member.sign(statement))
    return err.value


def view(gw: Gateway, member: Member, listing_id: str) -> co.ListingCompliance:
    with member.channel(gw.port) as ch:
        reply: co.ListingCompliance = compliance_pb2_grpc.ComplianceStub(ch).GetCompliance(
            co.GetComplianceRequest(listing_id=listing_id), timeout=10
        )
    return reply


def owed_by(gw: Gateway, member: Member) -> list[tuple[str, int]]:
    with member.channel(gw.port) as ch:
        reply = compliance_pb2_grpc.ComplianceStub(ch).ListOwed(co.ListOwedRequest(), timeout=10)
    return [(o.listing_id, o.obligation.state) for o in reply.owed]


def answer(platform: Member, listing_id: str, **kw: Any) -> SanctionConfirmation:
    values: dict[str, Any] = {
        "issuer": platform.member_id,
        "listing_id": listing_id,
        "measure": None,
        "action": SanctionAction.NOT_APPLICABLE,
        "effective_at": utc(2026, 9, 3),
    }
    values.update(kw)
    return SanctionConfirmation(**values)


def applied(platform: Member, listing_id: str, measure: SanctionMeasure) -> SanctionConfirmation:
    return SanctionConfirmation(
        issuer=platform.member_id,
        listing_id=listing_id,
        measure=measure,
        action=SanctionAction.APPLIED,
        effective_at=utc(2026, 9, 3),
    )


class Regions:
    def __init__(self, root: Path) -> None:
        self.zj = Alliance(root / "zj", "zj.alliance.test", region="330100")
        self.gd = Alliance(root / "gd", "gd.alliance.test", region="440300")
        self.zj_amr = self.zj.member("authority", "zj-amr", region="330000")
        self.zj_shop = self.zj.member("platform", "zj-shop")
        self.gd_amr = self.gd.member("authority", "gd-amr", region="440000")
        self.gd_shop = self.gd.member("platform", "gd-shop")
        self.gd_mall = self.gd.member("platform", "gd-mall")
        self.ports = {a.trust_domain: reserve_port() for a in (self.zj, self.gd)}

    def peer(self, a: Alliance) -> dict[str, Any]:
        origin = f"{a.trust_domain}/alliance-log/v1"
        key = load_signing_key(a.gw_dir / "signing-key.pem")
        return {
            "name": a.gateway_name,
            "address": f"127.0.0.1:{self.ports[a.trust_domain]}",
            "trust_domain": a.trust_domain,
            "ca_file": str(a.ca),
            "log_origin": origin,
            "log_vkey": NoteSigner(origin, key).verifier().vkey,
        }


@contextmanager
def two_regions(
    tmp_path: Path, database_url: str, clock: Clock
) -> Iterator[tuple[Regions, Gateway, Gateway]]:
    r = Regions(tmp_path)

    def url(name: str) -> str:
        if database_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / name}.db"
        return database_url if name == "zj" else ""

    with ExitStack() as stack:
        gd_url = url("gd") or stack.enter_context(pg_schema_url(pg_base_url() or ""))
        configs = [
            a.config(
                u,
                listen_address=f"127.0.0.1:{r.ports[a.trust_domain]}",
                federation_backoff_initial_s=0.1,
                federation_backoff_max_s=0.5,
                peers=[r.peer(b)],
            )
            for a, b, u in ((r.zj, r.gd, url("zj")), (r.gd, r.zj, gd_url))
        ]
        zj = stack.enter_context(gateway_at(configs[0], clock, (r.zj_amr, r.zj_shop)))
        gd = stack.enter_context(gateway_at(configs[1], clock, (r.gd_amr, r.gd_shop, r.gd_mall)))
        yield r, zj, gd


def test_a_store_less_zhejiang_listing_obliges_guangdongs_platforms_in_guangdong(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock(utc(2026, 6, 1))
    with two_regions(tmp_path, database_url, clock) as (r, zj, gd):
        # Zhejiang's policy: fake transactions call for closing the store (a rating cut
        # or an account restriction does not do), with 5 days to answer.
        zj.core.policy_admin.set(
            AlliancePolicy(
                issuer=zj.config.member_id,
                issued_at=clock(),
                sanction_grace_days=5,
                measure_requirements=(
                    MeasureRequirement(
                        ListKind.BLACKLIST,
                        ConductType.FAKE_TRANSACTIONS,
                        (SanctionMeasure.CLOSE_STORE,),
                    ),
                ),
            )
        )
        listing_id = send(r.zj_amr, zj, listing(r.zj_amr, listed_at=utc(2026, 6, 1)))
        clock.set(utc(2026, 9, 2))
        zj.compliance.tick()  # overdue: Zhejiang's gateway escalates its own listing
        escalated = view(zj, r.zj_shop, listing_id)
        assert escalated.step == int(LifecycleStep.ESCALATED)

        def escalated_in_gd() -> bool:
            projection = gd.core.store.listing(listing_id)
            return projection is not None and projection.step == int(LifecycleStep.ESCALATED)

        eventually(escalated_in_gd, "the listing and its escalation replicate to Guangdong")

        # Guangdong's gateway tracks Guangdong's platforms; Zhejiang's only its own.
        in_gd = view(gd, r.gd_shop, listing_id)
        assert not in_gd.platforms_from_stores
        assert [(o.platform, o.state) for o in in_gd.obligations] == [
            (r.gd_mall.member_id, PENDING),
            (r.gd_shop.member_id, PENDING),
        ]
        first = in_gd.obligations[0]
        assert first.may_answer_not_applicable
        assert [int(m) for m in first.satisfying] == [int(SanctionMeasure.CLOSE_STORE)]
        # The issuing alliance's grace period: the escalation (at the deadline) + 5 days.
        assert first.due_at.ToDatetime().isoformat() == "2026-09-06T00:00:00"
        in_zj = view(zj, r.zj_shop, listing_id)
        assert [(o.platform, o.state) for o in in_zj.obligations] == [
            (r.zj_shop.member_id, PENDING)
        ]

        clock.set(utc(2026, 9, 3))
        # gd-shop: the seller has no account here. Its obligation ends.
        send(r.gd_shop, gd, answer(r.gd_shop, listing_id))
        # gd-mall cuts the rating, then restricts new accounts: neither is a closure.
        send(r.gd_mall, gd, applied(r.gd_mall, listing_id, SanctionMeasure.LOWER_CREDIT_RATING))
        send(r.gd_mall, gd, applied(r.gd_mall, listing_id, SanctionMeasure.RESTRICT_NEW_ACCOUNTS))
        states = {o.platform: o for o in view(gd, r.gd_shop, listing_id).obligations}
        assert states[r.gd_shop.member_id].state == NOT_APPLICABLE
        assert states[r.gd_mall.member_id].state == PENDING
        assert sorted(int(m.measure) for m in states[r.gd_mall.member_id].measures) == [
            int(SanctionMeasure.RESTRICT_NEW_ACCOUNTS),
            int(SanctionMeasure.LOWER_CREDIT_RATING),
        ]
        assert owed_by(gd, r.gd_shop) == []
        assert owed_by(gd, r.gd_mall) == [(listing_id, PENDING)]
        # Only platforms ask what they owe.
        with r.gd_amr.channel(gd.port) as ch, pytest.raises(grpc.RpcError) as err:
            compliance_pb2_grpc.ComplianceStub(ch).ListOwed(co.ListOwedRequest(), timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

        # `alliance compliance owed`: Beijing time for people, RFC 3339 UTC in JSON.
        from test_client import write_profile

        from clients.compliance_cli import add_subparsers

        profile = write_profile(r.gd, r.gd_mall, f"127.0.0.1:{gd.port}", gd.config.log_origin)
        parser = argparse.ArgumentParser()
        parser.add_argument("--profile", type=Path)
        parser.add_argument("--timeout", type=float, default=10.0)
        add_subparsers(parser.add_subparsers(dest="command", required=True))

        def run(*argv: str) -> str:
            args = parser.parse_args(["--profile", str(profile), *argv])
            assert args.handler(args) == 0
            return capsys.readouterr().out

        table = run("compliance", "owed")
        assert "2026-09-06 08:00" in table and listing_id in table
        assert "apply one of close-store (or answer not-applicable)" in table
        (line,) = run("compliance", "owed", "--json").splitlines()
        assert json.loads(line)["due_at"] == "2026-09-06T00:00:00Z"

        # The store closed: satisfied. Past the grace period nothing is outstanding.
        send(r.gd_mall, gd, applied(r.gd_mall, listing_id, SanctionMeasure.CLOSE_STORE))
        assert owed_by(gd, r.gd_mall) == []
        clock.set(utc(2026, 9, 10))
        final = {o.platform: int(o.state) for o in view(gd, r.gd_shop, listing_id).obligations}
        assert final == {r.gd_shop.member_id: NOT_APPLICABLE, r.gd_mall.member_id: SATISFIED}
        gd.compliance.refresh_gauges()
        registry = gd.metrics.registry
        assert registry.get_sample_value("alliance_compliance_not_applicable_obligations") == 1

        # Guangdong's September report counts the answer, and no outstanding obligation.
        checkpoint = gd.compliance.reports.checkpoint()
        data = compute_month(
            replay(gd.core.store, checkpoint.tree_size),
            ReportMonth(2026, 9),
            grace=timedelta(days=7),
            trust_domain=r.gd.trust_domain,
        )
        zhejiang = data.units["33"].to_json()
        assert zhejiang["not_applicable_answers"] == 1
        assert zhejiang["outstanding_confirmations"] == 0


def test_a_named_store_platform_may_not_answer_not_applicable(
    tmp_path: Path, database_url: str
) -> None:
    from gateway.core.statements import StoreRef, Subject

    clock = Clock(utc(2026, 6, 1))
    with two_regions(tmp_path, database_url, clock) as (r, zj, gd):
        subject = Subject(uscc=USCC[1], stores=(StoreRef(r.gd_shop.member_id, "gd-9"),))
        listing_id = send(r.zj_amr, zj, listing(r.zj_amr, subject=subject, listed_at=clock()))
        eventually(lambda: gd.core.store.record_by_id(listing_id) is not None, "replicated")
        err = refused(r.gd_shop, gd, answer(r.gd_shop, listing_id, effective_at=clock()))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "may not answer NOT_APPLICABLE" in (err.details() or "")
        # A platform the listing does not name may answer.
        send(r.gd_mall, gd, answer(r.gd_mall, listing_id, effective_at=clock()))


def test_government_measures_and_notices_in_compliance_views(
    tmp_path: Path, database_url: str
) -> None:
    clock = Clock(utc(2026, 10, 9, 2))  # Friday 9 October, 10:00 in Beijing
    with two_regions(tmp_path, database_url, clock) as (r, zj, gd):
        listing_id = send(r.zj_amr, zj, listing(r.zj_amr, listed_at=clock()))
        eventually(lambda: gd.core.store.record_by_id(listing_id) is not None, "replicated")
        # Identified when the authority listed it: the notice is due within 5 working
        # days on the State Council's calendar. Saturday 10 October is a make-up working
        # day (National Day), so the fifth is Thursday 15 October: due by its end (Beijing).
        shown = view(zj, r.zj_shop, listing_id)
        assert shown.notice_due_at.ToJsonString() == "2026-10-15T16:00:00Z"
        assert not shown.notice_late

        def late_gauge() -> float | None:
            zj.compliance.refresh_gauges()
            return zj.metrics.registry.get_sample_value(
                "alliance_compliance_notices_late_listings", {"list": "blacklist", "unit": "33"}
            )

        assert late_gauge() is None
        clock.set(utc(2026, 10, 15, 17))  # 16 October 01:00 in Beijing: late
        assert view(zj, r.zj_shop, listing_id).notice_late
        assert late_gauge() == 1

        # A notice without its document's hash is refused; with it, it is recorded.
        notice = StatusChange(
            issuer=r.zj_amr.member_id,
            listing_id=listing_id,
            step=LifecycleStep.NOTICE_SERVED,
            effective_at=clock(),
            decision_ref="ZJ-AMR-2026-N-7",
        )
        err = refused(r.zj_amr, zj, notice)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "document_sha256: required for NOTICE_SERVED" in (err.details() or "")
        from dataclasses import replace

        send(r.zj_amr, zj, replace(notice, document_sha256=NOTICE_HASH))
        assert late_gauge() == 0 or late_gauge() is None  # served now, late all the same

        # A summons by the listing's unit; Guangdong's authority may not take one here.
        summons = GovernmentMeasure(
            issuer=r.zj_amr.member_id,
            listing_id=listing_id,
            kind=GovernmentMeasureKind.SUMMONS,
            decision_ref="浙发改约〔2026〕3号",
            effective_at=clock(),
            document_sha256=hashlib.sha256(b"summons").digest(),
        )
        measure_id = send(r.zj_amr, zj, summons)
        err = refused(r.gd_amr, gd, replace(summons, issuer=r.gd_amr.member_id))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "of a subject of reporting unit 33 " in (err.details() or "")
        assert isinstance(err, grpc.Call)
        reasons = [v for k, v in err.trailing_metadata() or () if k == "alliance-reason"]
        assert reasons == ["outside-unit"]

        for gw, member in ((zj, r.zj_shop), (gd, r.gd_shop)):
            eventually(
                lambda gw=gw, member=member: (
                    len(view(gw, member, listing_id).government_measures) == 1
                ),
                "the measure is shown in both regions",
            )
            shown = view(gw, member, listing_id)
            (m,) = shown.government_measures
            assert (m.record_id, int(m.kind), m.decision_ref) == (
                measure_id,
                int(GovernmentMeasureKind.SUMMONS),
                "浙发改约〔2026〕3号",
            )
            (step,) = shown.steps
            assert int(step.step) == int(LifecycleStep.NOTICE_SERVED)
            assert step.document_sha256 == NOTICE_HASH
            assert shown.notice_late  # served after it was due

        # October's report of Zhejiang counts the summons, the notice and its lateness.
        clock.set(utc(2026, 11, 2))
        report = zj.compliance.reports.generate(ReportMonth(2026, 10))
        unit = next(u for u in report.document["units"] if u["unit"] == "33")
        assert unit["government_measures"] == {"SUMMONS": 1}
        assert (unit["notices_served"], unit["notices_late"]) == (1, 1)
        # The measure names its listing: another listing's detail shows none (read after
        # the measure and the report, so from the gateway's index of measures by listing).
        other_id = send(r.zj_amr, zj, listing(r.zj_amr, uscc=USCC[2], listed_at=clock()))
        assert list(view(zj, r.zj_shop, other_id).government_measures) == []
