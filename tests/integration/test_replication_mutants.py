"""The puller's record checks (``gateway/service/replication/verify.py``), edges found by
mutation testing (docs/TESTING.md, run 5): each test names what it stops.

A real ``PeerPuller`` on a real database pulls from a peer log the test scripts
(``ScriptedPeer`` of test_federation_rejections, signed with the peer's real keys).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gwtest import USCC, listing
from test_federation import EvilLog, eventually
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

from gateway.core.statements import AuthorityScope, LifecycleStep


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
