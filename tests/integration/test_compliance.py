"""Deadlines, escalation, sanction tracking and the monthly report against real gateways
(mTLS on port 0, real databases) driven by a controllable clock."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from gwtest import (
    USCC,
    Alliance,
    Member,
    audit,
    exchange,
    listing,
    pg_base_url,
    pg_schema_url,
    submit,
    zhejiang,
)

from gateway import codec
from gateway.core import dsse, merkle
from gateway.core.crypto import load_signing_key
from gateway.core.fold import ListState, VerifiedRecord
from gateway.core.intake import DOCUMENT_STEPS
from gateway.core.notes import NoteSigner, open_checkpoint
from gateway.core.possession import prove_possession
from gateway.core.report import compute_units, totals
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    ListKind,
    MonthlyReport,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.core.workdays import ReportMonth
from gateway.errors import ConfigError
from gateway.ops.app import Gateway
from gateway.ops.cli import main as cli_main
from gateway.ops.config import Config
from gateway.ops.report_render import MEDIA_TYPES
from gateway.ops.workcalendar import load_work_calendar
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import compliance_pb2 as co
from gateway.pb.alliance.v1 import compliance_pb2_grpc
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.escalation import AUTO_DECISION_REF, AUTO_REASON

WAIT_S = 20.0
MORE_USCC = (
    "9133010052601815XH",
    "91440300908301663N",
    "913302001318609160",
    "91440100390996033D",
    "913306000824628142",
    "91110100948219939K",
    "913310005181909371",
    "91440600786579754G",
)
OCTOBER = ReportMonth(2026, 10)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class Clock:
    """The gateways' clock, moved by the test (only forwards: keys are valid from the
    time a member was registered)."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            assert now >= self._now
            self._now = now


def eventually(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s}s: {what}")


@contextmanager
def gateway_at(config: Config, clock: Clock, register: Sequence[Member] = ()) -> Iterator[Gateway]:
    gateway = Gateway(config, clock=clock)
    for m in register:
        if gateway.core.directory.member(m.member_id) is None:
            gateway.core.members.add(
                m.member_id,
                m.region,
                m.signing_key.public_key().raw,
                possession=prove_possession(m.signing_key, m.member_id),
            )
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop(grace_s=1.0)


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def members(a: Alliance) -> tuple[Member, Member, Member, Member]:
    m = a.members
    return m["zj-amr"], m["shop-a"], m["shop-b"], m["ndrc"]


def step(
    issuer: Member, listing_id: str, s: LifecycleStep, at: datetime, **kw: str
) -> StatusChange:
    closing = s in (LifecycleStep.CORRECTED, LifecycleStep.REMOVED)
    values: dict[str, Any] = {
        "decision_ref": "ZJ-AMR-2026-D" if closing else "",
        "reason": "conduct corrected, commitment fulfilled" if closing else "",
        "decided_by": "Hangzhou Intermediate People's Court" if s is LifecycleStep.REMOVED else "",
    }
    values.update(kw)
    document = hashlib.sha256(b"document").digest() if s in DOCUMENT_STEPS else b""
    return StatusChange(
        issuer=issuer.member_id,
        listing_id=listing_id,
        step=s,
        effective_at=at,
        document_sha256=document,
        **values,
    )


def sanction(
    platform: Member,
    listing_id: str,
    action: SanctionAction,
    at: datetime,
    measure: SanctionMeasure = SanctionMeasure.CLOSE_STORE,
) -> SanctionConfirmation:
    return SanctionConfirmation(
        issuer=platform.member_id,
        listing_id=listing_id,
        measure=measure,
        action=action,
        effective_at=at,
    )


def send(member: Member, gw: Gateway, statement: Any) -> str:
    with member.channel(gw.port) as ch:
        record_id: str = submit(ch, member.sign(statement)).record_id
    return record_id


def escalations(gw: Gateway) -> list[tuple[int, str, StatusChange]]:
    """Every ESCALATED status change in the gateway's log."""
    store = gw.core.store
    out = []
    for record in store.records_range(0, store.log_size(), limit=100_000):
        statement = codec.decode_statement(record.payload_type, record.payload, record.disclosures)
        if isinstance(statement, StatusChange) and statement.step is LifecycleStep.ESCALATED:
            out.append((record.log_index, record.record_id, statement))
    return out


def step_of(member: Member, gw: Gateway, uscc: str) -> list[int]:
    with member.channel(gw.port) as ch:
        reply = exchange(ch).CheckSubjects(
            ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(Subject(uscc=uscc))]),
            timeout=10,
        )
    return [s.step for s in reply.results[0].listings]


def compliance(ch: grpc.Channel) -> compliance_pb2_grpc.ComplianceStub:
    return compliance_pb2_grpc.ComplianceStub(ch)


# --- escalation ------------------------------------------------------------------------


