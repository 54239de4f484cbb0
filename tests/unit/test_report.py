"""The monthly report computed from a known set of records, against hand counts."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.fold import ListState, VerifiedRecord
from gateway.core.report import (
    CITY_COUNTERS,
    DUE_PROCESS_COUNTERS,
    canonical_json,
    city_code,
    compute_month,
    compute_units,
    report_document,
    totals,
)
from gateway.core.statements import (
    AlliancePolicy,
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    MemberKey,
    MemberRecord,
    MemberStatus,
    MonthlyReport,
    Role,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.core.workdays import ReportMonth
from gateway.errors import RecordError

ZJ = "zj.alliance.test"
GW = f"spiffe://{ZJ}/gateway/gw"
AMR = f"spiffe://{ZJ}/authority/zj-amr"
SHOP_A = f"spiffe://{ZJ}/platform/shop-a"
SHOP_B = f"spiffe://{ZJ}/platform/shop-b"
SHOP_C = f"spiffe://{ZJ}/platform/shop-c"  # suspended before month end
SHOP_D = f"spiffe://{ZJ}/platform/shop-d"  # registered after month end
USCC = "91330100716105852F"
OCTOBER = ReportMonth(2026, 10)
GRACE = timedelta(days=7)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def rid(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


class Records:
    def __init__(self) -> None:
        self.items: list[VerifiedRecord] = []

    def add(self, name: str, statement: Statement) -> str:
        record_id = rid(name)
        self.items.append(VerifiedRecord(record_id, statement.issuer, statement))
        return record_id

    def listing(
        self,
        name: str,
        listed_at: datetime,
        *,
        region: str = "330100",
        kind: ListKind = ListKind.BLACKLIST,
        conduct: ConductType = ConductType.FAKE_TRANSACTIONS,
        stores: tuple[str, ...] = (),
        issuer: str = AMR,
    ) -> str:
        return self.add(
            name,
            Listing(
                issuer=issuer,
                subject=Subject(
                    uscc=USCC, stores=tuple(StoreRef(p, f"store-{name}") for p in stores)
                ),
                list=kind,
                conduct=conduct,
                region_code=region,
                decision_ref=f"ref-{name}",
                listed_at=listed_at,
            ),
        )

    def step(
        self, name: str, listing_id: str, step: LifecycleStep, at: datetime, issuer: str = AMR
    ) -> str:
        closing = step in (
            LifecycleStep.CORRECTED,
            LifecycleStep.REMOVED,
            LifecycleStep.UPHELD,
            LifecycleStep.WITHDRAWN,
        )
        disputed = step is LifecycleStep.DISPUTED
        return self.add(
            name,
            StatusChange(
                issuer=issuer,
                listing_id=listing_id,
                step=step,
                effective_at=at,
                decision_ref="decision" if closing else "",
                reason="reason" if closing or disputed else "",
                decided_by="Hangzhou Intermediate Court" if step is LifecycleStep.REMOVED else "",
                document_sha256=hashlib.sha256(b"evidence").digest() if disputed else b"",
            ),
        )

    def sanction(
        self,
        name: str,
        listing_id: str,
        platform: str,
        measure: SanctionMeasure,
        action: SanctionAction,
        at: datetime,
    ) -> str:
        return self.add(
            name,
            SanctionConfirmation(
                issuer=platform,
                listing_id=listing_id,
                measure=measure,
                action=action,
                effective_at=at,
            ),
        )

    def member(self, name: str, member_id: str, status: MemberStatus, issued_at: datetime) -> None:
        self.add(
            name,
            MemberRecord(
                issuer=GW,
                member_id=member_id,
                role=Role.PLATFORM,
                region_code="330100",
                keys=(MemberKey(public_key=bytes(32), not_before=utc(2026, 1, 1)),),
                status=status,
                issued_at=issued_at,
            ),
        )


def october_records() -> Records:
    r = Records()
    for name, shop in (("m-a", SHOP_A), ("m-b", SHOP_B), ("m-c", SHOP_C)):
        r.member(name, shop, MemberStatus.ACTIVE, utc(2026, 1, 2))
    r.member("m-c2", SHOP_C, MemberStatus.SUSPENDED, utc(2026, 10, 3))
    r.member("m-d", SHOP_D, MemberStatus.ACTIVE, utc(2026, 11, 5))

    # L1: listed at 00:00 on 1 October in Beijing, a notice served: new, in force.
    l1 = r.listing("L1", utc(2026, 9, 30, 16, 0))
    r.step("L1-notice", l1, LifecycleStep.NOTICE_SERVED, utc(2026, 10, 2))
    # L2: one minute before October in Beijing: not new in October.
    r.listing("L2", utc(2026, 9, 30, 15, 59), conduct=ConductType.COUNTERFEIT)
    # L3, L11: new in other units (Guangdong, the XPCC).
    r.listing(
        "L3",
        utc(2026, 10, 10),
        region="440300",
        kind=ListKind.KEY_SCRUTINY,
        conduct=ConductType.FALSE_ADVERTISING_PENALTY,
    )
    r.listing("L11", utc(2026, 10, 20), region="660000", conduct=ConductType.COUNTERFEIT)
    # L4: escalated in September; its store's platform applied a sanction then.
    l4 = r.listing("L4", utc(2026, 6, 15), stores=(SHOP_A,))
    r.step("L4-esc", l4, LifecycleStep.ESCALATED, utc(2026, 9, 15), issuer=GW)
    r.sanction(
        "L4-a", l4, SHOP_A, SanctionMeasure.CLOSE_STORE, SanctionAction.APPLIED, utc(2026, 9, 20)
    )
    # L5: escalated in October, no store: shop-a and shop-b owe (not suspended shop-c,
    # not shop-d registered after the month); only shop-a confirmed.
    l5 = r.listing("L5", utc(2026, 7, 10), conduct=ConductType.EMPTY_PARCEL)
    r.step("L5-esc", l5, LifecycleStep.ESCALATED, utc(2026, 10, 10), issuer=GW)
    r.sanction(
        "L5-a",
        l5,
        SHOP_A,
        SanctionMeasure.RESTRICT_NEW_ACCOUNTS,
        SanctionAction.APPLIED,
        utc(2026, 10, 12),
    )
    # L6: corrected in time in October; shop-b never lifted its earlier sanction.
    l6 = r.listing("L6", utc(2026, 7, 20), conduct=ConductType.IP_INFRINGEMENT)
    r.sanction(
        "L6-b",
        l6,
        SHOP_B,
        SanctionMeasure.LOWER_CREDIT_RATING,
        SanctionAction.APPLIED,
        utc(2026, 8, 1),
    )
    r.step("L6-fix", l6, LifecycleStep.CORRECTED, utc(2026, 10, 18))
    # L7: escalated in September, corrected late in October, sanction lifted.
    l7 = r.listing("L7", utc(2026, 6, 1), conduct=ConductType.JUDGMENT_DEFAULTER)
    r.step("L7-esc", l7, LifecycleStep.ESCALATED, utc(2026, 9, 1), issuer=GW)
    r.sanction(
        "L7-a", l7, SHOP_A, SanctionMeasure.CLOSE_STORE, SanctionAction.APPLIED, utc(2026, 9, 3)
    )
    r.step("L7-fix", l7, LifecycleStep.CORRECTED, utc(2026, 10, 5))
    r.sanction(
        "L7-a2", l7, SHOP_A, SanctionMeasure.CLOSE_STORE, SanctionAction.LIFTED, utc(2026, 10, 6)
    )
    # L8: removed by a court in October.
    l8 = r.listing("L8", utc(2026, 4, 1), conduct=ConductType.PERSONAL_INFORMATION_ABUSE)
    r.step("L8-rm", l8, LifecycleStep.REMOVED, utc(2026, 10, 20))
    # L9: corrected only in November: overdue at October's end, not corrected in October.
    l9 = r.listing("L9", utc(2026, 5, 1))
    r.step("L9-fix", l9, LifecycleStep.CORRECTED, utc(2026, 11, 3))
    # L10: listed after the month: not counted at all.
    r.listing("L10", utc(2026, 11, 2))
    # L12: listed 1 September in Beijing (deadline 30 Nov), corrected at 23:59 on 31
    # October in Beijing: in time, in October; a second correction in November changes
    # nothing.
    l12 = r.listing("L12", utc(2026, 8, 31, 16, 30))
    r.step("L12-fix", l12, LifecycleStep.CORRECTED, utc(2026, 10, 31, 15, 59))
    r.step("L12-fix2", l12, LifecycleStep.CORRECTED, utc(2026, 11, 2))
    # L13: escalated on 28 October: nobody confirmed, but the grace period runs into
    # November, so nothing is outstanding yet.
    l13 = r.listing("L13", utc(2026, 7, 28))
    r.step("L13-esc", l13, LifecycleStep.ESCALATED, utc(2026, 10, 28), issuer=GW)
    # Noise: a status change for a listing this log never saw.
    r.step("ghost", rid("nowhere"), LifecycleStep.CORRECTED, utc(2026, 10, 9))
    return r


ZERO: dict[str, Any] = {
    "new_listings": {},
    "new_listings_total": 0,
    "corrected_in_time": 0,
    "corrected_late": 0,
    "removed": 0,
    "withdrawn": 0,
    "escalated": 0,
    "overdue_at_month_end": 0,
    "in_force_at_month_end": 0,
    **dict.fromkeys(DUE_PROCESS_COUNTERS, 0),
    "retired": 0,
    "sanctions_applied": {},
    "sanctions_lifted": {},
    "outstanding_confirmations": 0,
    "outstanding_lifts": {},
    "outstanding_lifts_total": 0,
    "not_applicable_answers": 0,
    "government_measures": {},
    "government_measures_total": 0,
    "notices_served": 0,
    "commitments_signed": 0,
    "notices_late": 0,
    "by_city": {},
}
CITY_ZERO = dict.fromkeys(CITY_COUNTERS, 0)

EXPECTED = {
    "33": {
        **ZERO,
        "unit": "33",
        "name": "Zhejiang",
        "new_listings": {"BLACKLIST": {"FAKE_TRANSACTIONS": 1}},
        "new_listings_total": 1,
        "corrected_in_time": 2,  # L6, L12
        "corrected_late": 1,  # L7
        "removed": 1,  # L8
        "escalated": 2,  # L5, L13
        "overdue_at_month_end": 4,  # L4, L5, L9, L13
        "in_force_at_month_end": 6,  # L1, L2, L4, L5, L9, L13
        "sanctions_applied": {"RESTRICT_NEW_ACCOUNTS": {SHOP_A: 1}},
        "sanctions_lifted": {"CLOSE_STORE": {SHOP_A: 1}},
        "outstanding_confirmations": 1,  # L5: shop-b
        "outstanding_lifts": {"LOWER_CREDIT_RATING": 1},  # L6: shop-b
        "outstanding_lifts_total": 1,
        "notices_served": 1,  # L1
        "by_city": {
            "330100": {
                "new_listings_total": 1,
                "corrected_in_time": 2,
                "corrected_late": 1,
                "removed": 1,
                "withdrawn": 0,
                "escalated": 2,
                "overdue_at_month_end": 4,
                "in_force_at_month_end": 6,
            }
        },
    },
    "44": {
        **ZERO,
        "unit": "44",
        "name": "Guangdong",
        "new_listings": {"KEY_SCRUTINY": {"FALSE_ADVERTISING_PENALTY": 1}},
        "new_listings_total": 1,
        "in_force_at_month_end": 1,
        "by_city": {"440300": {**CITY_ZERO, "new_listings_total": 1, "in_force_at_month_end": 1}},
    },
    "66": {
        **ZERO,
        "unit": "66",
        "name": "Xinjiang Production and Construction Corps",
        "new_listings": {"BLACKLIST": {"COUNTERFEIT": 1}},
        "new_listings_total": 1,
        "in_force_at_month_end": 1,
        "by_city": {"660000": {**CITY_ZERO, "new_listings_total": 1, "in_force_at_month_end": 1}},
    },
}


def test_october_matches_hand_counts() -> None:
    units = compute_units(october_records().items, OCTOBER, grace=GRACE, trust_domain=ZJ)
    assert len(units) == 32
    for unit, report in units.items():
        expected = EXPECTED.get(unit)
        if expected is None:
            assert report.to_json() == {**ZERO, "unit": unit, "name": report.to_json()["name"]}
        else:
            assert report.to_json() == expected


def test_by_city_splits_a_unit_by_prefecture_code() -> None:
    r = october_records()
    r.listing("NB", utc(2026, 10, 3), region="330203")  # Ningbo, Haishu district
    r.listing("NB2", utc(2026, 10, 4), region="330200")
    r.listing("ZJ", utc(2026, 10, 5), region="330000")  # the province itself
    zj = compute_units(r.items, OCTOBER, grace=GRACE, trust_domain=ZJ)["33"].to_json()
    assert zj["new_listings_total"] == 4
    assert list(zj["by_city"]) == ["330000", "330100", "330200"]  # sorted codes
    assert zj["by_city"]["330200"] == {
        **CITY_ZERO,
        "new_listings_total": 2,
        "in_force_at_month_end": 2,
    }
    assert zj["by_city"]["330000"]["new_listings_total"] == 1
    # The cities add up to the unit.
    for name in CITY_COUNTERS:
        assert sum(c[name] for c in zj["by_city"].values()) == zj[name]
    assert city_code("659001") == "659000" and city_code("660000") == "660000"


def test_ledger_holds_the_months_listings_at_month_end() -> None:
    r = october_records()
    data = compute_month(r.items, OCTOBER, grace=GRACE, trust_domain=ZJ)
    names = {rid(n): n for n in (f"L{i}" for i in range(1, 14))}
    got = [names[e.listing_id] for e in data.ledger]
    # L2 (listed in September, nothing happened in October, not overdue) and L10
    # (listed in November) are not the month's; ordered by listing time.
    assert got == ["L8", "L9", "L7", "L4", "L5", "L6", "L13", "L12", "L1", "L3", "L11"]
    by_name = {names[e.listing_id]: e for e in data.ledger}
    l4 = by_name["L4"]
    assert l4.overdue and not l4.new_in_month and l4.step is LifecycleStep.ESCALATED
    assert l4.escalated_at == utc(2026, 9, 15)
    assert l4.measures == ((SHOP_A, SanctionMeasure.CLOSE_STORE, ""),)
    l7 = by_name["L7"]  # corrected late, its sanction lifted: nothing applied at month end
    assert (l7.step, l7.overdue, l7.measures) == (LifecycleStep.CORRECTED, False, ())
    assert l7.corrected_at == utc(2026, 10, 5)
    assert by_name["L6"].measures == ((SHOP_B, SanctionMeasure.LOWER_CREDIT_RATING, ""),)
    assert by_name["L1"].new_in_month and by_name["L1"].step is LifecycleStep.NOTICE_SERVED
    # L12's November correction is after the month: the first one counts.
    assert by_name["L12"].corrected_at == utc(2026, 10, 31, 15, 59)
    # One unit's ledger holds that unit's listings only.
    zj = compute_month(r.items, OCTOBER, grace=GRACE, trust_domain=ZJ, unit="44")
    assert [names[e.listing_id] for e in zj.ledger] == ["L3"]
    # Members as at month end: shop-d registered in November is not there yet.
    assert SHOP_D not in data.members and data.members[SHOP_C].status is MemberStatus.SUSPENDED


def test_order_and_duplicates_do_not_matter() -> None:
    items = october_records().items
    reference = {
        u: r.to_json()
        for u, r in compute_units(items, OCTOBER, grace=GRACE, trust_domain=ZJ).items()
    }
    rng = random.Random(2370)
    for _ in range(5):
        shuffled = items + rng.sample(items, 10)
        rng.shuffle(shuffled)
        got = {
            u: r.to_json()
            for u, r in compute_units(shuffled, OCTOBER, grace=GRACE, trust_domain=ZJ).items()
        }
        assert got == reference


def test_one_unit_scope() -> None:
    units = compute_units(october_records().items, OCTOBER, grace=GRACE, trust_domain=ZJ, unit="33")
    assert list(units) == ["33"]
    assert units["33"].to_json() == EXPECTED["33"]


def test_grace_period_moves_outstanding() -> None:
    # With 30 days' grace nothing escalated or corrected in October is outstanding yet.
    units = compute_units(
        october_records().items, OCTOBER, grace=timedelta(days=30), trust_domain=ZJ
    )
    assert units["33"].outstanding_confirmations == 0
    assert units["33"].outstanding_lifts == {}
    # With none, L13 (escalated 28 October, nobody confirmed) owes too: shop-a and shop-b.
    units = compute_units(october_records().items, OCTOBER, grace=timedelta(0), trust_domain=ZJ)
    assert units["33"].outstanding_confirmations == 3


def test_overdue_agrees_with_the_core_fold() -> None:
    end = OCTOBER.end
    state = ListState()
    for rec in october_records().items:
        stmt = rec.statement
        at = getattr(stmt, "effective_at", None) or getattr(stmt, "listed_at", None)
        if at is not None and at < end:
            state.apply(rec)
    views = [v for v in state.listings() if v.listing.region_code.startswith("33")]
    units = compute_units(october_records().items, OCTOBER, grace=GRACE, trust_domain=ZJ)
    assert units["33"].overdue_at_month_end == sum(v.overdue(end) for v in views)
    assert units["33"].in_force_at_month_end == sum(v.in_force for v in views)


def test_september_sees_none_of_october() -> None:
    units = compute_units(
        october_records().items, ReportMonth(2026, 9), grace=GRACE, trust_domain=ZJ
    )
    zj = units["33"].to_json()
    assert zj["escalated"] == 2  # L4 (15 Sep), L7 (1 Sep)
    assert zj["corrected_in_time"] == zj["corrected_late"] == zj["removed"] == 0
    # L2 (23:59 on 30 September in Beijing) and L12 (00:30 on 1 September in Beijing).
    assert zj["new_listings"] == {"BLACKLIST": {"COUNTERFEIT": 1, "FAKE_TRANSACTIONS": 1}}
    assert zj["sanctions_applied"] == {"CLOSE_STORE": {SHOP_A: 2}}  # L4, L7


def test_document_and_canonical_json() -> None:
    units = compute_units(october_records().items, OCTOBER, grace=GRACE, trust_domain=ZJ)
    doc = report_document(
        issuer=GW,
        log_origin=f"{ZJ}/alliance-log/v1",
        month=OCTOBER,
        unit=None,
        checkpoint_size=42,
        checkpoint_root=bytes(range(32)),
        units=units,
        grace_days=7,
        due_date=None,
        federation={"available": False, "note": "n/a"},
    )
    assert doc["period"] == {
        "start": "2026-10-01T00:00:00+08:00",
        "end": "2026-11-01T00:00:00+08:00",
        "time_zone": "Asia/Shanghai",
    }
    assert doc["totals"]["new_listings_total"] == 3
    assert doc["totals"]["overdue_at_month_end"] == 4
    assert doc["totals"]["sanctions_applied_by_measure"] == {"RESTRICT_NEW_ACCOUNTS": 1}
    assert doc["totals"] == totals(doc["units"])
    content = canonical_json(doc)
    assert json.loads(content) == doc
    assert content == canonical_json(json.loads(content))  # a fixed point
    assert b", " not in content and b": " not in content
    assert list(json.loads(content)) == sorted(doc)
    with pytest.raises(ValueError, match="floats"):
        canonical_json({"x": 1.5})
    report = MonthlyReport(
        issuer=GW,
        month="2026-10",
        unit="",
        checkpoint_size=42,
        checkpoint_root=bytes(range(32)),
        content=content,
    )
    assert report.content_type == "application/json"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("issuer", AMR, "gateway"),
        ("month", "2026-13", "calendar month"),
        ("month", "2026-1", "YYYY-MM"),
        ("unit", "99", "reporting unit"),
        ("unit", "330100", "reporting unit"),
        ("checkpoint_size", -1, "tree size"),
        ("checkpoint_root", b"short", "32 bytes"),
        ("content_type", "text/csv", "application/json"),
        ("content", b"", "empty"),
        ("content", b"[1,2]", "JSON object"),
        ("content", b"\xff", "UTF-8"),
    ],
)
def test_monthly_report_checks_itself(field: str, value: object, message: str) -> None:
    values: dict[str, Any] = {
        "issuer": GW,
        "month": "2026-10",
        "unit": "33",
        "checkpoint_size": 1,
        "checkpoint_root": bytes(32),
        "content": b"{}",
    }
    values[field] = value
    with pytest.raises(RecordError, match=message):
        MonthlyReport(**values)


def test_protocol_by_city_example() -> None:
    """docs/PROTOCOL.md §7.4's by_city example, recomputed."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text("utf-8")
    start = doc.index("Example by_city:")
    begin = doc.index("```json\n", start) + len("```json\n")
    block = doc[begin : doc.index("\n```", begin)]
    r = Records()
    r.listing("A", utc(2026, 10, 5), region="330106")
    r.listing("B", utc(2026, 7, 1), region="330203")
    c = r.listing("C", utc(2026, 7, 20), region="330203")
    r.step("C-fix", c, LifecycleStep.CORRECTED, utc(2026, 10, 18))
    r.listing("D", utc(2026, 10, 9), region="330000")
    unit = compute_units(r.items, OCTOBER, grace=GRACE, trust_domain=ZJ, unit="33")["33"].to_json()
    assert canonical_json(unit["by_city"]).decode() == block


