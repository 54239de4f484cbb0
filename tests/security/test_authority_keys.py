"""Key ownership and current member records as a deterministic fold (issue 14 item 2,
the member-record times of item 1): every gateway holding the same member records
decides the same, whatever their arrival order (in the style of tests/unit/test_fold.py).

- A key belongs to the member of the record with the smallest (issued_at, record id)
  among all records that list it; a configured anchor key belongs to its gateway.
- The current record of a member at t is its greatest (issued_at, record id) with
  issued_at <= t: a record dated in the future takes effect only when its time comes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.fold import MemberDirectory
from gateway.core.statements import MemberKey, MemberRecord, MemberStatus, Role

TD = "zj.alliance.test"
GATEWAY = f"spiffe://{TD}/gateway/gw"
MEMBERS = [f"spiffe://{TD}/platform/p{i}" for i in range(4)]
KEYS = [bytes([i + 1]) * 32 for i in range(5)]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROBES = [T0 + timedelta(days=d) for d in (-1, 0, 3, 7, 30, 10_000)]


def _record(member: str, keys: list[bytes], day: int, active: bool) -> MemberRecord:
    at = T0 + timedelta(days=day)
    return MemberRecord(
        issuer=GATEWAY,
        member_id=member,
        role=Role.PLATFORM,
        region_code="330100",
        keys=tuple(MemberKey(k, at) for k in keys),
        status=MemberStatus.ACTIVE if active and keys else MemberStatus.SUSPENDED,
        issued_at=at,
    )


def _rid(record: MemberRecord, n: int) -> str:
    return hashlib.sha256(f"{record!r}/{n}".encode()).hexdigest()


records = st.lists(
    st.builds(
        _record,
        st.sampled_from(MEMBERS),
        st.lists(st.sampled_from(KEYS), max_size=3, unique=True),
        st.integers(0, 40).filter(lambda d: d != 20) | st.just(10_000),  # some in the future
        st.booleans(),
    ),
    min_size=1,
    max_size=10,
).map(lambda rs: [(_rid(r, n), r) for n, r in enumerate(rs)])


def _picture(d: MemberDirectory) -> object:
    """Everything the fold answers, as plain values."""
    owners = {k.hex(): d.owner(k) for k in KEYS}
    current = {
        (m, t.isoformat()): (None if (r := d.get(m, t)) is None else r.issued_at.isoformat())
        for m in MEMBERS
        for t in PROBES
    }
    valid = {(m, t.isoformat()): d.keys_valid_at(m, t) for m in MEMBERS for t in PROBES}
    ever = {m: sorted(d.keys_ever(m)) for m in MEMBERS}
    return owners, current, valid, ever


@settings(max_examples=200, deadline=None)
@given(data=st.data(), items=records)
def test_any_order_gives_the_same_owners_and_current_records(
    data: st.DataObject, items: list[tuple[str, MemberRecord]]
) -> None:
    pictures = []
    for _ in range(3):
        order = data.draw(st.permutations(items))
        d = MemberDirectory({KEYS[4]: GATEWAY})
        for record_id, record in order:
            d.apply(record_id, record)
            d.apply(record_id, record)  # a duplicate changes nothing
        pictures.append(_picture(d))
    assert pictures[0] == pictures[1] == pictures[2]


@settings(max_examples=200, deadline=None)
@given(items=records)
def test_the_owner_is_the_member_of_the_earliest_record_listing_the_key(
    items: list[tuple[str, MemberRecord]],
) -> None:
    d = MemberDirectory({KEYS[4]: GATEWAY})
    for record_id, record in items:
        d.apply(record_id, record)
    for key in KEYS[:4]:
        claims = [(r.issued_at, rid, r.member_id) for rid, r in items if key in _raw(r)]
        assert d.owner(key) == (min(claims)[2] if claims else None)
    assert d.owner(KEYS[4]) == GATEWAY  # an anchor's key, whatever the records say
    for member in MEMBERS:
        for at in PROBES:
            for key in d.keys_valid_at(member, at):
                assert d.owner(key) == member  # never valid for anyone but its owner
        assert all(d.owner(k) == member for k in d.keys_ever(member))


@settings(max_examples=100, deadline=None)
@given(items=records, extra=records)
def test_keys_ever_with_extra_records_is_the_fold_with_them(
    items: list[tuple[str, MemberRecord]], extra: list[tuple[str, MemberRecord]]
) -> None:
    """Replication checks a batch against the directory plus the batch's own records."""
    extra = [(f"x{rid}", r) for rid, r in extra]
    d, folded = MemberDirectory(), MemberDirectory()
    for record_id, record in items:
        d.apply(record_id, record)
        folded.apply(record_id, record)
    for record_id, record in extra:
        folded.apply(record_id, record)
    for member in MEMBERS:
        assert sorted(d.keys_ever(member, extra)) == sorted(folded.keys_ever(member))


def test_a_record_dated_in_the_future_takes_effect_only_when_its_time_comes() -> None:
    d = MemberDirectory()
    now = _record(MEMBERS[0], [KEYS[0]], 0, active=True)
    later = _record(MEMBERS[0], [], 10_000, active=False)
    d.apply("a" * 64, now)
    d.apply("b" * 64, later)
    before, after = T0 + timedelta(days=1), T0 + timedelta(days=10_000)
    assert d.get(MEMBERS[0], before) == now
    assert d.keys_valid_at(MEMBERS[0], before) == [KEYS[0]]
    assert d.get(MEMBERS[0], after) == later
    assert d.keys_valid_at(MEMBERS[0], after) == []
    assert d.get(MEMBERS[0]) == later  # without a time: the newest
    assert d.get(MEMBERS[0], T0 - timedelta(days=1)) is None  # not registered yet


def _raw(record: MemberRecord) -> list[bytes]:
    return [k.public_key for k in record.keys]