def test_escalation_at_the_deadline_exactly_once(alliance: Alliance, database_url: str) -> None:
    amr, _, _, _ = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        # Month-end and leap-year deadlines are in the unit tests; here 1 June -> 1 Sep.
        overdue = send(amr, gw, listing(amr, listed_at=utc(2026, 6, 1)))
        corrected = send(amr, gw, listing(amr, uscc=USCC[1], listed_at=utc(2026, 6, 1)))
        # Records are submitted when they take effect (not ahead of the gateway's clock).
        clock.set(utc(2026, 8, 20))
        send(amr, gw, step(amr, corrected, LifecycleStep.CORRECTED, utc(2026, 8, 20)))
        deadline = utc(2026, 9, 1)

        for now in (deadline - timedelta(seconds=1), deadline):
            clock.set(now)
            gw.compliance.tick()
            assert escalations(gw) == []
        clock.set(deadline + timedelta(seconds=1))
        gw.compliance.tick()
        gw.compliance.tick()
        ((index, record_id, change),) = escalations(gw)
        assert change.listing_id == overdue
        assert change.issuer == alliance.gateway_id
        assert change.effective_at == deadline
        assert (change.decision_ref, change.reason) == (AUTO_DECISION_REF, AUTO_REASON)
        assert step_of(amr, gw, USCC[0]) == [LifecycleStep.ESCALATED]
        assert step_of(amr, gw, USCC[1]) == [LifecycleStep.CORRECTED]
        clock.set(utc(2026, 9, 5))
        later = send(
            amr,
            gw,
            # A shorter signed deadline is allowed; this one is 1 December.
            listing(
                amr, uscc=USCC[2], listed_at=utc(2026, 9, 5), correction_deadline=utc(2026, 12, 1)
            ),
        )
        assert step_of(amr, gw, USCC[2]) == [LifecycleStep.LISTED]

        # Signing again gives the same record: ids do not depend on who signs when.
        stored = gw.core.store.record_by_id(overdue)
        assert stored is not None
        listing_stmt = codec.decode_statement(
            stored.payload_type, stored.payload, stored.disclosures
        )
        signed = gw.compliance.escalator.sign(overdue, listing_stmt, deadline)  # type: ignore[arg-type]
        assert signed.record_id == record_id

        # The ticker runs too; nothing more is ever signed for this listing: neither by
        # the ticker's rounds nor by more rounds driven here after it escalated.
        clock.set(utc(2026, 12, 1, 0, 0, 1))
        eventually(lambda: len(escalations(gw)) == 2, "the later listing escalates")
        for _ in range(3):
            assert gw.compliance.escalator.run(clock()) == []
        assert [e[2].listing_id for e in escalations(gw)] == [overdue, later]
        assert escalations(gw)[0][:2] == (index, record_id)

        gw.compliance.refresh_gauges()
        registry = gw.metrics.registry
        labels = {"list": "blacklist", "unit": "33"}
        assert registry.get_sample_value("alliance_compliance_escalated_listings", labels) == 2
        assert registry.get_sample_value("alliance_compliance_overdue_listings", labels) == 2
        assert (registry.get_sample_value("alliance_escalations_signed_total") or 0) >= 1
        due = load_work_calendar().due_by(ReportMonth(2026, 11))
        assert registry.get_sample_value("alliance_report_next_due_timestamp_seconds") == (
            due.timestamp()
        )


def test_restart_does_not_escalate_again(alliance: Alliance, database_url: str) -> None:
    amr, _, _, _ = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    config = alliance.config(database_url)
    with gateway_at(config, clock, tuple(alliance.members.values())) as gw:
        listing_id = send(amr, gw, listing(amr, listed_at=utc(2026, 6, 1)))
        clock.set(utc(2026, 9, 2))
        gw.compliance.tick()
        first = escalations(gw)
        assert [e[2].listing_id for e in first] == [listing_id]
    for _ in range(2):
        with gateway_at(config, clock) as gw:
            gw.compliance.tick()
            assert escalations(gw) == first