def test_due_process_counters() -> None:
    """Identifications, disputes (opened, upheld, withdrawn, open, overdue), withdrawals
    counted as errors, and a correction in time that outruns an escalation counted once."""
    r = Records()
    S = LifecycleStep
    # P1: a platform's report of August, identified in October: counted once, runs its
    # deadline from then (so not overdue at month end).
    p1 = r.listing("P1", utc(2026, 8, 1), issuer=SHOP_A)
    r.step("P1-id", p1, S.IDENTIFIED, utc(2026, 10, 3))
    # P2: a platform's report never identified: no deadline, never overdue.
    r.listing("P2", utc(2026, 5, 1), issuer=SHOP_A)
    # A1: disputed and withdrawn in October: an error, not a repair.
    a1 = r.listing("A1", utc(2026, 9, 1))
    r.step("A1-d", a1, S.DISPUTED, utc(2026, 10, 2), issuer=SHOP_B)
    r.step("A1-w", a1, S.WITHDRAWN, utc(2026, 10, 9))
    # A2: disputed in September, upheld in October.
    a2 = r.listing("A2", utc(2026, 9, 2))
    r.step("A2-d", a2, S.DISPUTED, utc(2026, 9, 20))
    r.step("A2-u", a2, S.UPHELD, utc(2026, 10, 8))
    # A3: disputed on 1 September, still open: overdue (15 working days).
    a3 = r.listing("A3", utc(2026, 6, 20))
    r.step("A3-d", a3, S.DISPUTED, utc(2026, 9, 1))
    # A4: disputed on 29 October, open at month end, not overdue yet.
    a4 = r.listing("A4", utc(2026, 9, 10))
    r.step("A4-d", a4, S.DISPUTED, utc(2026, 10, 29))
    # A5: corrected a day before its deadline, but the gateway's escalation at the
    # deadline was recorded too (it arrived first): corrected in time, not escalated.
    a5 = r.listing("A5", utc(2026, 7, 15))
    deadline = utc(2026, 10, 15)
    r.step("A5-esc", a5, S.ESCALATED, deadline, issuer=GW)
    r.step("A5-fix", a5, S.CORRECTED, deadline - timedelta(days=1))
    units = compute_units(r.items, OCTOBER, grace=GRACE, trust_domain=ZJ, unit="33")
    zj = units["33"].to_json()
    assert zj["identified"] == 1
    assert zj["disputes_opened"] == 2  # A1, A4
    assert zj["disputes_upheld"] == 1  # A2
    assert zj["disputes_withdrawn"] == 1  # A1
    assert zj["disputes_open_at_month_end"] == 2  # A3, A4
    assert zj["disputes_overdue_at_month_end"] == 1  # A3
    assert zj["withdrawn"] == 1 and zj["removed"] == 0 and zj["corrected_late"] == 0
    assert zj["corrected_in_time"] == 1 and zj["escalated"] == 0  # A5, once
    # In force: P1, P2, A2, A3, A4; overdue: none (P1 runs from 3 October, P2 never,
    # A3's dispute stops its clock).
    assert zj["in_force_at_month_end"] == 5
    assert zj["overdue_at_month_end"] == 0
    doc_totals = totals([zj])
    assert doc_totals["disputes_overdue_at_month_end"] == 1 and doc_totals["identified"] == 1
    # The policy of the issuing alliance sets the dispute limit: 60 working days keeps
    # A3 within it.
    r.add(
        "policy",
        AlliancePolicy(issuer=GW, issued_at=utc(2026, 9, 1), dispute_decision_working_days=60),
    )
    relaxed = compute_units(r.items, OCTOBER, grace=GRACE, trust_domain=ZJ, unit="33")["33"]
    assert relaxed.disputes_overdue_at_month_end == 0
    # The order of the records changes nothing.
    shuffled = list(r.items)
    random.Random(16).shuffle(shuffled)
    again = compute_units(shuffled, OCTOBER, grace=GRACE, trust_domain=ZJ, unit="33")["33"]
    assert again.to_json() == relaxed.to_json()
