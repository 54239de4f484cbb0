"""What the public feed publishes (gateway.core.publication), the feed's index and its
change cursor (gateway.core.public_index), and the public service's rate limiter."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

import pytest

from gateway.core.fold import ListingView
from gateway.core.lifecycle import StepRecord, derive
from gateway.core.public_index import IndexedRecord, PublicIndex
from gateway.core.publication import (
    Identification,
    Publication,
    PublicStatus,
    entry_fields,
    may_publish,
    publication,
    publisher_domain,
)
from gateway.core.statements import (
    ConductType,
    Erasure,
    ErasureBasis,
    LifecycleStep,
    Listing,
    ListKind,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
    StatusChange,
    Subject,
)
from gateway.public.ratelimit import ClientRates, RateSettings, retry_after

TD = "zj.alliance.test"
AMR = f"spiffe://{TD}/authority/zj-amr"
SHOP = f"spiffe://{TD}/platform/shop-a"
GD = "gd.alliance.test"
GD_AMR = f"spiffe://{GD}/authority/gd-amr"
GD_GATEWAY = f"spiffe://{GD}/gateway/gd-gw"
ZJ_GATEWAY = f"spiffe://{TD}/gateway/zj-gw"
USCC = "91330100716105852F"
AT = datetime(2026, 12, 1, tzinfo=UTC)


def _listing(issuer: str = AMR, subject: Subject | None = None, ref: str = "D-1") -> Listing:
    return Listing(
        issuer=issuer,
        subject=subject or Subject(uscc=USCC, name="示例公司"),
        list=ListKind.BLACKLIST,
        conduct=ConductType.FAKE_TRANSACTIONS,
        region_code="330100",
        decision_ref=ref,
        listed_at=datetime(2026, 10, 1, tzinfo=UTC),
    )


def _change(listing_id: str, step: LifecycleStep, day: int = 5) -> StatusChange:
    return StatusChange(
        issuer=AMR,
        listing_id=listing_id,
        step=step,
        effective_at=datetime(2026, 11, day, tzinfo=UTC),
        decision_ref="R-1" if step in (LifecycleStep.CORRECTED, LifecycleStep.REMOVED) else "",
        reason="整改完成" if step in (LifecycleStep.CORRECTED, LifecycleStep.REMOVED) else "",
        decided_by="市场监管局" if step is LifecycleStep.REMOVED else "",
    )


def _view(
    listing: Listing, step: LifecycleStep = LifecycleStep.LISTED, step_id: str = ""
) -> ListingView:
    steps = [] if step is LifecycleStep.LISTED else [StepRecord(step_id, step, listing.listed_at)]
    return ListingView(
        listing_id="a" * 64,
        listing=listing,
        lifecycle=derive("a" * 64, listing, steps),
        sanctions={},
    )


def _pub(view: ListingView, removal: StatusChange | None = None) -> Publication | None:
    return publication(view, removal=removal, publisher_trust_domain=TD, at=AT)


def test_an_authoritys_company_listing_is_published_while_in_force() -> None:
    pub = _pub(_view(_listing()))
    assert pub is not None and pub.status is PublicStatus.IN_FORCE
    for step in (
        LifecycleStep.NOTICE_SERVED,
        LifecycleStep.COMMITMENT_SIGNED,
        LifecycleStep.ESCALATED,
    ):
        shown = _pub(_view(_listing(), step))
        assert shown is not None and shown.status is PublicStatus.IN_FORCE


def test_what_is_never_published() -> None:
    person = Subject(person_hmac=hashlib.sha256(b"someone").digest())
    assert _pub(_view(_listing(subject=person))) is None  # a natural person
    assert _pub(_view(_listing(issuer=SHOP))) is None  # reported, not identified
    assert _pub(_view(_listing(issuer=GD_AMR))) is None  # another region publishes it


def _identified(by: str = AMR, day: int = 3, rid: str = "i" * 64) -> Identification:
    return Identification(
        rid,
        StatusChange(
            issuer=by,
            listing_id="a" * 64,
            step=LifecycleStep.IDENTIFIED,
            effective_at=datetime(2026, 10, day, tzinfo=UTC),
            decision_ref="ZJ-AMR-认定-7",
        ),
    )


def _report_view(*idents: Identification) -> ListingView:
    report = _listing(issuer=SHOP, ref="SHOP-A-R-1")
    steps = [StepRecord(i.record_id, i.change.step, i.change.effective_at) for i in idents]
    return ListingView("a" * 64, report, derive("a" * 64, report, steps), {})


def test_an_identified_platform_report_is_published_as_the_authoritys_decision() -> None:
    ident = _identified()
    view = _report_view(ident)
    pub = publication(view, removal=None, identification=ident, publisher_trust_domain=TD, at=AT)
    assert pub is not None and pub.status is PublicStatus.IN_FORCE
    fields = entry_fields(pub, authority_name="浙江省市场监督管理局")
    # The listing decision is the identification: its date, reference and signer.
    assert fields["authority"] == AMR and fields["decision_ref"] == "ZJ-AMR-认定-7"
    assert fields["listed_at"] == "2026-10-03T00:00:00Z"
    assert fields["identification_record_id"] == "i" * 64
    # The platform's report beside it.
    assert fields["reported_by"] == SHOP and fields["report_ref"] == "SHOP-A-R-1"
    assert fields["reported_at"] == "2026-10-01T00:00:00Z"
    # Still reported (no identification given): not published.
    assert publication(view, removal=None, publisher_trust_domain=TD, at=AT) is None
    # An authority's own listing shows no report.
    own = _pub(_view(_listing()))
    assert own is not None
    assert entry_fields(own, authority_name="")["reported_by"] == ""


def test_an_identification_must_be_the_one_the_report_counts_from() -> None:
    early, late = _identified(day=2, rid="e" * 64), _identified(day=9)
    view = _report_view(early, late)
    with pytest.raises(ValueError):  # not the earliest
        publication(view, removal=None, identification=late, publisher_trust_domain=TD, at=AT)
    with pytest.raises(ValueError):  # an authority's listing needs none
        publication(
            _view(_listing()), removal=None, identification=early, publisher_trust_domain=TD, at=AT
        )
    removal = _change("a" * 64, LifecycleStep.REMOVED)
    with pytest.raises(ValueError):  # not an IDENTIFIED step
        publication(
            view,
            removal=None,
            identification=Identification("e" * 64, removal),
            publisher_trust_domain=TD,
            at=AT,
        )


def test_a_report_is_published_by_the_identifying_authoritys_alliance() -> None:
    """A Zhejiang platform's report identified by a Guangdong authority: the Guangdong
    gateway publishes it, as that authority's decision; Zhejiang's does not."""
    ident = _identified(by=GD_AMR)
    view = _report_view(ident)
    assert publisher_domain(view.listing, ident) == GD
    assert publisher_domain(view.listing, None) is None  # not identified: nobody
    assert publisher_domain(_listing(), None) == TD  # an authority's: its issuer's
    pub = publication(view, removal=None, identification=ident, publisher_trust_domain=TD, at=AT)
    assert pub is None
    pub = publication(view, removal=None, identification=ident, publisher_trust_domain=GD, at=AT)
    assert pub is not None and pub.status is PublicStatus.IN_FORCE and pub.authority == GD_AMR
    fields = entry_fields(pub, authority_name="广东省市场监督管理局")
    assert fields["authority"] == GD_AMR and fields["reported_by"] == SHOP
    # Any gateway may come to publish a report; an authority's listing only its own.
    assert may_publish(view.listing, GD) and may_publish(view.listing, TD)
    assert may_publish(_listing(), TD) and not may_publish(_listing(), GD)


def test_a_withdrawn_listing_is_void_and_leaves_only_a_tombstone() -> None:
    withdrawal = StatusChange(
        issuer=AMR,
        listing_id="a" * 64,
        step=LifecycleStep.WITHDRAWN,
        effective_at=datetime(2026, 11, 5, tzinfo=UTC),
        decision_ref="R-2",
        reason="listed in error",
    )
    pub = _pub(_view(_listing(), LifecycleStep.WITHDRAWN, "w" * 64), withdrawal)
    # Void: never published again (issue 18); the change feed keeps a tombstone so a
    # mirror drops it, with nothing about the subject.
    assert pub is not None and pub.status is PublicStatus.EXPIRED
    fields = entry_fields(pub, authority_name="浙江省市场监督管理局")
    assert fields["removal_step"] == "withdrawn" and fields["removal_record_id"] == "w" * 64
    assert fields["status"] == "expired" and fields["record_id"] == "a" * 64
    assert fields["name"] == fields["uscc"] == fields["removal_reason"] == ""
    assert fields["authority_name"] == fields["decision_ref"] == ""


def test_a_closed_listing_is_a_removal_with_the_closing_steps_fields() -> None:
    change = _change("a" * 64, LifecycleStep.REMOVED)
    pub = _pub(_view(_listing(), LifecycleStep.REMOVED, "b" * 64), change)
    assert pub is not None and pub.status is PublicStatus.REMOVED
    fields = entry_fields(pub, authority_name="浙江省市场监督管理局")
    assert fields["status"] == "removed" and fields["removal_record_id"] == "b" * 64
    assert fields["removal_reason"] == "整改完成" and fields["removal_decided_by"] == "市场监管局"
    assert fields["removal_at"] == "2026-11-05T00:00:00Z" and fields["removal_step"] == "removed"
    assert fields["listed_at"] == "2026-10-01T00:00:00Z" and fields["list"] == "blacklist"
    # The rule insists on the removal that decided the step, and only then.
    with pytest.raises(ValueError):
        _pub(_view(_listing(), LifecycleStep.REMOVED, "b" * 64), None)
    with pytest.raises(ValueError):
        _pub(_view(_listing()), change)
    with pytest.raises(ValueError):
        _pub(_view(_listing(), LifecycleStep.CORRECTED, "b" * 64), change)


def _rid(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _records() -> list[IndexedRecord]:
    a, b, c = _rid("a"), _rid("b"), _rid("c")
    return [
        IndexedRecord(0, a, _listing(ref="A")),
        IndexedRecord(1, b, _listing(ref="B")),
        IndexedRecord(2, _rid("p"), _listing(subject=Subject(person_hmac=_bytes("p")))),
        IndexedRecord(3, _rid("s"), _listing(issuer=SHOP)),
        IndexedRecord(4, _rid("n"), _change(a, LifecycleStep.NOTICE_SERVED)),
        IndexedRecord(5, _rid("r"), _change(a, LifecycleStep.REMOVED)),
        IndexedRecord(6, c, _listing(ref="C")),
        IndexedRecord(7, _rid("k"), _change(a, LifecycleStep.CORRECTED, day=20)),
        IndexedRecord(8, _rid("i"), _identifying(_rid("s"), 3)),
    ]


def _bytes(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def test_the_change_feed_places_each_entry_at_its_latest_change() -> None:
    index = PublicIndex(TD)
    index.apply(_records(), 9)
    entries, next_since, more = index.page(0, 10, at=AT)
    assert [(e.change_index, e.publication.listing.decision_ref) for e in entries] == [
        (1, "B"),
        (5, "A"),  # REMOVED outranks the later CORRECTED: its change stays at 5
        (6, "C"),
        (8, "D-1"),  # the platform's report, identified at 8
    ]
    assert entries[1].publication.status is PublicStatus.REMOVED
    assert (next_since, more) == (9, False)
    current, _, _ = index.page(0, 10, at=AT, in_force_only=True)
    assert [e.publication.listing.decision_ref for e in current] == ["B", "C", "D-1"]
    # Paging resumes where the last page stopped.
    first, since, more = index.page(0, 2, at=AT)
    assert more and since == 6 and len(first) == 2
    rest, since, more = index.page(since, 2, at=AT)
    assert [e.change_index for e in rest] == [6, 8] and not more and since == 9
    assert index.page(0, 10, at=AT, unit="44")[0] == []


def test_a_removal_arriving_before_its_listing_counts_when_the_listing_arrives() -> None:
    a = _rid("late")
    index = PublicIndex(TD)
    index.apply([IndexedRecord(0, _rid("r"), _change(a, LifecycleStep.REMOVED))], 1)
    assert len(index) == 0
    index.apply([IndexedRecord(1, a, _listing())], 2)
    (entry,), _, _ = index.page(0, 10, at=AT)
    assert entry.publication.status is PublicStatus.REMOVED and entry.change_index == 1


def test_the_index_is_the_same_whatever_the_order_records_arrive_in() -> None:
    """Two gateways whose logs hold the same records in another order publish the same
    entries (each at its own log's indexes)."""
    records = _records()
    outcomes = set()
    for order in itertools.islice(itertools.permutations(records), 0, 5040, 97):
        index = PublicIndex(TD)
        index.apply(
            [IndexedRecord(i, r.record_id, r.statement) for i, r in enumerate(order)],
            len(order),
        )
        entries, _, _ = index.page(0, 10, at=AT)
        outcomes.add(
            frozenset(
                (
                    e.publication.listing_id,
                    e.publication.status,
                    getattr(e.publication.removal, "record_id", None),
                    getattr(e.publication.identification, "record_id", None),
                )
                for e in entries
            )
        )
    assert len(outcomes) == 1


def _identifying(listing_id: str, day: int, by: str = AMR) -> StatusChange:
    return StatusChange(
        issuer=by,
        listing_id=listing_id,
        step=LifecycleStep.IDENTIFIED,
        effective_at=datetime(2026, 10, day, tzinfo=UTC),
        decision_ref=f"ID-{day}",
    )


def test_an_identification_publishes_a_report_at_its_change_index() -> None:
    s = _rid("s")
    index = PublicIndex(TD)
    index.apply([IndexedRecord(0, s, _listing(issuer=SHOP))], 1)
    assert index.page(0, 10, at=AT)[0] == [] and index.entry(s, AT) is None
    index.apply([IndexedRecord(1, _rid("i9"), _identifying(s, 9))], 2)
    (entry,), _, _ = index.page(0, 10, at=AT)
    assert entry.change_index == 1 and entry.publication.identification is not None
    assert entry.publication.authority == AMR
    # An earlier identification arriving later is the one counted from: the entry moves
    # to its index (a mirror past index 1 sees the change).
    index.apply([IndexedRecord(2, _rid("i2"), _identifying(s, 2))], 3)
    (entry,), _, _ = index.page(0, 10, at=AT)
    assert entry.change_index == 2
    assert entry.publication.identification == Identification(_rid("i2"), _identifying(s, 2))
    # A later one moves nothing.
    index.apply([IndexedRecord(3, _rid("i5"), _identifying(s, 5))], 4)
    assert index.page(0, 10, at=AT)[0][0].change_index == 2
    assert index.reporter_record(s) is None and index.authority_record(s) is None  # no records


def test_an_erased_identification_keeps_no_text_in_the_index() -> None:
    """An erasure of the IDENTIFIED step leaves its leaf without disclosures: the entry
    built from it must not still show its decision reference (the proof could not back
    it), while the entry stays published on the step's signed date and signer."""
    s, i = _rid("s"), _rid("i9")
    index = PublicIndex(TD)
    index.apply(
        [IndexedRecord(0, s, _listing(issuer=SHOP)), IndexedRecord(1, i, _identifying(s, 9))], 2
    )
    before = index.page(0, 10, at=AT)[0][0].publication.identification
    assert before is not None and before.change.decision_ref == "ID-9"
    erasure = Erasure(
        issuer=AMR,
        record_ids=(i,),
        basis=ErasureBasis.DECISION,
        legal_basis="a court order",
        effective_at=AT,
    )
    index.apply([IndexedRecord(2, _rid("e"), erasure)], 3)
    (entry,), _, _ = index.page(0, 10, at=AT)
    ident = entry.publication.identification
    assert ident is not None and ident.record_id == i
    assert ident.change.redacted and ident.change.decision_ref == ""
    assert ident.change.effective_at == datetime(2026, 10, 9, tzinfo=UTC)


def test_a_report_identified_by_another_alliance_stays_off_the_index() -> None:
    s = _rid("s")
    index = PublicIndex(TD)
    index.apply(
        [
            IndexedRecord(0, s, _listing(issuer=SHOP)),
            IndexedRecord(1, _rid("g"), _identifying(s, 3, by=GD_AMR)),
        ],
        2,
    )
    assert index.page(0, 10, at=AT)[0] == []


def _member(member_id: str, issuer: str, key: bytes, day: int = 1) -> MemberRecord:
    return MemberRecord(
        issuer=issuer,
        member_id=member_id,
        role=Role.GATEWAY if "/gateway/" in member_id else Role.PLATFORM,
        region_code="330100" if TD in member_id else "440300",
        keys=(MemberKey(key, datetime(2026, 1, 1, tzinfo=UTC)),),
        status=MemberStatus.ACTIVE,
        issued_at=datetime(2026, 1, day, tzinfo=UTC),
    )


def _keyid(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()


def test_the_identifying_alliances_index_publishes_another_alliances_report() -> None:
    """Guangdong's index holds Zhejiang's report (replicated) and publishes it once a
    Guangdong authority identified it, whatever order the records come in; Zhejiang's
    index, on the same records, does not. An authority listing of Zhejiang stays off
    Guangdong's index."""
    s, zj_listing = _rid("s"), _rid("zj-listing")
    records = [
        IndexedRecord(0, s, _listing(issuer=SHOP)),
        IndexedRecord(1, zj_listing, _listing(ref="ZJ-own")),
        IndexedRecord(2, _rid("g"), _identifying(s, 3, by=GD_AMR)),
        IndexedRecord(3, _rid("i9"), _identifying(s, 9)),  # Zhejiang's, later: not the one
    ]
    seen = set()
    for order in itertools.permutations(records):
        gd = PublicIndex(GD)
        gd.apply([IndexedRecord(i, r.record_id, r.statement) for i, r in enumerate(order)], 4)
        entries = gd.page(0, 10, at=AT)[0]
        seen.add(tuple((e.publication.listing_id, e.publication.authority) for e in entries))
    assert seen == {((s, GD_AMR),)}
    zj = PublicIndex(TD)
    zj.apply(records, 4)
    assert [e.publication.listing_id for e in zj.page(0, 10, at=AT)[0]] == [zj_listing]


def test_the_reporting_alliances_gateway_record_for_a_proof() -> None:
    """The record that vouches for another alliance's platform: that alliance's gateway's
    own record below the tree size, the newest listing a key that signed the platform's
    record, else the newest; none for a platform of the index's own alliance."""
    old, new, other = _bytes("old"), _bytes("new"), _bytes("other")
    s, own = _rid("s"), _rid("own")
    zj_shop_record = _member(SHOP, ZJ_GATEWAY, _bytes("shop"))
    records = [
        IndexedRecord(0, _rid("gw-old"), _member(ZJ_GATEWAY, ZJ_GATEWAY, old)),
        IndexedRecord(1, _rid("shop"), zj_shop_record, (_keyid(old),)),
        IndexedRecord(2, s, _listing(issuer=SHOP)),
        IndexedRecord(3, _rid("g"), _identifying(s, 3, by=GD_AMR)),
        IndexedRecord(4, _rid("gw-new"), _member(ZJ_GATEWAY, ZJ_GATEWAY, new, day=2)),
        # not self-issued, or of another domain: never the one
        IndexedRecord(5, _rid("gw-2"), _member(f"spiffe://{TD}/gateway/gw-2", ZJ_GATEWAY, old)),
        IndexedRecord(6, _rid("gw-gd"), _member(GD_GATEWAY, GD_GATEWAY, old)),
        IndexedRecord(7, own, _listing(issuer=f"spiffe://{GD}/platform/gd-shop")),
        IndexedRecord(8, _rid("g2"), _identifying(own, 3, by=GD_AMR)),
    ]
    gd = PublicIndex(GD)
    gd.apply(records, 9)
    assert gd.reporter_record(s) == (_rid("shop"), zj_shop_record)
    # The newer record lists no key that signed the platform's: the older one vouches.
    assert gd.reporter_gateway_record(s, 9) == (_rid("gw-old"), records[0].statement)
    assert gd.reporter_gateway_record(s, 1) == (_rid("gw-old"), records[0].statement)
    assert gd.reporter_gateway_record(s, 0) is None  # none below the tree size
    assert gd.reporter_gateway_record(own, 9) is None  # Guangdong's own platform
    assert gd.reporter_gateway_record(_rid("nothing"), 9) is None
    # Once the platform's record is signed by the new key, the new record vouches.
    resigned = IndexedRecord(9, _rid("shop2"), _member(SHOP, ZJ_GATEWAY, other, 2), (_keyid(new),))
    gd.apply([resigned], 10)
    assert gd.reporter_gateway_record(s, 10) == (_rid("gw-new"), records[4].statement)
    # No key matches: the newest.
    gd.apply([IndexedRecord(10, _rid("shop3"), _member(SHOP, ZJ_GATEWAY, other, 3), ())], 11)
    assert gd.reporter_gateway_record(s, 11) == (_rid("gw-new"), records[4].statement)


def test_the_index_refuses_records_outside_its_window() -> None:
    index = PublicIndex(TD)
    index.apply(_records()[:2], 2)
    with pytest.raises(ValueError):
        index.apply(_records()[:1], 3)
    with pytest.raises(ValueError):
        index.apply([], 1)


def test_rate_limit_per_client_with_bounded_table() -> None:
    now = [0.0]
    rates = ClientRates(RateSettings(2.0, 3, max_clients=2), clock=lambda: now[0])
    assert [rates.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rates.take("a")
    assert wait == pytest.approx(0.5) and retry_after(wait) == "1"
    assert rates.take("b") == 0.0  # another client has its own bucket
    now[0] += 0.5
    assert rates.take("a") == 0.0
    rates.take("c")
    assert len(rates) == 2  # the bound: the idlest client's bucket was dropped
    assert ClientRates(RateSettings(0, 1)).take("x") == 0.0  # 0: no limit
