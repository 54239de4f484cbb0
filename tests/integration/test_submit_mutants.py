"""The submission service's own decisions, on a real ledger and database without the
transport (which adds nothing to them): the outcome each record reports for metrics,
the in-flight map of listings, a batch's outcomes in order, the issuing alliance's
policy on platform reports, and the signer's scope (issue 23: the survivors of the
mutation run of ``gateway/service/submit.py``, and fast tests of what only the metrics
endpoint test checked)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gwtest import LISTED_AT, USCC, Alliance, Member, confirmation, erasure, listing

from gateway import codec
from gateway.core import dsse
from gateway.core.statements import (
    LISTING_V1,
    AlliancePolicy,
    ErasureBasis,
    LifecycleStep,
    Statement,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.errors import (
    GatewayError,
    LogIntegrityError,
    NotFoundError,
    PermissionError,
    RecordError,
    StorageError,
    VerificationError,
)
from gateway.ops.app import Core
from gateway.ops.policy_file import parse_policy
from gateway.service.ledger import Accepted, Appended
from gateway.service.sequencer import Sequencer
from gateway.service.submit import Checked, SubmitService

GUANGDONG = "440300"
REFUSED_44 = (
    "reporting unit 44 (Guangdong) does not accept platform reports under the policy of "
    "zj.alliance.test (units accepting them: 33, 35)"
)


class Outcomes:
    """``on_outcome`` recording ``(payload_type, reason)``; a test waits for a count
    (a record's outcome is reported from the sequencer's thread once it landed)."""

    def __init__(self) -> None:
        self._seen: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    def __call__(self, payload_type: str, reason: str) -> None:
        with self._changed:
            self._seen.append((payload_type, reason))
            self._changed.notify_all()

    def seen(self) -> list[tuple[str, str]]:
        with self._changed:
            return list(self._seen)

    def wait(self, n: int) -> list[tuple[str, str]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self._seen) >= n, timeout=10)
            return list(self._seen)


@dataclass
class Bench:
    alliance: Alliance
    core: Core
    sequencer: Sequencer
    outcomes: Outcomes
    service: SubmitService

    def member(self, name: str) -> Member:
        return self.alliance.members[name]

    def stopped(self) -> SubmitService:
        """The same service over a sequencer that is shutting down."""
        sequencer = Sequencer(self.core.ledger)
        sequencer.stop()
        return _service(self.core, sequencer, self.outcomes)

    def in_flight(self) -> dict[str, object]:
        return dict(self.service._in_flight)

    def set_policy(self, *units: str) -> None:
        self.core.policy_admin.set(parse_policy({"units_accepting_platform_reports": list(units)}))


def _service(core: Core, sequencer: Sequencer, outcomes: Outcomes) -> SubmitService:
    return SubmitService(
        core.store,
        core.directory,
        sequencer,
        origin=core.config.log_origin,
        intake=core.config.intake_rules,
        on_outcome=outcomes,
        policies=core.policies,
    )


@pytest.fixture
def bench(tmp_path: Path, database_url: str) -> Iterator[Bench]:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    a.member("platform", "shop-a")
    a.member("authority", "ndrc-list", region="110000")
    core = Core(a.config(database_url))
    for m in a.members.values():
        core.members.add(
            m.member_id,
            m.region,
            m.signing_key.public_key().raw,
            possession=m.possession(),
            national=m.member_id.endswith("/ndrc-list"),
        )
    sequencer = Sequencer(core.ledger, max_batch=64, max_wait_ms=1.0)
    sequencer.start()
    outcomes = Outcomes()
    try:
        yield Bench(a, core, sequencer, outcomes, _service(core, sequencer, outcomes))
    finally:
        sequencer.stop()
        core.close()


def _checked(bench: Bench, member: Member, env: dsse.Envelope) -> Checked:
    return bench.service.check(env, member.member_id)


def _identify(member: Member, listing_id: str) -> StatusChange:
    return StatusChange(
        issuer=member.member_id,
        listing_id=listing_id,
        step=LifecycleStep.IDENTIFIED,
        effective_at=LISTED_AT + timedelta(days=2),
    )


def _withdraw(member: Member, listing_id: str) -> StatusChange:
    return StatusChange(
        issuer=member.member_id,
        listing_id=listing_id,
        step=LifecycleStep.WITHDRAWN,
        effective_at=LISTED_AT + timedelta(days=2),
        decision_ref="ZJ-AMR-2026-W1",
        reason="listed in error",
    )


def _refusal(err: object) -> tuple[type, str, str]:
    return type(err), str(err), getattr(err, "advice", "")


def _appended(outcome: Appended | BaseException) -> Appended:
    assert isinstance(outcome, Appended), outcome
    return outcome


def _refused(bench: Bench, env: dsse.Envelope, caller: Member) -> tuple[object, ...]:
    """The refusal of ``env`` submitted by ``caller``: class, message, advice, reason."""
    with pytest.raises(GatewayError) as err:
        bench.service.submit(env, caller.member_id)
    return type(err.value), str(err.value), err.value.advice, err.value.reason


def _with_issuer(env: dsse.Envelope, issuer: str, member: Member) -> dsse.Envelope:
    """``env``'s payload with another issuer, signed by ``member`` (bytes a client
    library would not build)."""
    message = codec.PAYLOAD_SCHEMAS[env.payload_type].message()
    message.ParseFromString(env.payload)
    message.issuer = issuer  # type: ignore[attr-defined]
    return dsse.sign(env.payload_type, message.SerializeToString(), member.signing_key)


def test_each_outcome_reports_its_reason_for_the_metrics(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reasons the metrics count (``on_outcome``): "" appended, "duplicate", one
    per refusal class, "other" for an error outside the table; each with its record's
    payload type."""
    amr, shop = bench.member("zj-amr"), bench.member("shop-a")
    env = amr.sign(listing(amr))
    kind = env.payload_type
    # Refused before the sequencer: reported before the call returns.
    refusals: list[tuple[dsse.Envelope, str, type[BaseException], str]] = [
        (dsse.sign(kind, b"\x01", amr.signing_key), amr.member_id, RecordError, "invalid_record"),
        (
            dsse.sign(kind, env.payload, shop.signing_key),
            amr.member_id,
            VerificationError,
            "bad_signature",
        ),
        (
            shop.sign(listing(amr, decision_ref="NOT-MINE")),
            shop.member_id,
            PermissionError,
            "not_allowed",
        ),
        (shop.sign(confirmation(shop, "0" * 64)), shop.member_id, NotFoundError, "unknown_listing"),
    ]
    for bad, caller, error, _ in refusals:
        with pytest.raises(error):
            bench.service.submit(bad, caller)
    assert bench.outcomes.seen() == [(bad.payload_type, reason) for bad, _, _, reason in refusals]

    assert not bench.service.submit(env, amr.member_id).duplicate
    assert bench.service.submit(env, amr.member_id).duplicate
    answer = shop.sign(confirmation(shop, env.record_id))  # a record never in flight
    assert not bench.service.submit(answer, shop.member_id).duplicate
    assert bench.outcomes.wait(7)[4:] == [
        (kind, ""),
        (kind, "duplicate"),
        (answer.payload_type, ""),
    ]

    # The append itself fails: a storage error, and one outside the table.
    late = amr.sign(listing(amr, decision_ref="LATE"))
    with pytest.raises(StorageError):
        bench.stopped().submit(late, amr.member_id)
    assert bench.outcomes.seen()[7:] == [(kind, "storage")]

    def broken(*args: object, **kwargs: object) -> list[Appended]:
        raise LogIntegrityError("the log's root does not match its entries")

    monkeypatch.setattr(bench.core.ledger, "append", broken)
    with pytest.raises(LogIntegrityError):
        bench.service.submit(late, amr.member_id)
    assert bench.outcomes.wait(9)[-1] == (kind, "other")
    assert bench.in_flight() == {}  # neither failed listing stays in flight


