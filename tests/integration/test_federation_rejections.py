"""The puller's refusals (``gateway/service/replication/verify.py``), one test each, and the
projection's late status change that does count.

A real ``PeerPuller`` on a real database (SQLite, and PostgreSQL when configured) pulls
from a peer log the test scripts (``FakePeer`` of test_federation, built with the peer's
real gateway key). Each misbehaviour must end the session with the reason recorded,
count as a failure (so the puller backs off and alerts) and store nothing of the
refused batch; the honest part before it stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gwtest import USCC, Member, confirmation, erasure, listing
from test_federation import (
    EvilLog,
    FakePeer,
    FakeStream,
    Region,
    _puller,
    eventually,
    make_region,
)

from gateway.core import dsse, merkle
from gateway.core.crypto import SigningKey
from gateway.core.notes import NoteSigner
from gateway.core.statements import LifecycleStep, StatusChange
from gateway.ops.app import Core
from gateway.service.replication import PeerCheckpoint, PeerEntry, PeerItem, PeerPuller


def two_regions(tmp_path: Path) -> tuple[Region, Region]:
    return make_region(tmp_path, "zj", "330100"), make_region(tmp_path, "gd", "440300")


@contextmanager
def home_core(zj: Region, gd: Region, database_url: str) -> Iterator[Core]:
    """ZJ's gateway core (no server), with GD as its peer."""
    core = Core(zj.config(database_url, [gd.peer()]))
    try:
        yield core
    finally:
        core.close()


@pytest.fixture
def regions(tmp_path: Path) -> tuple[Region, Region]:
    return two_regions(tmp_path)


@pytest.fixture
def home(regions: tuple[Region, Region], database_url: str) -> Iterator[Core]:
    with home_core(*regions, database_url) as core:
        yield core


Tamper = Callable[[list[PeerItem], int, int], list[PeerItem]]


class ScriptedPeer(FakePeer):
    """An honest ``FakePeer`` whose sessions pass through ``tamper`` first."""

    def __init__(
        self, log: EvilLog, entries: Sequence[dsse.Envelope], tamper: Tamper | None = None
    ) -> None:
        super().__init__(log, entries)
        self.tamper = tamper
        self.streams: list[FakeStream] = []

    def replicate(self, from_index: int, known_tree_size: int) -> FakeStream:
        stream = super().replicate(from_index, known_tree_size)
        if self.tamper is not None:
            stream.items = self.tamper(stream.items, from_index, known_tree_size)
        self.streams.append(stream)
        return stream

    def grow(self, *entries: dsse.Envelope) -> None:
        """Append entries and end the live stream (as a peer restart would), so the next
        session serves the grown log."""
        self.entries += entries
        self.nodes = merkle.MemoryNodeStore()
        tree = merkle.CompactRange()
        for e in self.entries:
            self.nodes.put_many(tree.append(merkle.leaf_hash(e.pae())))
        self.streams[-1].cancel()


@contextmanager
def pulling(
    core: Core, peer: Region, fake: FakePeer, batch_max: int = 1000
) -> Iterator[PeerPuller]:
    puller = _puller(core, peer, fake, batch_max)
    puller.start()
    try:
        yield puller
    finally:
        puller.stop()


def refused(puller: PeerPuller, reason: str, times: int = 2) -> str:
    """Wait until the puller has failed ``times`` sessions in a row, the last one for
    ``reason``; its last error."""

    def failing() -> bool:
        status = puller.status()
        return status.consecutive_failures >= times and reason in status.last_error

    eventually(failing, f"{times} sessions refused for {reason!r}")
    return puller.status().last_error


def has(core: Core, env: dsse.Envelope) -> bool:
    return core.store.record_by_id(env.record_id) is not None


def member_records(log: EvilLog, *members: Member) -> list[dsse.Envelope]:
    """Each member's record, signed by the peer's gateway."""
    return [log.gateway_sign(log.member_record(m)) for m in members]


def status_change(member: Member, listing_id: str, step: LifecycleStep) -> dsse.Envelope:
    """``member``'s ``step`` on the listing, signed by it."""
    return member.sign(
        StatusChange(
            issuer=member.member_id,
            listing_id=listing_id,
            step=step,
            effective_at=datetime(2026, 10, 5, tzinfo=UTC),
        )
    )


def _authority_entries(gd: Region) -> tuple[EvilLog, list[dsse.Envelope]]:
    log = EvilLog(gd)
    return log, [
        *member_records(log, gd.authority),
        gd.authority.sign(listing(gd.authority, uscc=USCC[0])),
    ]


# --- checkpoints ---------------------------------------------------------------------------