def test_two_replicas_on_one_postgresql_escalate_once(alliance: Alliance) -> None:
    base = pg_base_url()
    if base is None:
        pytest.skip("ALLIANCE_TEST_DATABASE_URL is not set: no shared PostgreSQL")
    amr, _, _, _ = members(alliance)
    clock = Clock(utc(2026, 6, 3))  # the listings below are dated up to 3 June
    with pg_schema_url(base) as url:
        config = alliance.config(url)
        with ExitStack() as stack:
            one = stack.enter_context(gateway_at(config, clock, tuple(alliance.members.values())))
            two = stack.enter_context(gateway_at(config, clock))
            ids = [
                send(amr, one, listing(amr, uscc=u, listed_at=utc(2026, 6, d)))
                for d, u in enumerate(USCC, start=1)
            ]
            # Both replicas' tickers run, and both are also driven at the same moment.
            clock.set(utc(2026, 9, 10))
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def run(gw: Gateway) -> None:
                try:
                    barrier.wait(timeout=10)
                    gw.compliance.escalator.run(clock())
                except BaseException as e:
                    errors.append(e)

            threads = [threading.Thread(target=run, args=(gw,)) for gw in (one, two)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert not errors
            for _ in range(2):  # more rounds on both, after both escalated at once
                assert one.compliance.escalator.run(clock()) == []
                assert two.compliance.escalator.run(clock()) == []
            found = escalations(one)
            assert sorted(e[2].listing_id for e in found) == sorted(ids)
            assert escalations(two) == found
        # A restart of either replica finds nothing more to do.
        with gateway_at(config, clock) as again:
            again.compliance.tick()
            assert escalations(again) == found


# --- lifecycle through the gRPC API ---------------------------------------------------


def test_lifecycle_steps_and_removal(alliance: Alliance, database_url: str) -> None:
    amr, shop_a, _, ndrc = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        a = send(amr, gw, listing(amr, listed_at=utc(2026, 6, 1)))
        b = send(amr, gw, listing(amr, uscc=USCC[1], listed_at=utc(2026, 6, 1)))
        for s, day in (
            (LifecycleStep.NOTICE_SERVED, 2),
            (LifecycleStep.COMMITMENT_SIGNED, 10),
            (LifecycleStep.CORRECTED, 20),
        ):
            clock.set(utc(2026, 6, day))  # each step is submitted when it takes effect
            send(amr, gw, step(amr, a, s, utc(2026, 6, day)))
            assert step_of(ndrc, gw, USCC[0]) == [s]
        # Only the issuer, an authority of the unit, or (escalating) the gateway may.
        with shop_a.channel(gw.port) as ch, pytest.raises(grpc.RpcError) as err:
            submit(ch, shop_a.sign(step(shop_a, b, LifecycleStep.CORRECTED, utc(2026, 6, 5))))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

        size = gw.core.store.log_size()
        clock.set(utc(2026, 7, 1))
        removed = send(amr, gw, step(amr, b, LifecycleStep.REMOVED, utc(2026, 7, 1)))
        with ndrc.channel(gw.port) as ch:
            reply = exchange(ch).CheckSubjects(
                ex.CheckSubjectsRequest(subjects=[codec.subject_to_pb(Subject(uscc=USCC[1]))]),
                timeout=10,
            )
            (state,) = reply.results[0].listings
            assert not reply.results[0].listed and not state.in_force
            assert state.step == int(LifecycleStep.REMOVED)
            # A removal is final: a later correction does not bring the listing back.
            clock.set(utc(2026, 8, 1))
            send(amr, gw, step(amr, b, LifecycleStep.CORRECTED, utc(2026, 8, 1)))
            assert step_of(ndrc, gw, USCC[1]) == [LifecycleStep.REMOVED]
            # Nothing is deleted from the log: the listing and every step stay readable.
            for record_id in (a, b, removed):
                entry = exchange(ch).GetRecord(ex.GetRecordRequest(record_id=record_id), timeout=5)
                assert entry.entry.record_id == record_id
            stored = gw.core.store.record_by_id(removed)
            assert stored is not None
            change = codec.decode_statement(stored.payload_type, stored.payload, stored.disclosures)
            assert isinstance(change, StatusChange)
            assert change.decided_by == "Hangzhou Intermediate People's Court"
            assert change.reason and change.decision_ref
        assert gw.core.store.log_size() == size + 2
        # Neither closed listing is ever escalated.
        clock.set(utc(2026, 12, 1))
        gw.compliance.tick()
        assert escalations(gw) == []


def test_deadline_rule_applies_to_submitted_listings(alliance: Alliance, database_url: str) -> None:
    amr, _, _, _ = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    config = alliance.config(database_url, deadline_rules="KEY_SCRUTINY=6")
    with gateway_at(config, clock, tuple(alliance.members.values())) as gw:
        listed = utc(2026, 5, 31)
        with amr.channel(gw.port) as ch:
            too_long = listing(amr, listed_at=listed, correction_deadline=utc(2026, 9, 1))
            with pytest.raises(grpc.RpcError) as err:
                submit(ch, amr.sign(too_long))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "correction_deadline" in (err.value.details() or "")
            submit(
                ch, amr.sign(listing(amr, listed_at=listed, correction_deadline=utc(2026, 8, 31)))
            )
            scrutiny = listing(
                amr,
                uscc=USCC[1],
                list=ListKind.KEY_SCRUTINY,
                conduct=ConductType.CONTRACT_BREACH_PENALTY,
                listed_at=listed,
                correction_deadline=utc(2026, 11, 30),
            )
            submit(ch, amr.sign(scrutiny))


# --- sanction tracking ------------------------------------------------------------------


def test_outstanding_sanctions_and_lifts(alliance: Alliance, database_url: str) -> None:
    amr, shop_a, shop_b, ndrc = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    config = alliance.config(database_url, sanction_grace_days=7)
    with gateway_at(config, clock, tuple(alliance.members.values())) as gw:
        stores = Subject(uscc=USCC[0], stores=(StoreRef(shop_a.member_id, "a-123"),))
        with_store = send(amr, gw, listing(amr, subject=stores, listed_at=utc(2026, 6, 1)))
        no_store = send(amr, gw, listing(amr, uscc=USCC[1], listed_at=utc(2026, 6, 1)))
        deadline = utc(2026, 9, 1)

        def state(listing_id: str) -> co.ListingCompliance:
            with ndrc.channel(gw.port) as ch:
                reply: co.ListingCompliance = compliance(ch).GetCompliance(
                    co.GetComplianceRequest(listing_id=listing_id), timeout=10
                )
            return reply

        def owed(listing_id: str) -> list[tuple[str, int, int]]:
            return [(o.platform, o.kind, o.state) for o in state(listing_id).obligations]

        def outstanding(**kw: Any) -> list[str]:
            with shop_b.channel(gw.port) as ch:
                reply = compliance(ch).ListOutstanding(co.ListOutstandingRequest(**kw), timeout=10)
            return [c.listing_id for c in reply.listings]

        assert owed(with_store) == []  # listed, not escalated: nothing owed yet
        clock.set(deadline + timedelta(days=1))
        gw.compliance.tick()
        s = state(with_store)
        assert s.step == int(LifecycleStep.ESCALATED) and s.overdue and s.platforms_from_stores
        assert codec.timestamp_from_pb(s.escalated_at) == deadline
        APPLY, LIFT = co.OBLIGATION_KIND_APPLY, co.OBLIGATION_KIND_LIFT
        PENDING, OUT, DONE = (
            co.OBLIGATION_STATE_PENDING,
            co.OBLIGATION_STATE_OUTSTANDING,
            co.OBLIGATION_STATE_SATISFIED,
        )
        assert owed(with_store) == [(shop_a.member_id, APPLY, PENDING)]
        # No store named: every active platform owes a sanction.
        assert not state(no_store).platforms_from_stores
        assert owed(no_store) == [
            (shop_a.member_id, APPLY, PENDING),
            (shop_b.member_id, APPLY, PENDING),
        ]
        assert outstanding() == []

        clock.set(deadline + timedelta(days=7, seconds=1))  # the grace period is over
        assert owed(with_store) == [(shop_a.member_id, APPLY, OUT)]
        assert outstanding() == [with_store, no_store]
        assert outstanding(region_prefix="44") == []
        with shop_a.channel(gw.port) as ch:
            page = compliance(ch).ListOutstanding(
                co.ListOutstandingRequest(page_size=1), timeout=10
            )
            assert [c.listing_id for c in page.listings] == [with_store]
            rest = compliance(ch).ListOutstanding(
                co.ListOutstandingRequest(page_size=1, page_token=page.next_page_token), timeout=10
            )
            assert [c.listing_id for c in rest.listings] == [no_store] and not rest.next_page_token

        clock.set(deadline + timedelta(days=8))  # confirmed when applied
        send(
            shop_a,
            gw,
            sanction(shop_a, with_store, SanctionAction.APPLIED, deadline + timedelta(days=8)),
        )
        send(
            shop_a,
            gw,
            sanction(
                shop_a,
                no_store,
                SanctionAction.APPLIED,
                deadline + timedelta(days=8),
                SanctionMeasure.RESTRICT_NEW_ACCOUNTS,
            ),
        )
        (done,) = state(with_store).obligations
        assert done.state == DONE
        assert [(int(m.measure), m.measure_other) for m in done.measures] == [
            (int(SanctionMeasure.CLOSE_STORE), "")
        ]
        assert owed(no_store) == [(shop_a.member_id, APPLY, DONE), (shop_b.member_id, APPLY, OUT)]
        assert outstanding() == [no_store]

        # Corrected: the platform that applied a measure must confirm lifting it.
        corrected_at = deadline + timedelta(days=10)
        clock.set(corrected_at)
        send(amr, gw, step(amr, with_store, LifecycleStep.CORRECTED, corrected_at))
        s = state(with_store)
        assert not s.in_force and codec.timestamp_from_pb(s.closed_at) == corrected_at
        assert owed(with_store) == [(shop_a.member_id, LIFT, PENDING)]
        clock.set(corrected_at + timedelta(days=8))
        assert owed(with_store) == [(shop_a.member_id, LIFT, OUT)]
        assert outstanding(kind=LIFT) == [with_store]
        assert outstanding(kind=APPLY) == [no_store]
        gw.compliance.refresh_gauges()
        registry = gw.metrics.registry
        assert (
            registry.get_sample_value(
                "alliance_compliance_outstanding_sanctions",
                {"kind": "lift", "measure": "close_store"},
            )
            == 1
        )
        assert (
            registry.get_sample_value(
                "alliance_compliance_outstanding_sanctions", {"kind": "apply", "measure": "any"}
            )
            == 1
        )
        clock.set(corrected_at + timedelta(days=9))
        send(
            shop_a,
            gw,
            sanction(shop_a, with_store, SanctionAction.LIFTED, corrected_at + timedelta(days=9)),
        )
        assert owed(with_store) == [(shop_a.member_id, LIFT, DONE)]
        assert outstanding(kind=LIFT) == []

        with ndrc.channel(gw.port) as ch:
            for bad, code in (
                ("ab" * 32, grpc.StatusCode.NOT_FOUND),
                ("nope", grpc.StatusCode.INVALID_ARGUMENT),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    compliance(ch).GetCompliance(co.GetComplianceRequest(listing_id=bad), timeout=5)
                assert err.value.code() == code
            with pytest.raises(grpc.RpcError) as err:
                compliance(ch).ListOutstanding(co.ListOutstandingRequest(page_token="x"), timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- the monthly report ----------------------------------------------------------------


def test_report_is_signed_appended_and_recomputed_by_replay(
    alliance: Alliance, database_url: str
) -> None:
    amr, shop_a, shop_b, ndrc = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        usccs = iter(MORE_USCC)

        def add(listed: datetime, by: Member = amr, **kw: Any) -> str:
            subject = kw.pop("subject", None) or Subject(uscc=next(usccs))
            clock.set(listed)  # submitted when listed, in time order
            return send(by, gw, listing(by, subject=subject, listed_at=listed, **kw))

        def change(listing_id: str, s: LifecycleStep, at: datetime) -> None:
            clock.set(at)
            send(amr, gw, step(amr, listing_id, s, at))

        with_store = add(
            utc(2026, 7, 1),
            subject=Subject(uscc=next(usccs), stores=(StoreRef(shop_a.member_id, "a-9"),)),
        )  # deadline 1 October
        late = add(utc(2026, 7, 5))  # deadline 5 October
        in_time = add(utc(2026, 7, 10))  # deadline 10 October
        nobody = add(utc(2026, 7, 15))  # deadline 15 October: nobody confirms
        removed = add(utc(2026, 7, 20))  # deadline 20 October: removed before it
        change(in_time, LifecycleStep.CORRECTED, utc(2026, 10, 8))
        add(utc(2026, 10, 12))  # new in October
        # A Guangdong seller: the Zhejiang authority may not list it; a platform reports it.
        add(
            utc(2026, 10, 13),
            by=shop_b,
            region_code="440300",
            list=ListKind.KEY_SCRUTINY,
            conduct=ConductType.FALSE_ADVERTISING_PENALTY,
        )
        change(removed, LifecycleStep.REMOVED, utc(2026, 10, 15))

        clock.set(utc(2026, 11, 5))
        gw.compliance.tick()
        assert sorted(e[2].listing_id for e in escalations(gw)) == sorted(
            [late, with_store, nobody]
        )
        send(amr, gw, step(amr, late, LifecycleStep.CORRECTED, utc(2026, 10, 20)))
        send(shop_a, gw, sanction(shop_a, with_store, SanctionAction.APPLIED, utc(2026, 10, 3)))

        generated = gw.compliance.reports.generate(OCTOBER)
        report = generated.statement
        assert report.checkpoint_size <= generated.log_index
        content = json.loads(report.content)
        assert content == generated.document
        zj = next(u for u in content["units"] if u["unit"] == "33")
        gd = next(u for u in content["units"] if u["unit"] == "44")
        assert zj["new_listings"] == {"BLACKLIST": {"FAKE_TRANSACTIONS": 1}}
        assert (zj["corrected_in_time"], zj["corrected_late"], zj["removed"]) == (1, 1, 1)
        assert zj["escalated"] == 3
        assert zj["overdue_at_month_end"] == 2  # with_store, nobody
        assert zj["in_force_at_month_end"] == 3  # + the new one
        assert zj["sanctions_applied"] == {"CLOSE_STORE": {shop_a.member_id: 1}}
        assert zj["outstanding_confirmations"] == 2  # nobody: shop-a and shop-b
        assert gd["new_listings"] == {"KEY_SCRUTINY": {"FALSE_ADVERTISING_PENALTY": 1}}
        assert content["due_date"] == "2026-11-13"
        assert content["federation"]["available"] is True and content["federation"]["peers"] == []

        # A monitor recomputes it from the log alone.
        gateway_key = load_signing_key(alliance.gw_dir / "signing-key.pem").public_key()
        verifier = NoteSigner(
            f"{alliance.trust_domain}/alliance-log/v1",
            load_signing_key(alliance.gw_dir / "signing-key.pem"),
        ).verifier()
        with ndrc.channel(gw.port) as ch:
            got = exchange(ch).GetRecord(
                ex.GetRecordRequest(record_id=generated.record_id), timeout=5
            )
            env = codec.envelope_from_pb(got.entry.envelope)
            assert dsse.verify(env, [gateway_key]) == gateway_key
            signed = codec.decode_statement(env.payload_type, env.payload, env.disclosures)
            assert isinstance(signed, MonthlyReport) and signed == report
            size = signed.checkpoint_size
            entries = list(
                audit(ch).GetEntries(au.GetEntriesRequest(start=0, end=size), timeout=30)
            )
            newest = open_checkpoint(
                audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=5).note, verifier
            )
            proof = audit(ch).GetConsistencyProof(
                au.GetConsistencyProofRequest(first_size=size, second_size=newest.size), timeout=5
            )
        envelopes = [codec.envelope_from_pb(e.envelope) for e in entries]
        assert [e.log_index for e in entries] == list(range(size))
        leaves = [merkle.leaf_hash(dsse.pae(e.payload_type, e.payload)) for e in envelopes]
        rng = merkle.CompactRange()
        rng.extend(leaves)
        assert rng.root() == signed.checkpoint_root
        merkle.verify_consistency(
            size, newest.size, rng.root(), newest.root_hash, list(proof.hashes)
        )

        records = [
            VerifiedRecord(
                e.record_id, "", codec.decode_statement(e.payload_type, e.payload, e.disclosures)
            )
            for e in envelopes
        ]
        units = compute_units(
            records,
            OCTOBER,
            grace=timedelta(days=7),
            trust_domain=alliance.trust_domain,
            calendar=load_work_calendar(gw.config.calendar_dir),
        )
        replayed = [units[u].to_json() for u in sorted(units)]
        published = json.loads(signed.content)
        assert replayed == published["units"]
        assert totals(replayed) == published["totals"]

        # The core fold over the same entries agrees on who was overdue at month end.
        state = ListState()
        end = OCTOBER.end
        for rec in records:
            at = getattr(rec.statement, "effective_at", None) or getattr(
                rec.statement, "listed_at", None
            )
            if at is None or at < end:
                state.apply(rec)
        assert published["totals"]["overdue_at_month_end"] == sum(
            v.overdue(end) for v in state.listings()
        )

        # The schedule lists the report.
        with shop_b.channel(gw.port) as ch:
            schedule = compliance(ch).GetReportSchedule(co.GetReportScheduleRequest(), timeout=5)
            assert (schedule.month, schedule.due_date) == ("2026-10", "2026-11-13")
            assert [r.record_id for r in schedule.reports] == [generated.record_id]
            # December's report is due in January 2027, a year the calendar lacks.
            with pytest.raises(grpc.RpcError) as err:
                compliance(ch).GetReportSchedule(
                    co.GetReportScheduleRequest(month="2026-12"), timeout=5
                )
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "2027" in (err.value.details() or "")


def _write_config(path: Path, config: Config) -> None:
    lines = []
    for key in (
        "trust_domain",
        "gateway_name",
        "region_code",
        "ca_file",
        "cert_file",
        "key_file",
        "signing_key_file",
        "database_url",
        "listen_address",
        "metrics_address",
    ):
        lines.append(f"{key} = {json.dumps(str(getattr(config, key)))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_report_command(
    alliance: Alliance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    amr, _, _, _ = members(alliance)
    config = alliance.config(f"sqlite:///{tmp_path / 'gw.db'}")
    clock = Clock(utc(2026, 10, 9))
    with gateway_at(config, clock, tuple(alliance.members.values())) as gw:
        send(amr, gw, listing(amr, listed_at=utc(2026, 10, 9)))
    path = tmp_path / "gateway.toml"
    _write_config(path, config)
    out = tmp_path / "out"
    base = ["report", "--config", str(path), "--month", "2026-10", "--region", "330100"]

    def signed() -> list[MonthlyReport]:
        from gateway.ops.app import Core

        core = Core(config)
        try:
            found = []
            for r in core.store.records_range(0, core.store.log_size()):
                statement = codec.decode_statement(r.payload_type, r.payload, r.disclosures)
                if isinstance(statement, MonthlyReport):
                    found.append(statement)
            return found
        finally:
            core.close()

    # A final report needs the working group's narrative: refused before anything is
    # signed, and so is a narrative for another month.
    assert cli_main([*base, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "narrative" in err and "--narrative-template" in err and "--draft" in err
    narrative = tmp_path / "narrative.toml"
    assert cli_main([*base, "--narrative-template"]) == 0
    template = capsys.readouterr().out
    assert 'month = "2026-10"' in template and 'scope = "33"' in template
    narrative.write_text(template, encoding="utf-8")
    assert cli_main([*base, "--narrative", str(narrative)]) == 2
    assert "placeholder" in capsys.readouterr().err
    written = (
        template.replace("（在此填写经验做法）", "每周调度。")
        .replace("（在此填写存在的问题）", "确认不及时。")
        .replace(
            "（在此填写报送单位，如：浙江省电子商务领域失信问题专项治理工作组）", "浙江省工作组"
        )
    )
    narrative.write_text(written.replace('"2026-10"', '"2026-09"'), encoding="utf-8")
    assert cli_main([*base, "--narrative", str(narrative)]) == 2
    assert "for month '2026-09'" in capsys.readouterr().err
    assert cli_main([*base, "--lang", "fr", "--draft"]) == 2
    assert "no report catalog" in capsys.readouterr().err
    assert signed() == [] and not out.exists()

    # A draft writes the files, signs and appends nothing.
    assert cli_main([*base, "--draft", "--out", str(out), "--format", "json,html"]) == 0
    assert "未签名" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "report-2026-10-33-draft.html",
        "report-2026-10-33-draft.json",
    ]
    assert "草稿" in (out / "report-2026-10-33-draft.html").read_text(encoding="utf-8")
    assert signed() == []

    narrative.write_text(written, encoding="utf-8")
    final = tmp_path / "final"
    assert cli_main([*base, "--narrative", str(narrative), "--out", str(final)]) == 0
    printed = capsys.readouterr().out
    assert "月报 2026-10（33），检查点" in printed and "报送截止日 2026年11月13日" in printed
    files = sorted(p.name for p in final.iterdir())
    assert files == [
        "report-2026-10-33-cities.csv",
        "report-2026-10-33-sanctions.csv",
        "report-2026-10-33.csv",
        "report-2026-10-33.docx",
        "report-2026-10-33.html",
        "report-2026-10-33.json",
        "report-2026-10-33.pdf",
    ]
    for name in files:
        digest = hashlib.sha256((final / name).read_bytes()).hexdigest()
        assert f"{final / name} sha256 {digest}" in printed
    document = json.loads((final / "report-2026-10-33.json").read_bytes())
    assert document["scope"] == "33" and [u["unit"] for u in document["units"]] == ["33"]
    assert document["units"][0]["new_listings_total"] == 1
    csv_lines = (final / "report-2026-10-33.csv").read_text(encoding="utf-8-sig").splitlines()
    assert csv_lines[0].startswith("月份,单位代码,报送单位,新增列入")
    assert csv_lines[1].startswith("2026-10,33,浙江省,1,")

    # The record in the log holds exactly the bytes written to the JSON file.
    assert [r.content for r in signed()] == [(final / "report-2026-10-33.json").read_bytes()]

    # ... and names every file written by its name, media type and SHA-256, so a copy
    # can be checked against the log; a changed copy is not logged.
    (report,) = signed()
    assert [(f.name, f.media_type) for f in sorted(report.files, key=lambda f: f.name)] == [
        ("report-2026-10-33-cities.csv", "text/csv"),
        ("report-2026-10-33-sanctions.csv", "text/csv"),
        ("report-2026-10-33.csv", "text/csv"),
        ("report-2026-10-33.docx", MEDIA_TYPES[".docx"]),
        ("report-2026-10-33.html", "text/html"),
        ("report-2026-10-33.json", "application/json"),
        ("report-2026-10-33.pdf", "application/pdf"),
    ]
    for f in report.files:
        assert f.sha256 == hashlib.sha256((final / f.name).read_bytes()).digest(), f.name
    pdf = final / "report-2026-10-33.pdf"
    verify = ["report", "--config", str(path), "--verify"]
    assert cli_main([*verify, str(pdf), "--verify", str(final / "report-2026-10-33.docx")]) == 0
    shown = capsys.readouterr().out
    assert f"{pdf}：已登记，为 2026-10 月报（33）的文件 report-2026-10-33.pdf" in shown
    assert "report-2026-10-33.docx（application/vnd.openxmlformats" in shown
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(pdf.read_bytes() + b"\n")
    assert cli_main([*verify, str(changed), "--lang", "en"]) == 1
    digest = hashlib.sha256(changed.read_bytes()).hexdigest()
    assert f"{changed}: NOT logged: no signed report names a file with SHA-256 {digest}" in (
        capsys.readouterr().out
    )
    assert cli_main([*verify, str(tmp_path / "missing.pdf")]) == 2
    assert "cannot read" in capsys.readouterr().err

    # English on request.
    english = tmp_path / "english"
    args = [*base, "--narrative", str(narrative), "--out", str(english), "--format", "csv"]
    assert cli_main([*args, "--lang", "en"]) == 0
    assert "report 2026-10 (33) at checkpoint" in capsys.readouterr().out
    header = (english / "report-2026-10-33.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.startswith("Month,Unit code,Reporting unit,New listings")

    assert cli_main(["report", "--config", str(path), "--month", "2099-01", "--draft"]) == 2
    assert "has not ended" in capsys.readouterr().err
    assert cli_main([*base, "--draft", "--format", "xlsx"]) == 2
    assert cli_main(["report", "--config", str(path), "--month", "2026-10", "--region", "99"]) == 2

    code = cli_main(["report", "--config", str(path), "--next-due"])
    printed, err = capsys.readouterr()
    calendar = load_work_calendar()
    try:
        month = calendar.next_due(datetime.now(UTC))
        due = calendar.due_date(month)
        expected = (
            f"下一期月报：{month.year}年{month.month}月，"
            f"报送截止日 {due.year}年{due.month}月{due.day}日"
        )
    except ConfigError:  # run in a year the shipped calendars do not cover
        assert code == 2 and "no holiday schedule" in err
    else:
        assert code == 0 and expected in printed, err


# --- two federated regions ----------------------------------------------------------------


def reserve_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_sanctions_across_two_federated_regions(tmp_path: Path, database_url: str) -> None:
    zj = Alliance(tmp_path / "zj", "zj.alliance.test", region="330100")
    gd = Alliance(tmp_path / "gd", "gd.alliance.test", region="440300")
    zj_amr = zj.member("authority", "zj-amr", region="330000")
    zj_shop = zj.member("platform", "zj-shop")
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

    def url(name: str) -> str:
        if database_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / name}.db"
        return database_url if name == "zj" else ""

    clock = Clock(utc(2026, 6, 1))
    with ExitStack() as stack:
        gd_url = url("gd") or stack.enter_context(pg_schema_url(pg_base_url() or ""))
        configs = [
            a.config(
                u,
                listen_address=f"127.0.0.1:{ports[a.trust_domain]}",
                federation_backoff_initial_s=0.1,
                federation_backoff_max_s=0.5,
                peers=[peer(b)],
            )
            for a, b, u in ((zj, gd, url("zj")), (gd, zj, gd_url))
        ]
        a = stack.enter_context(gateway_at(configs[0], clock, (zj_amr, zj_shop)))
        b = stack.enter_context(gateway_at(configs[1], clock, (gd_shop,)))
        # A Zhejiang listing names the seller's store on a Guangdong platform.
        subject = Subject(uscc=USCC[0], stores=(StoreRef(gd_shop.member_id, "gd-77"),))
        listing_id = send(zj_amr, a, listing(zj_amr, subject=subject, listed_at=utc(2026, 6, 1)))
        eventually(
            lambda: b.core.store.record_by_id(listing_id) is not None, "GD holds the listing"
        )

        clock.set(utc(2026, 9, 2))
        b.compliance.tick()  # GD may not escalate a ZJ listing, and does not try
        assert escalations(b) == []
        a.compliance.tick()
        ((_, escalation_id, _),) = escalations(a)
        eventually(
            lambda: b.core.store.record_by_id(escalation_id) is not None,
            "the escalation replicates",
        )
        b.compliance.tick()
        assert [e[1] for e in escalations(b)] == [escalation_id]

        def obligations(gw: Gateway, member: Member) -> list[tuple[str, int]]:
            with member.channel(gw.port) as ch:
                reply = compliance(ch).GetCompliance(
                    co.GetComplianceRequest(listing_id=listing_id), timeout=10
                )
            return [(o.platform, o.state) for o in reply.obligations]

        clock.set(utc(2026, 9, 9))
        # Each gateway tracks its own platforms: the Guangdong platform owes Guangdong's
        # gateway, and Zhejiang's lists no other alliance's platform as owing it.
        assert obligations(b, gd_shop) == [(gd_shop.member_id, co.OBLIGATION_STATE_OUTSTANDING)]
        assert obligations(a, zj_shop) == []
        # The Guangdong platform confirms at its own gateway; it replicates to Zhejiang.
        confirmed = send(
            gd_shop, b, sanction(gd_shop, listing_id, SanctionAction.APPLIED, utc(2026, 9, 8))
        )
        assert obligations(b, gd_shop) == [(gd_shop.member_id, co.OBLIGATION_STATE_SATISFIED)]
        eventually(
            lambda: a.core.store.record_by_id(confirmed) is not None,
            "the confirmation replicates",
        )
        assert obligations(a, zj_shop) == []


# --- the member's CLI ---------------------------------------------------------------------


def test_compliance_commands(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from test_client import write_profile

    from clients.compliance_cli import add_subparsers

    amr, shop_a, shop_b, ndrc = members(alliance)
    clock = Clock(utc(2026, 6, 1))
    with gateway_at(alliance.config(database_url), clock, tuple(alliance.members.values())) as gw:
        listing_id = send(amr, gw, listing(amr, listed_at=utc(2026, 6, 1)))
        clock.set(utc(2026, 9, 20))
        gw.compliance.tick()
        send(shop_a, gw, sanction(shop_a, listing_id, SanctionAction.APPLIED, utc(2026, 9, 3)))
        profile = write_profile(alliance, shop_b, f"127.0.0.1:{gw.port}", gw.config.log_origin)
        parser = argparse.ArgumentParser()
        parser.add_argument("--profile", type=Path)
        parser.add_argument("--timeout", type=float, default=10.0)
        add_subparsers(parser.add_subparsers(dest="command", required=True))

        def run(*argv: str) -> str:
            args = parser.parse_args(["--profile", str(profile), *argv])
            assert args.handler(args) == 0
            return capsys.readouterr().out

        shown = run("compliance", "show", listing_id)
        assert "escalated, in force, overdue, deadline 2026-09-01" in shown
        assert f"{shop_a.member_id}  apply  satisfied" in shown
        # Due times in Beijing time with the offset (00:00 UTC is 08:00 in Beijing).
        assert f"{shop_b.member_id}  apply  outstanding  2026-09-08 08:00 +08:00  -" in shown
        as_json = json.loads(run("compliance", "show", listing_id, "--json"))
        assert as_json["escalated_at"] == "2026-09-01T00:00:00+00:00"
        assert [o["measures"] for o in as_json["obligations"]] == [["close-store"], []]
        table = run("compliance", "outstanding", "--region", "33")
        assert shop_b.member_id in table and shop_a.member_id not in table
        assert run("compliance", "outstanding", "--kind", "lift") == "nothing outstanding\n"
        lines = run("compliance", "outstanding", "--json").splitlines()
        assert [json.loads(line)["listing_id"] for line in lines] == [listing_id]
        schedule = run("compliance", "schedule", "--month", "2026-10")
        assert schedule.startswith("report 2026-10: due 2026-11-13")
        assert "(late from 2026-11-14 00:00 +08:00)" in schedule
        assert "no report signed yet" in schedule

        # A monitor's own tooling replays a log holding the gateway's escalation and
        # monthly report (signed with the gateway's key, as a member of its directory).
        clock.set(utc(2026, 11, 2))
        generated = gw.compliance.reports.generate(OCTOBER)
        assert generated.log_index + 1 == gw.core.store.log_size()
        assert generated.record_id in run("compliance", "schedule", "--month", "2026-10")
        from clients.cli import main as alliance_main

        monitor = write_profile(alliance, ndrc, f"127.0.0.1:{gw.port}", gw.config.log_origin)
        size = gw.core.store.log_size()

        def covered() -> bool:
            latest = gw.core.store.latest_checkpoint()
            return latest is not None and latest.tree_size >= size

        eventually(covered, "a checkpoint covers the report")
        for command in ("verify", "replay"):
            code = alliance_main(["--profile", str(monitor), "audit", command])
            out, err = capsys.readouterr()
            assert code == 0, err
        assert "monthly-report" in out and "status-change" in out