def test_a_caller_refused_at_the_start_reports_each_record_refused(bench: Bench) -> None:
    """A caller not (or no longer) in good standing: every record of the chunk is
    refused in its place, and counted."""
    stranger = bench.alliance.member("platform", "stranger")  # issued, never registered
    envs = [stranger.sign(listing(stranger, decision_ref=f"S-{i}")) for i in range(2)]
    results = bench.service.check_many(envs, stranger.member_id)
    assert [_refusal(r) for r in results] == [
        (
            PermissionError,
            f"{stranger.member_id} is not a registered member of this alliance",
            "ask the gateway operator to register you (alliance-gateway members add)",
        )
    ] * 2
    assert bench.outcomes.seen() == [(envs[0].payload_type, "not_allowed")] * 2


def test_a_listing_leaves_the_in_flight_map_once_it_landed(bench: Bench) -> None:
    """A listing stays in flight only until its append committed (or failed): the map
    holds no listing for ever, one record or a batch."""
    amr = bench.member("zj-amr")
    single = bench.service.admit(_checked(bench, amr, amr.sign(listing(amr, decision_ref="1"))))
    assert not single.result(timeout=10).duplicate
    bench.outcomes.wait(1)  # reported after the map let the listing go
    assert bench.in_flight() == {}

    envs = [amr.sign(listing(amr, decision_ref=f"B-{i}")) for i in range(2)]
    done = bench.service.admit_many([_checked(bench, amr, e) for e in envs])
    assert [_appended(a).record_id for a in done.result(timeout=10)] == [e.record_id for e in envs]
    assert bench.in_flight() == {}


