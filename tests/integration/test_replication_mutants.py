"""The puller's record checks (``gateway/service/replication/verify.py``), edges found by
mutation testing (docs/TESTING.md, run 5): each test names what it stops.

A real ``PeerPuller`` on a real database pulls from a peer log the test scripts
(``ScriptedPeer`` of test_federation_rejections, signed with the peer's real keys).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gwtest import USCC, Member, confirmation, erasure, listing
from test_federation import EvilLog, Region, eventually
from test_federation_rejections import (
    ScriptedPeer,
    has,
    home_core,
    member_records,
    pulling,
    refused,
    status_change,
    two_regions,
)

from gateway.core import dsse
from gateway.core.statements import (
    AuthorityScope,
    LifecycleStep,
    MemberRecord,
    SanctionAction,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.errors import FederationError
from gateway.service.replication import PeerCheckpoint, PeerEntry, PeerItem, PeerPuller
from gateway.service.replication.verify import Admission

# What the puller's status adds to a refused batch's message: the refusal's advice.
REFUSED = (
    " (hint: the peer serves a record this gateway does not accept; check the peer list "
    "(every region must be configured) and alert the peer)"
)


def test_a_national_authority_of_a_peer_region_lists_in_any_unit(
    tmp_path: Path, database_url: str
) -> None:
    """The signer's scope comes from its member record: a NATIONAL authority acts for
    every reporting unit, so its listing of a subject in another unit is replicated; a
    UNIT authority's same listing is refused (the scope must not be dropped on the way
    to the policy, in either direction)."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        national = replace(log.member_record(gd.authority), scope=AuthorityScope.NATIONAL)
        elsewhere = gd.authority.sign(listing(gd.authority, uscc=USCC[0], region_code="330000"))
        entries = [log.gateway_sign(national), elsewhere]
        with pulling(home, gd, ScriptedPeer(log, entries)) as puller:
            eventually(lambda: puller.view.next_index == 2, "the national listing is stored")
        assert has(home, elsewhere)


def test_a_unit_authority_of_a_peer_region_cannot_list_in_another_unit(
    tmp_path: Path, database_url: str
) -> None:
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        elsewhere = gd.authority.sign(listing(gd.authority, uscc=USCC[0], region_code="330000"))
        entries = [*member_records(log, gd.authority), elsewhere]
        with pulling(home, gd, ScriptedPeer(log, entries)) as puller:
            error = refused(puller, "refused, so is its batch")
        assert error.endswith(
            f"authority {gd.authority.member_id} acts for reporting unit 44 (Guangdong) only: "
            "it may not list a subject of reporting unit 33 (Zhejiang) (region_code 330000)"
            + REFUSED
        )
        assert not has(home, elsewhere)


