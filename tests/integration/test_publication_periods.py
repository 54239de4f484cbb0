"""Publication periods on real gateways (issue 18 item 3; issue 22's "drops an entry after
its publication period"): who sees a listing before and after its minimum and maximum
periods, the automatic RETIRED step at the maximum and its replication, and the public
feed. Time is the gateways' controllable clock; waits are for events."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from gwtest import (
    USCC,
    Alliance,
    Member,
    exchange,
    listing,
    pg_base_url,
    pg_schema_url,
    zhejiang,
)
from test_compliance import Clock, eventually, gateway_at, reserve_port, sanction, send, utc

from gateway import codec
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    ListKind,
    SanctionAction,
    SanctionMeasure,
    StatusChange,
    StoreRef,
    Subject,
    add_months,
)
from gateway.core.workdays import ReportMonth
from gateway.ops.app import Gateway
from gateway.ops.policy_file import parse_policy
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.retirement import AUTO_RETIREMENT_REASON, AUTO_RETIREMENT_REF

S = LifecycleStep
NAME = "杭州示例商贸有限公司"


def _correct(amr: Member, listing_id: str, at: datetime) -> StatusChange:
    return StatusChange(
        issuer=amr.member_id,
        listing_id=listing_id,
        step=S.CORRECTED,
        effective_at=at,
        decision_ref="ZJ-AMR-2026-R1",
        reason="整改完成，信用修复",
    )


def _check(member: Member, gw: Gateway, uscc: str) -> ex.SubjectStatus:
    with member.channel(gw.port) as ch:
        reply = exchange(ch).CheckSubjects(
            ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(Subject(uscc=uscc))]),
            timeout=10,
        )
    result: ex.SubjectStatus = reply.results[0]
    return result


def _listed_ids(member: Member, gw: Gateway) -> list[str]:
    with member.channel(gw.port) as ch:
        reply = exchange(ch).ListListings(ex.ListListingsRequest(page_size=100), timeout=10)
    return [s.listing_id for s in reply.listings]


def _seen(member: Member, gw: Gateway, uscc: str) -> tuple[bool, list[tuple[str, int]]]:
    """(listed, [(listing_id, step)]) as ``member`` sees the subject."""
    r = _check(member, gw, uscc)
    return r.listed, [(s.listing_id, s.step) for s in r.listings]


def _sanction_platforms(member: Member, gw: Gateway, uscc: str) -> list[str]:
    return sorted({s.platform for st in _check(member, gw, uscc).listings for s in st.sanctions})


def _http(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def _feed_synced(gw: Gateway) -> None:
    assert gw.public_feed is not None
    assert gw.public_feed.wait_for_size(gw.core.ledger.size, timeout_s=10)


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def test_minimum_period_after_a_correction(alliance: Alliance, database_url: str) -> None:
    m = alliance.members
    amr, shop_a, shop_b, ndrc = m["zj-amr"], m["shop-a"], m["shop-b"], m["ndrc"]
    start = utc(2026, 6, 1)
    clock = Clock(start)
    config = alliance.config(database_url, public_address="127.0.0.1:0")
    with gateway_at(config, clock, tuple(m.values())) as gw:
        # A company with stores on both platforms; both close them after the escalation.
        subject = Subject(
            uscc=USCC[0],
            name=NAME,
            stores=(StoreRef(shop_a.member_id, "a-1"), StoreRef(shop_b.member_id, "b-1")),
        )
        lid = send(amr, gw, listing(amr, subject=subject, listed_at=start))
        clock.set(utc(2026, 9, 2))
        gw.compliance.tick()  # escalated at the deadline (1 September)
        for shop in (shop_a, shop_b):
            send(shop, gw, sanction(shop, lid, SanctionAction.APPLIED, clock()))
        # Repaired early (1 October), long before the minimum of 6 months (1 December).
        clock.set(utc(2026, 10, 1))
        send(amr, gw, _correct(amr, lid, clock()))
        clock.set(utc(2026, 10, 2))
        send(shop_b, gw, sanction(shop_b, lid, SanctionAction.LIFTED, clock()))
        _feed_synced(gw)

        # Before the minimum: as before, for everyone.
        clock.set(utc(2026, 11, 30))
        for viewer in (shop_a, shop_b, amr, ndrc):
            assert _seen(viewer, gw, USCC[0]) == (False, [(lid, S.CORRECTED)])
            assert lid in _listed_ids(viewer, gw)
        assert _sanction_platforms(shop_b, gw, USCC[0]) == [shop_a.member_id, shop_b.member_id]
        status, body = _http(gw.public_port, f"/v1/entries/{lid}")
        assert status == 200
        assert body["entry"]["status"] == "removed" and body["entry"]["name"] == NAME

        # The minimum has run: shop-b (lifted everything) is no longer concerned.
        clock.set(add_months(start, 6))
        assert _seen(shop_b, gw, USCC[0]) == (False, [])
        assert lid not in _listed_ids(shop_b, gw)
        # shop-a still closes the store: it sees the listing, with its own sanction only.
        assert _seen(shop_a, gw, USCC[0]) == (False, [(lid, S.CORRECTED)])
        assert lid in _listed_ids(shop_a, gw)
        assert _sanction_platforms(shop_a, gw, USCC[0]) == [shop_a.member_id]
        # The authority and the monitor see the history.
        for viewer in (amr, ndrc):
            assert _seen(viewer, gw, USCC[0]) == (False, [(lid, S.CORRECTED)])
            assert _sanction_platforms(viewer, gw, USCC[0]) == [
                shop_a.member_id,
                shop_b.member_id,
            ]
        # Once shop-a lifts, it is not concerned either.
        send(shop_a, gw, sanction(shop_a, lid, SanctionAction.LIFTED, clock()))
        assert _seen(shop_a, gw, USCC[0]) == (False, [])
        assert _seen(amr, gw, USCC[0]) == (False, [(lid, S.CORRECTED)])

        # The public feed: no entry, no proof, no subject; a tombstone in the change feed.
        _feed_synced(gw)
        assert _http(gw.public_port, f"/v1/entries/{lid}")[0] == 404
        assert _http(gw.public_port, f"/v1/entries/{lid}/proof")[0] == 404
        status, page = _http(gw.public_port, "/v1/feed")
        assert status == 200
        (tomb,) = [e for e in page["entries"] if e["record_id"] == lid]
        assert tomb["status"] == "expired" and tomb["removal_step"] == "corrected"
        assert tomb["name"] == tomb["uscc"] == tomb["removal_reason"] == ""
        assert [e for e in _http(gw.public_port, "/v1/listings")[1]["entries"]] == []


def test_a_withdrawn_listing_is_hidden_at_once(alliance: Alliance, database_url: str) -> None:
    m = alliance.members
    amr, shop_b, ndrc = m["zj-amr"], m["shop-b"], m["ndrc"]
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(m.values())) as gw:
        lid = send(amr, gw, listing(amr, listed_at=clock()))
        clock.set(utc(2026, 6, 2))
        withdrawal = StatusChange(
            issuer=amr.member_id,
            listing_id=lid,
            step=S.WITHDRAWN,
            effective_at=clock(),
            decision_ref="ZJ-AMR-2026-W1",
            reason="listed in error",
        )
        send(amr, gw, withdrawal)
        assert _seen(shop_b, gw, USCC[0]) == (False, [])
        assert _seen(ndrc, gw, USCC[0]) == (False, [(lid, S.WITHDRAWN)])


def _retirements(gw: Gateway) -> list[tuple[str, StatusChange]]:
    store = gw.core.store
    out = []
    for record in store.records_range(0, store.log_size(), limit=100_000):
        stmt = codec.decode_statement(record.payload_type, record.payload, record.disclosures)
        if isinstance(stmt, StatusChange) and stmt.step is S.RETIRED:
            out.append((record.record_id, stmt))
    return out


@pytest.fixture
def regions(tmp_path: Path, database_url: str) -> Iterator[tuple[Gateway, Gateway, Clock, Any]]:
    zj = Alliance(tmp_path / "zj", "zj.alliance.test", region="330100")
    gd = Alliance(tmp_path / "gd", "gd.alliance.test", region="440300")
    members = {
        "zj-amr": zj.member("authority", "zj-amr", region="330000"),
        "zj-shop": zj.member("platform", "zj-shop"),
        "gd-shop": gd.member("platform", "gd-shop"),
        "gd-other": gd.member("platform", "gd-other"),
        "gd-amr": gd.member("authority", "gd-amr", region="440000"),
    }
    ports = {a.trust_domain: reserve_port() for a in (zj, gd)}
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
                peers=[b.peer_entry(ports[b.trust_domain])],
                public_address="127.0.0.1:0",
            )
            for name, a, b in (("zj", zj, gd), ("gd", gd, zj))
        ]
        a = stack.enter_context(
            gateway_at(configs[0], clock, (members["zj-amr"], members["zj-shop"]))
        )
        b = stack.enter_context(
            gateway_at(
                configs[1], clock, (members["gd-shop"], members["gd-other"], members["gd-amr"])
            )
        )
        yield a, b, clock, members


def test_retired_at_the_maximum_and_replicated(
    regions: tuple[Gateway, Gateway, Clock, dict[str, Member]],
) -> None:
    a, b, clock, m = regions
    zj_amr, gd_shop, gd_other, gd_amr = m["zj-amr"], m["gd-shop"], m["gd-other"], m["gd-amr"]
    # Zhejiang shortens the key-scrutiny periods to 1 and 2 months; the policy replicates
    # and Guangdong applies the issuing alliance's policy to Zhejiang's listings.
    _, policy = a.core.policy_admin.set(
        parse_policy(
            {
                "publication_periods": [
                    {"list": "KEY_SCRUTINY", "minimum_months": 1, "maximum_months": 2}
                ]
            }
        )
    )
    eventually(lambda: b.core.policies.current("zj.alliance.test") == policy, "GD holds it")
    start = clock()
    subject = Subject(uscc=USCC[1], name=NAME, stores=(StoreRef(gd_shop.member_id, "g-1"),))
    scrutiny = send(
        zj_amr,
        a,
        listing(
            zj_amr,
            subject=subject,
            list=ListKind.KEY_SCRUTINY,
            conduct=ConductType.FALSE_ADVERTISING_PENALTY,
            listed_at=start,
        ),
    )
    blacklist = send(zj_amr, a, listing(zj_amr, uscc=USCC[2], listed_at=start))
    eventually(lambda: b.core.store.record_by_id(blacklist) is not None, "GD holds them")
    applied = send(
        gd_shop,
        b,
        sanction(gd_shop, scrutiny, SanctionAction.APPLIED, start, SanctionMeasure.WARNING),
    )
    eventually(lambda: a.core.store.record_by_id(applied) is not None, "ZJ holds the warning")
    _feed_synced(a)
    assert _http(a.public_port, f"/v1/entries/{scrutiny}")[1]["entry"]["status"] == "in_force"

    # Just before the maximum nothing is retired; everyone sees the listing.
    end = add_months(start, 2)
    clock.set(utc(2026, 7, 31))
    a.compliance.tick()
    assert _retirements(a) == []
    assert _seen(gd_other, b, USCC[1]) == (True, [(scrutiny, S.LISTED)])

    # At the maximum: Zhejiang's gateway retires it, once; Guangdong's never signs one.
    clock.set(end)
    b.compliance.tick()
    assert _retirements(b) == []
    a.compliance.tick()
    a.compliance.tick()
    ((retired_id, retired),) = _retirements(a)
    assert retired.issuer == a.config.member_id and retired.listing_id == scrutiny
    assert retired.effective_at == end
    assert (retired.decision_ref, retired.reason) == (AUTO_RETIREMENT_REF, AUTO_RETIREMENT_REASON)
    # The blacklist listing's maximum (36 months) is far off, and its issuer may not
    # retire it itself: only the gateway does.
    assert a.compliance.compliance.listing(blacklist).in_force
    own = StatusChange(
        issuer=zj_amr.member_id, listing_id=blacklist, step=S.RETIRED, effective_at=clock()
    )
    with pytest.raises(grpc.RpcError) as err:
        send(zj_amr, a, own)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not record RETIRED" in (err.value.details() or "")

    # It replicates; both regions compute the same state.
    eventually(lambda: b.core.store.record_by_id(retired_id) is not None, "RETIRED replicates")
    b.compliance.tick()
    assert [r for r, _ in _retirements(b)] == [retired_id]
    za = a.compliance.compliance.listing(scrutiny).lifecycle
    zb = b.compliance.compliance.listing(scrutiny).lifecycle
    assert za == zb and za.closing is S.RETIRED and za.closed_at == end
    # Guangdong's platform that still warns owes the lift, and sees only what it needs.
    (owed,) = b.compliance.compliance.listing(scrutiny).obligations
    assert owed.platform == gd_shop.member_id and owed.measures
    assert _seen(gd_shop, b, USCC[1]) == (False, [(scrutiny, S.RETIRED)])
    assert _seen(gd_other, b, USCC[1]) == (False, [])
    assert scrutiny not in _listed_ids(gd_other, b)
    assert _seen(gd_amr, b, USCC[1]) == (False, [(scrutiny, S.RETIRED)])
    # The issuing region's feed turns the entry into a tombstone at the RETIRED index.
    _feed_synced(a)
    assert _http(a.public_port, f"/v1/entries/{scrutiny}")[0] == 404
    feed = _http(a.public_port, "/v1/feed")[1]["entries"]
    (tomb,) = [e for e in feed if e["record_id"] == scrutiny]
    assert tomb["status"] == "expired" and tomb["removal_record_id"] == retired_id
    assert tomb["removal_step"] == "retired" and tomb["name"] == ""
    # The monthly report counts the retirement in its month.
    reports = a.compliance.reports
    document = reports.compute(ReportMonth(2026, 8), None, reports.checkpoint())
    zj_unit = next(u for u in document["units"] if u["unit"] == "33")
    assert zj_unit["retired"] == 1 and document["totals"]["retired"] == 1