def test_a_consistency_proof_from_another_size_is_refused(
    regions: tuple[Region, Region], home: Core
) -> None:
    """The peer proves its checkpoint from a tree size we never verified: the proof
    would say nothing about the tree we hold."""
    _, gd = regions
    log, entries = _authority_entries(gd)

    def from_elsewhere(items: list[PeerItem], _: int, known: int) -> list[PeerItem]:
        first = items[0]
        assert isinstance(first, PeerCheckpoint)
        return [replace(first, first_size=known + 1), *items[1:]]

    with pulling(home, gd, ScriptedPeer(log, entries, from_elsewhere)) as puller:
        refused(puller, "consistency proof from size 1, but our last verified checkpoint is 0")
    assert not any(has(home, e) for e in entries)
    assert puller.view.known_size == 0


def test_a_checkpoint_not_signed_by_the_peer_s_key_is_refused(
    regions: tuple[Region, Region], home: Core
) -> None:
    """An impostor at the peer's address signs with another key: not a fork (there is
    no evidence against the peer), but nothing it serves is taken."""
    _, gd = regions
    log, entries = _authority_entries(gd)
    impostor = EvilLog(gd)
    impostor.signer = NoteSigner(gd.origin, SigningKey.generate())
    assert impostor.signer.name == gd.origin

    def resigned(items: list[PeerItem], _: int, __: int) -> list[PeerItem]:
        first = items[0]
        assert isinstance(first, PeerCheckpoint)
        return [replace(first, note=impostor.checkpoint(entries)), *items[1:]]

    with pulling(home, gd, ScriptedPeer(log, entries, resigned)) as puller:
        refused(puller, "checkpoint refused: note has no signature by a known key")
    assert not any(has(home, e) for e in entries)
    assert home.store.evidence(gd.alliance.gateway_id) == []


def test_a_rolled_back_checkpoint_is_refused(regions: tuple[Region, Region], home: Core) -> None:
    """After we verified its tree of 2, the peer serves a signed tree of 1: refused, the
    verified checkpoint is kept."""
    _, gd = regions
    log, entries = _authority_entries(gd)
    fake = ScriptedPeer(log, entries)
    with pulling(home, gd, fake) as puller:
        eventually(lambda: puller.view.next_index == 2, "the honest log is replicated")

        def rolled_back(items: list[PeerItem], _: int, known: int) -> list[PeerItem]:
            return [PeerCheckpoint(log.checkpoint(entries[:1]), 1, known, ())]

        fake.tamper = rolled_back
        fake.grow(gd.authority.sign(listing(gd.authority, uscc=USCC[1])))
        # The first failure is the ended stream; then the rolled-back sessions.
        refused(puller, "rollback: checkpoint 1 is older than the accepted 2", times=3)
    assert puller.view.known_size == 2
    assert all(has(home, e) for e in entries)


# --- entries -------------------------------------------------------------------------------


def test_entries_that_do_not_build_the_signed_tree_are_refused(
    regions: tuple[Region, Region], home: Core
) -> None:
    """Properly signed records, but not the ones the signed checkpoint commits to."""
    _, gd = regions
    log, entries = _authority_entries(gd)
    other = gd.authority.sign(listing(gd.authority, uscc=USCC[2]))

    def substituted(items: list[PeerItem], _: int, __: int) -> list[PeerItem]:
        return [
            PeerEntry(i.log_index, other.record_id, other)
            if isinstance(i, PeerEntry) and i.log_index == 1
            else i
            for i in items
        ]

    with pulling(home, gd, ScriptedPeer(log, entries, substituted)) as puller:
        refused(puller, "refused: entries up to 2 do not hash to the root of the peer's checkpoint")
    assert not any(has(home, e) for e in [*entries, other])


def test_an_entry_out_of_order_is_refused(regions: tuple[Region, Region], home: Core) -> None:
    _, gd = regions
    log, entries = _authority_entries(gd)

    def skipped(items: list[PeerItem], _: int, __: int) -> list[PeerItem]:
        return [i for i in items if not (isinstance(i, PeerEntry) and i.log_index == 0)]

    with pulling(home, gd, ScriptedPeer(log, entries, skipped)) as puller:
        refused(puller, "refused: entry index 1 where 0 was expected")
    assert not any(has(home, e) for e in entries)


def test_a_record_no_member_key_verifies_is_refused(
    regions: tuple[Region, Region], home: Core
) -> None:
    """A batch with no member record in it, whose only record is signed by a key no
    member ever registered: refused before anything is parsed."""
    _, gd = regions
    log = EvilLog(gd)
    stranger = SigningKey.generate()
    forged = dsse.sign(*_payload(gd.authority.sign(listing(gd.authority, uscc=USCC[1]))), stranger)
    with pulling(home, gd, ScriptedPeer(log, [forged])) as puller:
        error = refused(puller, "refused, so is its batch")
    assert "entry 0" in error and "has no registered signing key that is valid" in error
    assert not has(home, forged)


def _payload(env: dsse.Envelope) -> tuple[str, bytes]:
    return env.payload_type, env.payload


