"""The puller's record checks (``gateway/service/replication/verify.py``), edges found by
mutation testing (docs/TESTING.md, run 5): each test names what it stops.

A real ``PeerPuller`` on a real database pulls from a peer log the test scripts
(``ScriptedPeer`` of test_federation_rejections, signed with the peer's real keys).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gwtest import USCC, Member, confirmation, listing
from test_federation import EvilLog, Region, eventually
from test_federation_rejections import (
    ScriptedPeer,
    _erasure,
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
from gateway.service.replication import PeerPuller


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
    for seconds in range(200):
        at = older.issued_at + timedelta(seconds=seconds)
        first = log.gateway_sign(replace(older, issued_at=at if tie else older.issued_at))
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
        erase = gd.authority.sign(_erasure(gd.authority, report.record_id))
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
            _erasure(gd.authority, never_served.record_id, the_listing.record_id)
        )
        entries = [*member_records(log, gd.authority), the_listing, erase]
        with pulling(home, gd, ScriptedPeer(log, entries)) as puller:
            assert settled(puller, 3) == ""
        stored = home.store.record_by_id(the_listing.record_id)
        assert stored is not None and stored.disclosures == ()
        assert has(home, erase) and not has(home, never_served)