def test_a_batch_reports_each_outcome_in_its_place_and_a_refusal_stops_nothing(
    bench: Bench,
) -> None:
    amr, shop = bench.member("zj-amr"), bench.member("shop-a")
    bench.set_policy("33", "35")
    first = amr.sign(listing(amr, decision_ref="FIRST"))
    unreadable = dsse.sign(first.payload_type, b"\x01", amr.signing_key)
    reported = shop.sign(listing(shop, uscc=USCC[1], region_code=GUANGDONG))
    last = shop.sign(listing(shop, decision_ref="LAST"))
    answer = shop.sign(confirmation(shop, first.record_id))
    (invalid,) = bench.service.check_many([unreadable], amr.member_id)
    assert isinstance(invalid, RecordError)
    items: list[Checked | BaseException] = [
        _checked(bench, amr, first),
        invalid,
        _checked(bench, shop, reported),
        _checked(bench, shop, last),
        _checked(bench, shop, answer),  # its listing is in flight, ahead in the batch
    ]
    outcomes = bench.service.admit_many(items).result(timeout=10)
    assert [type(o) for o in outcomes] == [
        Appended,
        RecordError,
        PermissionError,
        Appended,
        Appended,
    ]
    assert outcomes[1] is invalid
    assert _refusal(outcomes[2])[1] == REFUSED_44
    landed = [_appended(outcomes[i]) for i in (0, 3, 4)]
    assert [(o.record_id, o.duplicate) for o in landed] == [
        (first.record_id, False),
        (last.record_id, False),
        (answer.record_id, False),
    ]
    kind = first.payload_type
    assert bench.outcomes.wait(5) == [
        (kind, "invalid_record"),  # at check
        (kind, "not_allowed"),  # at admission
        (kind, ""),  # landed, in batch order
        (kind, ""),
        (answer.payload_type, ""),
    ]
    assert bench.in_flight() == {}


def test_a_batch_whose_append_fails_reports_the_error_for_each_record(bench: Bench) -> None:
    amr = bench.member("zj-amr")
    envs = [amr.sign(listing(amr, decision_ref=f"F-{i}")) for i in range(2)]
    stopped = bench.stopped()
    items = [stopped.check(e, amr.member_id) for e in envs]
    done = stopped.admit_many(items)
    assert done.done()  # answered at once: the sequencer refused the hand-in
    outcomes = done.result()
    assert [_refusal(o) for o in outcomes] == [
        (
            StorageError,
            "the gateway is shutting down",
            "run `alliance-gateway migrate` and check the database URL",
        )
    ] * 2
    assert bench.outcomes.seen() == [(envs[0].payload_type, "storage")] * 2
    assert stopped._in_flight == {}


class _ShortSequencer(Sequencer):
    """A sequencer whose batch future answers one outcome fewer than it was handed
    (a bug the real one does not have): what the submission service does then."""

    def submit_batch(self, items: Sequence[Accepted]) -> Future[list[Appended]]:
        short: Future[list[Appended]] = Future()
        whole = super().submit_batch(items)
        whole.add_done_callback(lambda f: short.set_result(f.result()[:-1]))
        return short