def test_a_status_change_is_checked_against_its_listing_in_the_same_batch(
    tmp_path: Path, database_url: str
) -> None:
    """A platform may not serve a notice on a listing. With the listing earlier in the
    same batch, the change is checked against it and the batch refused; it must not be
    taken for a change that arrived before its listing (stored, left to the projection)."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        the_listing = gd.authority.sign(listing(gd.authority, uscc=USCC[1]))
        change = status_change(gd.platform, the_listing.record_id, LifecycleStep.NOTICE_SERVED)
        entries = [*member_records(log, gd.authority, gd.platform), the_listing, change]
        with pulling(home, gd, ScriptedPeer(log, entries)) as puller:
            error = refused(puller, "entry 3 (record")
        assert (
            f"{gd.platform.member_id} may not change listing {the_listing.record_id}: only its "
            f"issuer {gd.authority.member_id}"
        ) in error
        assert not has(home, change) and not has(home, the_listing)


def settled(puller: PeerPuller, size: int) -> str:
    """Wait until the puller has stored the log up to ``size`` entries or failed two
    sessions in a row (a peer's stream ended by ``grow`` is the first); ``""`` once
    stored, else its last error. Either way the test learns at once which it was."""

    def done() -> bool:
        return puller.view.next_index >= size or puller.status().consecutive_failures >= 2

    eventually(done, f"the log up to {size} stored, or refused")
    return "" if puller.view.next_index >= size else puller.status().last_error


# --- a listing stored in an earlier batch is read with its disclosures --------------------


def _listing_naming_a_store_of(gd: Region) -> dsse.Envelope:
    """The authority's listing of a seller with a store on GD's platform (a disclosed
    field: the subject and its stores are committed, not signed in the clear)."""
    subject = Subject(uscc=USCC[1], stores=(StoreRef(gd.platform.member_id, "gd-shop-7"),))
    return gd.authority.sign(listing(gd.authority, subject=subject))


def test_a_platform_named_by_a_stored_listing_may_not_answer_not_applicable(
    tmp_path: Path, database_url: str
) -> None:
    """The attack: a platform whose store the listing names answers NOT_APPLICABLE ("the
    seller has no account with us") and so escapes applying the measure. The listing
    came in an earlier batch, so the answer is checked against the stored listing: read
    without its disclosures it would name no store, and the answer would pass."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        the_listing = _listing_naming_a_store_of(gd)
        answer = gd.platform.sign(
            confirmation(
                gd.platform,
                the_listing.record_id,
                measure=None,
                action=SanctionAction.NOT_APPLICABLE,
            )
        )
        fake = ScriptedPeer(log, [*member_records(log, gd.authority, gd.platform), the_listing])
        with pulling(home, gd, fake) as puller:
            eventually(lambda: puller.view.next_index == 3, "the listing is stored")
            fake.grow(answer)
            error = settled(puller, 4)
        assert error.endswith(
            f"listing {the_listing.record_id} names store 'gd-shop-7' of {gd.platform.member_id}: "
            "the seller has an account there, so the platform may not answer NOT_APPLICABLE"
            + REFUSED
        )
        assert not has(home, answer)


def test_a_platform_named_by_a_stored_listing_may_dispute_it(
    tmp_path: Path, database_url: str
) -> None:
    """The honest counterpart: the seller objects through the platform of its store
    (DISPUTED), which only the stored listing's disclosed stores allow; the change is
    replicated."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        the_listing = _listing_naming_a_store_of(gd)
        dispute = gd.platform.sign(
            StatusChange(
                issuer=gd.platform.member_id,
                listing_id=the_listing.record_id,
                step=LifecycleStep.DISPUTED,
                effective_at=datetime(2026, 10, 5, tzinfo=UTC),
                reason="the seller objects: the orders were genuine",
                document_sha256=hashlib.sha256(b"the orders and their payments").digest(),
            )
        )
        fake = ScriptedPeer(log, [*member_records(log, gd.authority, gd.platform), the_listing])
        with pulling(home, gd, fake) as puller:
            eventually(lambda: puller.view.next_index == 3, "the listing is stored")
            fake.grow(dispute)
            assert settled(puller, 4) == ""
        assert has(home, dispute)


# --- several member records of one member in one batch: the newest counts ----------------


def _older_and_newer(
    log: EvilLog, older: MemberRecord, newer: MemberRecord, *, tie: bool = False
) -> tuple[dsse.Envelope, dsse.Envelope]:
    """The two member records signed so that ``newer`` is the newer by ``(issued_at,
    record_id)``, the order the fold uses (``MemberDirectory``), and by that whole key
    alone: dated after ``older`` but with the smaller record id (the record id alone
    would pick ``older``), or (``tie``) dated alike with the larger record id (the date
    alone would find them equal and keep the first of the batch, ``older``)."""
    # Both records move with each try, so each try is an even chance: with the first
    # fixed, a first record id near 00… left almost no smaller second one (seen in CI).
    for seconds in range(200):
        at = older.issued_at + timedelta(seconds=seconds)
        first = log.gateway_sign(replace(older, issued_at=at))
        second = log.gateway_sign(
            replace(newer, issued_at=at if tie else at + timedelta(seconds=1))
        )
        if (second.record_id > first.record_id) == tie:
            return first, second
    raise AssertionError("no dates give record ids in the wanted order")


def _scoped(log: EvilLog, member: Member, scope: AuthorityScope) -> MemberRecord:
    return replace(log.member_record(member), scope=scope)


@pytest.mark.parametrize("tie", [False, True], ids=["dated-after", "same-date"])
def test_the_newest_member_record_of_a_batch_gives_the_authority_its_scope(
    tmp_path: Path, database_url: str, tie: bool
) -> None:
    """The authority's gateway widens it from UNIT to NATIONAL, and in the same batch the
    authority lists a subject of another unit: the newer record counts, so the listing
    is replicated (its home gateway accepted it under the same record). With the older
    record it would be refused, and a refused record blocks replication from that peer
    for good."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        unit, national = _older_and_newer(
            log,
            _scoped(log, gd.authority, AuthorityScope.UNIT),
            _scoped(log, gd.authority, AuthorityScope.NATIONAL),
            tie=tie,
        )
        elsewhere = gd.authority.sign(listing(gd.authority, uscc=USCC[0], region_code="330000"))
        with pulling(home, gd, ScriptedPeer(log, [unit, national, elsewhere])) as puller:
            assert settled(puller, 3) == ""
        assert has(home, elsewhere)


def test_an_authority_narrowed_in_the_batch_may_not_list_outside_its_unit(
    tmp_path: Path, database_url: str
) -> None:
    """The other way round: the gateway narrows a NATIONAL authority to its unit, then
    the authority lists a subject of another unit in the same batch. The older, wider
    record must not count: the batch is refused."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        national, unit = _older_and_newer(
            log,
            _scoped(log, gd.authority, AuthorityScope.NATIONAL),
            _scoped(log, gd.authority, AuthorityScope.UNIT),
        )
        elsewhere = gd.authority.sign(listing(gd.authority, uscc=USCC[0], region_code="330000"))
        with pulling(home, gd, ScriptedPeer(log, [national, unit, elsewhere])) as puller:
            error = settled(puller, 3)
        assert error.endswith(
            f"authority {gd.authority.member_id} acts for reporting unit 44 (Guangdong) only: "
            "it may not list a subject of reporting unit 33 (Zhejiang) (region_code 330000)"
            + REFUSED
        )
        assert not has(home, elsewhere) and not has(home, unit)


# --- replicated erasures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "region_code"),
    [(AuthorityScope.UNIT, "440300"), (AuthorityScope.NATIONAL, "330000")],
    ids=["unit", "national"],
)
def test_an_authority_erases_a_held_report_of_its_jurisdiction(
    tmp_path: Path, database_url: str, scope: AuthorityScope, region_code: str
) -> None:
    """Besides a record's issuer, an authority of its listing's unit (UNIT) or any
    authority of national scope erases it. The peer's authority erases a platform's
    report held here: the replica checks the signer's region and scope (from its member
    record) as the home gateway did; without either it would refuse an honest erasure,
    and a refused record blocks replication from that peer for good."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        members = [
            log.gateway_sign(_scoped(log, gd.authority, scope)),
            *member_records(log, gd.platform),
        ]
        report = gd.platform.sign(listing(gd.platform, uscc=USCC[1], region_code=region_code))
        erase = gd.authority.sign(erasure(gd.authority, report.record_id))
        fake = ScriptedPeer(log, [*members, report])
        with pulling(home, gd, fake) as puller:
            eventually(lambda: puller.view.next_index == 3, "the report is stored")
            fake.grow(erase)
            assert settled(puller, 4) == ""
        stored = home.store.record_by_id(report.record_id)
        assert stored is not None and stored.disclosures == ()
        assert has(home, erase)