def test_a_sanction_naming_a_record_that_is_not_a_listing_is_refused(
    regions: tuple[Region, Region], home: Core
) -> None:
    """A platform confirms a sanction on the authority's member record: a sanction must
    name a listing. The batches before it (the member records) stay stored."""
    _, gd = regions
    log = EvilLog(gd)
    members = member_records(log, gd.authority, gd.platform)
    authority_record = members[0]
    bogus = gd.platform.sign(confirmation(gd.platform, authority_record.record_id))
    with pulling(home, gd, ScriptedPeer(log, [*members, bogus]), batch_max=2) as puller:
        refused(puller, f"listing_id: record {authority_record.record_id} is not a listing")
    assert all(has(home, e) for e in members)
    assert not has(home, bogus)
    assert puller.view.next_index == 2


# --- the projection: a status change before its listing ------------------------------------


def test_an_authority_s_status_change_that_arrives_before_its_listing_counts(
    regions: tuple[Region, Region], home: Core
) -> None:
    """A relay may deliver a status change before the listing it names. The authority
    may make it, so once the listing arrives (in a later batch) the projection finishes
    the check and the listing moves to the change's step."""
    _, gd = regions
    log = EvilLog(gd)
    the_listing = gd.authority.sign(listing(gd.authority, uscc=USCC[1]))
    change = status_change(gd.authority, the_listing.record_id, LifecycleStep.NOTICE_SERVED)
    fake = ScriptedPeer(log, [*member_records(log, gd.authority), change])
    with pulling(home, gd, fake, batch_max=1) as puller:
        eventually(lambda: puller.view.next_index == 2, "the early change is stored")
        assert has(home, change)
        assert home.store.listing(the_listing.record_id) is None  # the peer has not sent it
        fake.grow(the_listing)
        eventually(lambda: puller.view.next_index == 3, "the listing arrives")
    projection = home.store.listing(the_listing.record_id)
    assert projection is not None
    assert projection.step == LifecycleStep.NOTICE_SERVED


@pytest.mark.parametrize("with_listing", [True, False])
def test_a_retirement_signed_by_a_member_is_refused(
    regions: tuple[Region, Region], home: Core, with_listing: bool
) -> None:
    """Only the issuing alliance's gateway retires a listing (issue 18): a peer that
    accepted its authority's RETIRED step has its batch refused, with or without the
    listing in the home gateway's hands."""
    _, gd = regions
    log = EvilLog(gd)
    the_listing = gd.authority.sign(listing(gd.authority, uscc=USCC[1]))
    retire = status_change(gd.authority, the_listing.record_id, LifecycleStep.RETIRED)
    (member,) = member_records(log, gd.authority)
    entries = [member, the_listing, retire] if with_listing else [member, retire]
    with pulling(home, gd, ScriptedPeer(log, entries)) as puller:
        refused(puller, "may not record RETIRED")
    assert not has(home, retire)


# --- erasures: authorized against every record they reach ----------------------------------


@pytest.mark.parametrize("erasure_first", [False, True])
def test_an_erasure_of_a_record_in_its_own_batch_is_authorized_for_it(
    regions: tuple[Region, Region], home: Core, erasure_first: bool
) -> None:
    """The attack: a peer serves an authority's listing and, in the same batch, an
    erasure of it signed by a platform (which may erase only its own records). The
    sequencer would delete the listing's disclosures when the batch lands, so the
    erasure is checked against the records of its batch too, before or after it, and
    the batch is refused."""
    _, gd = regions
    log = EvilLog(gd)
    members = member_records(log, gd.authority, gd.platform)
    the_listing = gd.authority.sign(listing(gd.authority, uscc=USCC[2]))
    erase = gd.platform.sign(erasure(gd.platform, the_listing.record_id))
    batch = [erase, the_listing] if erasure_first else [the_listing, erase]
    with pulling(home, gd, ScriptedPeer(log, [*members, *batch])) as puller:
        refused(puller, f"may not erase record {the_listing.record_id}")
    assert not has(home, the_listing)
    assert not has(home, erase)


def test_an_erasure_by_the_issuer_in_the_listing_s_batch_erases_it(
    regions: tuple[Region, Region], home: Core
) -> None:
    """The honest case of the same shape: the listing's issuer erases it in the batch
    that brings it; the replica stores both and holds none of the listing's values."""
    _, gd = regions
    log = EvilLog(gd)
    the_listing = gd.authority.sign(listing(gd.authority, uscc=USCC[1]))
    assert the_listing.disclosures
    erase = gd.authority.sign(erasure(gd.authority, the_listing.record_id))
    entries = [*member_records(log, gd.authority), the_listing, erase]
    with pulling(home, gd, ScriptedPeer(log, entries)) as puller:
        eventually(lambda: puller.view.next_index == 3, "the batch is stored")
    stored = home.store.record_by_id(the_listing.record_id)
    assert stored is not None and stored.disclosures == ()
    assert has(home, erase)