def test_a_batch_answered_with_too_few_outcomes_fails_instead_of_hanging(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    amr = bench.member("zj-amr")
    envs = [amr.sign(listing(amr, decision_ref=f"S-{i}")) for i in range(2)]
    sequencer = _ShortSequencer(bench.core.ledger, max_batch=64, max_wait_ms=1.0)
    sequencer.start()
    try:
        service = _service(bench.core, sequencer, bench.outcomes)
        done = service.admit_many([service.check(e, amr.member_id) for e in envs])
        with pytest.raises(GatewayError) as failure:
            done.result(timeout=10)
    finally:
        sequencer.stop()
    assert str(failure.value) == "the ledger answered 1 outcomes for a batch of 2 records"
    assert "the outcomes of a batch of 2 records are lost" in caplog.text
    assert service._in_flight == {}


def test_the_alliance_policy_refuses_a_platform_report_of_another_unit(bench: Bench) -> None:
    """Under a policy naming the units that take platform reports, a platform's listing
    of a subject of any other unit is refused, with the unit, the policy's alliance and
    the accepting units named; its own unit's subjects and authorities' listings pass."""
    amr, shop, national = (bench.member(n) for n in ("zj-amr", "shop-a", "ndrc-list"))
    report = shop.sign(listing(shop, uscc=USCC[1], region_code=GUANGDONG))
    before = bench.service.submit(report, shop.member_id)  # no policy yet: every unit
    bench.outcomes.wait(1)

    bench.set_policy("33", "35")
    again = shop.sign(listing(shop, uscc=USCC[2], region_code=GUANGDONG))
    with pytest.raises(PermissionError) as err:
        bench.service.submit(again, shop.member_id)
    assert _refusal(err.value) == (
        PermissionError,
        REFUSED_44,
        "an authority of unit 44 lists the subject itself",
    )
    assert bench.outcomes.seen()[1:] == [(again.payload_type, "not_allowed")]
    assert bench.in_flight() == {}

    # Its own unit, and an authority's listing of the other unit (identified as signed).
    assert bench.service.submit(shop.sign(listing(shop, uscc=USCC[2])), shop.member_id)
    nat = national.sign(listing(national, uscc=USCC[2], region_code=GUANGDONG))
    assert bench.service.submit(nat, national.member_id)

    # Identifying the report signed before the policy is refused alike; the
    # confirmation of an authority's listing is no platform report.
    identify = national.sign(_identify(national, before.record_id))
    with pytest.raises(PermissionError) as err:
        bench.service.submit(identify, national.member_id)
    assert _refusal(err.value)[:2] == (PermissionError, REFUSED_44)
    listed = bench.service.submit(amr.sign(listing(amr, decision_ref="OWN")), amr.member_id)
    assert bench.service.submit(shop.sign(confirmation(shop, listed.record_id)), shop.member_id)


def test_a_policy_that_names_no_unit_takes_every_report_and_an_identification(
    bench: Bench,
) -> None:
    shop, national = bench.member("shop-a"), bench.member("ndrc-list")
    bench.set_policy()
    report = bench.service.submit(
        shop.sign(listing(shop, uscc=USCC[1], region_code=GUANGDONG)), shop.member_id
    )
    assert bench.service.submit(
        national.sign(_identify(national, report.record_id)), national.member_id
    )


def test_a_national_authority_lists_in_every_unit(bench: Bench) -> None:
    """The signer's scope comes from its member record: a national authority lists a
    subject of any unit, a unit's authority only its own unit's."""
    amr, national = bench.member("zj-amr"), bench.member("ndrc-list")
    gd = national.sign(listing(national, uscc=USCC[1], region_code=GUANGDONG))
    assert not bench.service.submit(gd, national.member_id).duplicate
    with pytest.raises(PermissionError) as err:
        bench.service.submit(
            amr.sign(listing(amr, uscc=USCC[1], region_code=GUANGDONG)), amr.member_id
        )
    assert str(err.value) == (
        f"authority {amr.member_id} acts for reporting unit 33 (Zhejiang) only: it may not list a "
        "subject of reporting unit 44 (Guangdong) (region_code 440300)"
    )


def test_a_gateway_without_a_member_record_is_judged_not_crashed_on(bench: Bench) -> None:
    """A configured gateway needs no member record to call the service (``Directory.
    require_active``); its record is authorized with no region and no scope."""
    gateway = bench.alliance.gateway_member()
    assert bench.core.directory.member(gateway.member_id) is None
    policy = AlliancePolicy(issuer=gateway.member_id, issued_at=datetime.now(UTC))
    appended = bench.service.submit(gateway.sign(policy), gateway.member_id)
    assert not appended.duplicate
    assert bench.core.policies.current("zj.alliance.test") == policy


def test_an_erasure_names_only_held_closed_records_its_signer_may_erase(bench: Bench) -> None:
    """Where a member submits an erasure every named record must be held here and closed,
    and the signer must be allowed to erase each: by its member record's region and
    scope, an authority of the listing's unit or a national authority erases a
    platform's report."""
    amr, shop, national = (bench.member(n) for n in ("zj-amr", "shop-a", "ndrc-list"))

    def send(member: Member, statement: Statement) -> str:
        return bench.service.submit(member.sign(statement), member.member_id).record_id

    own = send(amr, listing(amr))
    zhejiang = send(shop, listing(shop, uscc=USCC[1]))
    guangdong = send(shop, listing(shop, uscc=USCC[2], region_code=GUANGDONG))

    with pytest.raises(RecordError) as err:
        send(amr, erasure(amr, own, basis=ErasureBasis.WITHDRAWN))
    assert _refusal(err.value) == (
        RecordError,
        f"erasure.record_ids: listing {own} is in force: its records are erased once it is closed",
        "correct, remove or withdraw the listing first, then erase its records",
    )
    unknown = "ab" * 32
    with pytest.raises(NotFoundError) as missing:
        send(amr, erasure(amr, own, unknown, basis=ErasureBasis.WITHDRAWN))
    assert str(missing.value) == f"erasure.record_ids: no record {unknown} is known to this gateway"

    send(amr, _withdraw(amr, own))
    for report in (zhejiang, guangdong):
        send(shop, _withdraw(shop, report))
    withdrawn = ErasureBasis.WITHDRAWN
    # Its own listing and a report of its unit; the national authority, a report of any unit.
    assert send(amr, erasure(amr, own, zhejiang, basis=withdrawn))
    assert send(national, erasure(national, guangdong, basis=withdrawn))


def test_each_refusal_at_check_says_what_and_why(bench: Bench) -> None:
    """The words of the refusals before authorization, compared whole: a member reads
    them to fix the record."""
    amr, shop = bench.member("zj-amr"), bench.member("shop-a")
    env = amr.sign(listing(amr))
    v2 = env.payload_type
    assert _refused(bench, _with_issuer(env, "zj-amr", amr), amr) == (
        RecordError,
        "listing.issuer: must start with spiffe://, got 'zj-amr'",
        "fix the named field; the byte formats are in docs/PROTOCOL.md",
        "invalid-record",
    )
    # An issuer longer than the message quotes (a valid id: trust domain of 196, name
    # of 128 characters).
    far = "spiffe://" + ".".join(c * 63 for c in "abc") + ".test/platform/" + "n" * 128
    assert len(far) > 300
    assert _refused(bench, shop.sign(replace(listing(shop), issuer=far)), shop) == (
        PermissionError,
        f"the record's issuer {far[:300]!r} is not the caller {shop.member_id}",
        "members submit only records they issued and signed themselves",
        "issuer-not-signer",
    )
    forged = dsse.sign(v2, env.payload, shop.signing_key)
    assert _refused(bench, forged, amr)[:2] == (
        VerificationError,
        f"issuer {amr.member_id}: no valid signature by a registered key: 1 signature(s) "
        "checked against 1 candidate key(s)",
    )
    payload_type, payload = codec.encode_statement(listing(amr), LISTING_V1)
    assert _refused(bench, dsse.sign(payload_type, payload, amr.signing_key), amr) == (
        RecordError,
        f"payload_type: {LISTING_V1} signs the subject and free text in the clear; members "
        "submit the redactable form now",
        f"sign it as {v2} with its disclosures",
        "superseded-payload-type",
    )
    assert _refused(bench, replace(env, disclosures=()), amr) == (
        RecordError,
        f"listing.disclosures: a {v2} record is submitted with the disclosure of every "
        "group it commits to",
        "send the disclosures beside the envelope (Envelope.disclosures)",
        "disclosure-missing",
    )

    listed = bench.service.submit(env, amr.member_id)
    answer = bench.service.submit(shop.sign(confirmation(shop, listed.record_id)), shop.member_id)
    bench.outcomes.wait(7)  # five refusals, then both landed
    assert _refused(bench, shop.sign(confirmation(shop, answer.record_id)), shop)[:2] == (
        RecordError,
        f"listing_id: record {answer.record_id} is not a listing",
    )


def test_a_stored_listing_is_read_with_its_disclosures(bench: Bench) -> None:
    """A step on a listing that already left the in-flight map is authorized against the
    listing as stored with its disclosures: the platform of one of the subject's stores
    may dispute it (its store is named only in a disclosure)."""
    amr, shop = bench.member("zj-amr"), bench.member("shop-a")
    stores = Subject(uscc=USCC[1], stores=(StoreRef(shop.member_id, "a-123"),))
    listed = bench.service.submit(amr.sign(listing(amr, subject=stores)), amr.member_id)
    bench.outcomes.wait(1)
    dispute = StatusChange(
        issuer=shop.member_id,
        listing_id=listed.record_id,
        step=LifecycleStep.DISPUTED,
        effective_at=LISTED_AT + timedelta(days=2),
        reason="the seller objects: the orders were real",
        document_sha256=bytes(range(32)),
    )
    assert not bench.service.submit(shop.sign(dispute), shop.member_id).duplicate