def test_an_erasure_naming_records_not_held_here_erases_those_that_are(
    tmp_path: Path, database_url: str
) -> None:
    """An erasure may name records this gateway never receives (its origin erased them
    before serving them, or they are of a log it does not pull): a replica erases those
    it holds or that arrive with it, and leaves the rest. Requiring all of them, as a
    submission does, would refuse the honest erasure and block replication from that
    peer for good."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        never_served = gd.authority.sign(listing(gd.authority, uscc=USCC[2]))
        the_listing = gd.authority.sign(listing(gd.authority, uscc=USCC[1]))
        erase = gd.authority.sign(
            erasure(gd.authority, never_served.record_id, the_listing.record_id)
        )
        entries = [*member_records(log, gd.authority), the_listing, erase]
        with pulling(home, gd, ScriptedPeer(log, entries)) as puller:
            assert settled(puller, 3) == ""
        stored = home.store.record_by_id(the_listing.record_id)
        assert stored is not None and stored.disclosures == ()
        assert has(home, erase) and not has(home, never_served)


# --- what a refusal says: the messages compared whole ---------------------------------------


def test_a_forked_checkpoint_is_kept_as_evidence_logged_and_refused(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After we verified its tree of 2, the peer signs another tree of the same size:
    both notes are kept as evidence, the fork is logged as an error naming the peer and
    the reason (an operator's alert reads the log), and the session ends with both."""
    caplog.set_level(logging.ERROR, logger="gateway.service.replication.verify")
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        (member,) = member_records(log, gd.authority)
        entries = [member, gd.authority.sign(listing(gd.authority, uscc=USCC[0]))]
        other = [member, gd.authority.sign(listing(gd.authority, uscc=USCC[1]))]
        fake = ScriptedPeer(log, entries)
        with pulling(home, gd, fake) as puller:
            eventually(lambda: puller.view.next_index == 2, "the honest log is replicated")

            def forked(items: list[PeerItem], _: int, known: int) -> list[PeerItem]:
                return [PeerCheckpoint(log.checkpoint(other), 2, known, ())]

            fake.tamper = forked
            fake.streams[-1].cancel()
            # The first failure is the ended stream; then the forked session.
            error = settled(puller, 3)
        reason = "fork: checkpoint 2 contradicts the accepted 2 (two roots for tree size 2)"
        assert error == (
            f"{gd.origin}: {reason} (hint: keep the checkpoints involved as evidence and "
            "alert the regulator)"
        )
        logged = [
            (r.levelno, r.getMessage())
            for r in caplog.records
            if r.name == "gateway.service.replication.verify"
        ]
        assert logged and set(logged) == {
            (logging.ERROR, f"peer {gd.origin}: {reason}; evidence kept")
        }
        evidence = home.store.evidence(gd.alliance.gateway_id)
        assert evidence and evidence[0].kind == "fork"
        assert evidence[0].accepted_note == log.checkpoint(entries)
        assert evidence[0].conflicting_note == log.checkpoint(other)
        assert not has(home, other[1])


def test_an_entry_labelled_with_another_record_id_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    """The peer labels an entry with another record's id: the id is checked against
    the entry's own bytes before anything else is read."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        entries = [
            *member_records(log, gd.authority),
            gd.authority.sign(listing(gd.authority, uscc=USCC[0])),
        ]
        label = gd.authority.sign(listing(gd.authority, uscc=USCC[1])).record_id

        def mislabelled(items: list[PeerItem], _: int, __: int) -> list[PeerItem]:
            return [
                replace(i, record_id=label) if isinstance(i, PeerEntry) and i.log_index == 1 else i
                for i in items
            ]

        with pulling(home, gd, ScriptedPeer(log, entries, mislabelled)) as puller:
            error = settled(puller, 2)
        assert error == (
            f"{gd.origin}: entry 1 is labelled {label}, which is not the SHA-256 of its PAE "
            "bytes (hint: the peer serves entries under ids they do not hash to: alert its "
            "operator)"
        )
        assert not any(has(home, e) for e in entries)


def test_a_refused_record_names_its_entry_its_record_and_the_advice(
    tmp_path: Path, database_url: str
) -> None:
    """The refusal of a batch names the peer, the entry's index and the first 16 hex
    digits of its record id, then the record's own error; its advice sends the operator
    to the peer list and to the peer (the puller's status shows it as a hint)."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        (member,) = member_records(log, gd.authority)
        elsewhere = gd.authority.sign(listing(gd.authority, uscc=USCC[0], region_code="330000"))
        admission = Admission(
            gd.origin, directory=home.directory, store=home.store, anchors=home.anchors
        )
        with pytest.raises(FederationError) as refusal:
            admission.admit(
                [
                    PeerEntry(5, member.record_id, member),
                    PeerEntry(6, elsewhere.record_id, elsewhere),
                ]
            )
    assert str(refusal.value) == (
        f"{gd.origin}: entry 6 (record {elsewhere.record_id[:16]}…) refused, so is its batch: "
        f"authority {gd.authority.member_id} acts for reporting unit 44 (Guangdong) only: "
        "it may not list a subject of reporting unit 33 (Zhejiang) (region_code 330000)"
    )
    assert refusal.value.advice == (
        "the peer serves a record this gateway does not accept; "
        "check the peer list (every region must be configured) and alert the peer"
    )


# --- a record served again is not checked again ---------------------------------------------


@pytest.mark.parametrize("held", [True, False], ids=["held-here", "same-batch"])
def test_a_record_served_again_is_not_checked_again_under_a_later_member_record(
    tmp_path: Path, database_url: str, held: bool
) -> None:
    """A peer's log may carry a record a second time (a relay that got it twice). The
    first copy was checked under the member record then in force: a NATIONAL authority
    listing a subject of another unit. By the second copy its gateway has narrowed it to
    its unit. The second copy is skipped (the record is held, or already admitted in
    this batch), not checked again under the narrower record: that would refuse a record
    this gateway accepted, and a refused record blocks replication from that peer for
    good."""
    zj, gd = two_regions(tmp_path)
    with home_core(zj, gd, database_url) as home:
        log = EvilLog(gd)
        national, unit = _older_and_newer(
            log,
            _scoped(log, gd.authority, AuthorityScope.NATIONAL),
            _scoped(log, gd.authority, AuthorityScope.UNIT),
        )
        elsewhere = gd.authority.sign(listing(gd.authority, uscc=USCC[0], region_code="330000"))
        first = [national, elsewhere]
        again = [unit, elsewhere]
        fake = ScriptedPeer(log, first if held else [*first, *again])
        with pulling(home, gd, fake) as puller:
            if held:
                eventually(lambda: puller.view.next_index == 2, "the listing is stored")
                fake.grow(*again)
            assert settled(puller, 4) == ""
        assert has(home, elsewhere) and has(home, unit)
