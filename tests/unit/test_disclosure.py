"""Redactable records in the codec (protocol revision 4, docs/PROTOCOL.md §3.1): every
way a v2 payload, its commitments or its disclosures can be refused, the redacted
reading, the round trip of each redactable type, and the Erasure statement."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey
from gateway.core.disclosure import Disclosure, Group, check_disclosures, commitment
from gateway.core.statements import (
    ERASURE_V1,
    GOVERNMENT_MEASURE_V2,
    LISTING_V1,
    LISTING_V2,
    SANCTION_CONFIRMATION_V2,
    STATUS_CHANGE_V2,
    ConductType,
    Erasure,
    ErasureBasis,
    GovernmentMeasure,
    GovernmentMeasureKind,
    LifecycleStep,
    Listing,
    ListKind,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.errors import RecordError
from gateway.pb.alliance.v1 import disclosure_pb2 as disclosure_pb
from gateway.pb.alliance.v1 import envelope_pb2 as env_pb
from gateway.pb.alliance.v1 import statements_pb2 as pb

MALL = "spiffe://zj.alliance.example/platform/example-mall"
AMR = "spiffe://zj.alliance.example/authority/zj-amr"
LISTING_ID = "29f9b086c4285cedf6031686c5fdaf7d40b62bbed1e1813bee4b37bf2ab4c255"
T = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
SALT = bytes(range(32))

LISTING = Listing(
    issuer=MALL,
    subject=Subject(
        uscc="91330100716105852F",
        stores=(StoreRef(MALL, "store-20481"),),
        name="Example Trading Co., Ltd.",
    ),
    list=ListKind.BLACKLIST,
    conduct=ConductType.FAKE_TRANSACTIONS,
    region_code="330106",
    decision_ref="ZJ-ACGA-2024-0042",
    listed_at=T,
    summary="Fake transactions to inflate store ratings.",
    legal_basis="PIPL art. 13(3)",
)
STATUS_CHANGE = StatusChange(
    issuer=MALL,
    listing_id=LISTING_ID,
    step=LifecycleStep.REMOVED,
    effective_at=T,
    decision_ref="ZJ-ACGA-2024-0042-R",
    reason="The seller repaired its credit.",
    decided_by="Zhejiang AMR",
)
SANCTION = SanctionConfirmation(
    issuer=MALL,
    listing_id=LISTING_ID,
    measure=SanctionMeasure.CLOSE_STORE,
    action=SanctionAction.APPLIED,
    effective_at=T,
    store_id="store-20481",
    note="Closed at 09:30.",
)
MEASURE = GovernmentMeasure(
    issuer=AMR,
    listing_id=LISTING_ID,
    kind=GovernmentMeasureKind.SUMMONS,
    decision_ref="ZJ-AMR-2024-S-017",
    effective_at=T,
    note="Summoned for 10 December.",
)
ERASURE = Erasure(
    issuer=MALL,
    record_ids=(LISTING_ID,),
    basis=ErasureBasis.PURPOSE_ACHIEVED,
    legal_basis="PIPL art. 47(1): publication ended after the removal.",
    effective_at=T,
)

REDACTABLE = [
    pytest.param(LISTING, LISTING_V2, id="listing"),
    pytest.param(STATUS_CHANGE, STATUS_CHANGE_V2, id="status-change"),
    pytest.param(SANCTION, SANCTION_CONFIRMATION_V2, id="sanction-confirmation"),
    pytest.param(MEASURE, GOVERNMENT_MEASURE_V2, id="government-measure"),
]


def _fixed_salt(group: Group, clear: bytes) -> bytes:
    """Fixed salts, one per group: 0x20.. for SUBJECT, 0x40.. for TEXT, 0x60.. for STORES."""
    return bytes(range(32 * group, 32 * group + 32))


def _encode(stmt: Statement) -> codec.Encoded:
    return codec.encode_record(stmt, salt=_fixed_salt)


def _resign(payload_type: str, payload: bytes, change: Callable[[Any], object]) -> bytes:
    """``payload`` parsed, changed and serialized again (as a faulty signer would)."""
    msg = codec.PAYLOAD_SCHEMAS[payload_type].message()
    msg.ParseFromString(payload)
    change(msg)
    return bytes(msg.SerializeToString(deterministic=True))


def _replace(obj: Any, **changes: object) -> Any:
    """``dataclasses.replace`` for a statement of any type, with fields chosen at run time."""
    return dataclasses.replace(obj, **changes)


def _decode(payload: bytes, disclosures: tuple[Disclosure, ...] = ()) -> Statement:
    return codec.decode_statement(LISTING_V2, payload, disclosures)


def _committed_listing(values: dict[Group, bytes]) -> tuple[bytes, tuple[Disclosure, ...]]:
    """A listing.v2 payload committing to ``values`` as they are (well formed or not),
    with the disclosures that match those commitments."""
    disclosures = tuple(Disclosure(g, SALT, values[g]) for g in sorted(values))

    def commit(msg: pb.Listing) -> None:
        del msg.commitments[:]
        for d in disclosures:
            msg.commitments.add(
                group=disclosure_pb.DisclosureGroup.ValueType(d.group), digest=d.digest
            )

    return _resign(LISTING_V2, _encode(LISTING).payload, commit), disclosures


def _values(stmt: Statement = LISTING) -> dict[Group, bytes]:
    return {d.group: d.value for d in _encode(stmt).disclosures}


# --- round trips and the redacted reading --------------------------------------------


@pytest.mark.parametrize(("stmt", "payload_type"), REDACTABLE)
def test_round_trip_of_each_redactable_type(stmt: Statement, payload_type: str) -> None:
    encoded = codec.encode_record(stmt)
    assert encoded.payload_type == payload_type
    groups = set(codec.PAYLOAD_SCHEMAS[payload_type].groups)
    assert {d.group for d in encoded.disclosures} == groups
    # In any order, the disclosures give the statement back.
    for disclosures in (encoded.disclosures, encoded.disclosures[::-1]):
        assert codec.decode_statement(payload_type, encoded.payload, disclosures) == stmt


@pytest.mark.parametrize(("stmt", "payload_type"), REDACTABLE)
def test_random_salts_are_fresh_and_32_bytes(stmt: Statement, payload_type: str) -> None:
    one, two = codec.encode_record(stmt), codec.encode_record(stmt)
    assert one.payload_type == two.payload_type == payload_type
    assert all(len(d.salt) == 32 for d in one.disclosures)
    assert {d.salt for d in one.disclosures}.isdisjoint(d.salt for d in two.disclosures)
    assert one.payload != two.payload


@pytest.mark.parametrize(
    ("stmt", "payload_type", "committed"),
    [
        (LISTING, LISTING_V2, {"subject": None, "decision_ref": "", "summary": "",
                               "legal_basis": ""}),
        (STATUS_CHANGE, STATUS_CHANGE_V2, {"decision_ref": "", "reason": "", "decided_by": ""}),
        (SANCTION, SANCTION_CONFIRMATION_V2, {"store_id": "", "note": ""}),
        (MEASURE, GOVERNMENT_MEASURE_V2, {"decision_ref": "", "note": ""}),
    ],
)  # fmt: skip
def test_undisclosed_reads_as_redacted(
    stmt: Statement, payload_type: str, committed: dict[str, object]
) -> None:
    redacted = codec.decode_statement(payload_type, codec.encode_record(stmt).payload)
    assert isinstance(redacted, (Listing, StatusChange, SanctionConfirmation, GovernmentMeasure))
    assert redacted.redacted
    for name, unknown in committed.items():
        assert getattr(redacted, name) == unknown, name
    # Everything in the clear is kept; only the committed fields are unknown.
    assert redacted == _replace(stmt, redacted=True, **committed)


def test_a_redacted_removal_skips_the_rules_on_its_committed_fields() -> None:
    """A REMOVED step needs decision_ref, reason and decided_by: unknown once erased."""
    payload = codec.encode_record(STATUS_CHANGE).payload
    stmt = codec.decode_statement(STATUS_CHANGE_V2, payload)
    assert isinstance(stmt, StatusChange) and stmt.redacted
    assert stmt.step is LifecycleStep.REMOVED and stmt.decided_by == ""


@pytest.mark.parametrize(
    ("stmt", "changes", "message"),
    [
        (LISTING, {}, r"^listing: a redacted statement carries no committed value$"),
        (LISTING, {"subject": None}, r"^listing: a redacted statement carries no committed"),
        (STATUS_CHANGE, {"decision_ref": "", "reason": ""}, r"^status_change: a redacted "),
        (SANCTION, {"note": ""}, r"^sanction_confirmation: a redacted statement carries no "),
        (MEASURE, {"note": ""}, r"^government_measure: a redacted statement carries no "),
    ],
)
def test_a_redacted_statement_holds_no_committed_value(
    stmt: Statement, changes: dict[str, object], message: str
) -> None:
    """A placeholder must never pass for a value: redacted means unknown, not empty."""
    with pytest.raises(RecordError, match=message):
        _replace(stmt, redacted=True, **changes)


def test_a_redacted_listing_cannot_be_encoded() -> None:
    redacted = codec.decode_statement(LISTING_V2, _encode(LISTING).payload)
    with pytest.raises(RecordError, match=r"^listing: a redacted listing cannot be encoded"):
        codec.encode_record(redacted)


@pytest.mark.parametrize(("stmt", "payload_type"), REDACTABLE[1:])
def test_a_redacted_statement_of_any_type_cannot_be_encoded(
    stmt: Statement, payload_type: str
) -> None:
    redacted = codec.decode_statement(payload_type, _encode(stmt).payload)
    with pytest.raises(RecordError, match=r"redacted .* cannot be encoded"):
        codec.encode_record(redacted)


def test_key_derived_salts_make_signing_idempotent() -> None:
    key, other = SigningKey.from_raw(bytes(range(32))), SigningKey.generate()
    for stmt in (LISTING, STATUS_CHANGE, SANCTION, MEASURE):
        first, again = codec.seal(stmt, key), codec.seal(stmt, key)
        assert again.record_id == first.record_id
        assert again.disclosures == first.disclosures
        salts = [d.salt for d in first.disclosures]
        assert len(set(salts)) == len(salts)  # one per group
        # Another key, or another statement, gives other salts.
        assert {d.salt for d in codec.seal(stmt, other).disclosures}.isdisjoint(salts)
        assert codec.decode_envelope(first) == stmt
    changed = codec.seal(_replace(LISTING, summary="Another summary."), key)
    assert {d.salt for d in changed.disclosures}.isdisjoint(
        d.salt for d in codec.seal(LISTING, key).disclosures
    )


@pytest.mark.parametrize("length", [0, 31, 33])
def test_a_salt_source_giving_other_than_32_bytes_is_refused(length: int) -> None:
    with pytest.raises(RecordError, match=rf"^disclosure\.salt: must be 32 bytes, got {length}$"):
        codec.encode_record(LISTING, salt=lambda group, clear: bytes(length))


# --- the payload: group fields in the clear, commitments ------------------------------


@pytest.mark.parametrize(
    ("stmt", "payload_type", "name", "number"),
    [
        (LISTING, LISTING_V2, "summary", 10),
        (LISTING, LISTING_V2, "decision_ref", 7),
        (STATUS_CHANGE, STATUS_CHANGE_V2, "reason", 6),
        (SANCTION, SANCTION_CONFIRMATION_V2, "store_id", 7),
        (MEASURE, GOVERNMENT_MEASURE_V2, "note", 8),
    ],
)
def test_a_group_field_in_the_clear_is_refused(
    stmt: Statement, payload_type: str, name: str, number: int
) -> None:
    encoded = _encode(stmt)
    payload = _resign(payload_type, encoded.payload, lambda m: setattr(m, name, "in the clear"))
    root = codec.PAYLOAD_SCHEMAS[payload_type].name
    message = rf"^{root}: unknown field {number} \({name} is not part of this payload type\)$"
    for disclosures in (encoded.disclosures, ()):
        with pytest.raises(RecordError, match=message):
            codec.decode_statement(payload_type, payload, disclosures)


def test_a_subject_in_the_clear_is_refused() -> None:
    encoded = _encode(LISTING)
    payload = _resign(LISTING_V2, encoded.payload, lambda m: m.subject.stores.add())
    with pytest.raises(RecordError, match=r"^listing: unknown field 2 \(subject is not part"):
        _decode(payload, encoded.disclosures)


def test_a_missing_commitment_is_refused() -> None:
    encoded = _encode(LISTING)
    payload = _resign(LISTING_V2, encoded.payload, lambda m: m.commitments.pop())
    with pytest.raises(RecordError, match=r"^listing\.commitments: missing STORES$"):
        _decode(payload)
    with pytest.raises(RecordError, match=r"^listing\.commitments: missing STORES$"):
        _decode(payload, encoded.disclosures[:2])


def test_no_commitment_at_all_is_refused() -> None:
    payload = _resign(LISTING_V2, _encode(LISTING).payload, lambda m: m.ClearField("commitments"))
    with pytest.raises(RecordError, match=r"^listing\.commitments: missing SUBJECT, TEXT, STORES$"):
        _decode(payload)


def test_a_group_committed_twice_is_refused() -> None:
    encoded = _encode(LISTING)
    twice = lambda m: m.commitments.add(group=1, digest=bytes(32))  # noqa: E731
    payload = _resign(LISTING_V2, encoded.payload, twice)
    for disclosures in (encoded.disclosures, ()):
        with pytest.raises(
            RecordError, match=r"^listing\.commitments\[3\]\.group: SUBJECT committed twice$"
        ):
            _decode(payload, disclosures)


def test_a_group_the_type_lacks_is_refused() -> None:
    encoded = _encode(STATUS_CHANGE)
    payload = _resign(
        STATUS_CHANGE_V2, encoded.payload, lambda m: m.commitments.add(group=1, digest=bytes(32))
    )
    with pytest.raises(
        RecordError,
        match=r"^status_change\.commitments\[1\]\.group: a status_change commits to no SUBJECT$",
    ):
        codec.decode_statement(STATUS_CHANGE_V2, payload, encoded.disclosures)


@pytest.mark.parametrize(
    ("group", "message"),
    [
        (0, r"^listing\.commitments\[0\]\.group: must be set \(UNSPECIFIED is not a value\)$"),
        (4, r"^listing\.commitments\[0\]\.group: unknown Group value 4$"),
    ],
)
def test_a_commitment_to_no_group_is_refused(group: int, message: str) -> None:
    def change(m: pb.Listing) -> None:
        m.commitments[0].group = disclosure_pb.DisclosureGroup.ValueType(group)

    with pytest.raises(RecordError, match=message):
        _decode(_resign(LISTING_V2, _encode(LISTING).payload, change))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_a_digest_not_of_32_bytes_is_refused(length: int) -> None:
    def change(m: pb.Listing) -> None:
        m.commitments[0].digest = bytes(length)

    payload = _resign(LISTING_V2, _encode(LISTING).payload, change)
    with pytest.raises(
        RecordError, match=rf"^listing\.commitments\[0\]\.digest: must be 32 bytes, got {length}$"
    ):
        _decode(payload)


def test_a_commitment_carrying_an_unknown_field_is_refused() -> None:
    def change(m: pb.Listing) -> None:
        m.commitments[0].MergeFromString(b"\x18\x01")  # field 3, varint 1

    with pytest.raises(RecordError, match=r"^listing\.commitments: unknown fields"):
        _decode(_resign(LISTING_V2, _encode(LISTING).payload, change))


# --- the disclosures -------------------------------------------------------------------


def test_a_disclosure_of_a_group_not_committed_is_refused() -> None:
    encoded = _encode(STATUS_CHANGE)
    stores = Disclosure(Group.STORES, SALT, b"")
    with pytest.raises(
        RecordError, match=r"^status_change\.disclosures: group 3 is not committed$"
    ):
        codec.decode_statement(STATUS_CHANGE_V2, encoded.payload, (*encoded.disclosures, stores))


def test_a_group_disclosed_twice_is_refused() -> None:
    encoded = _encode(LISTING)
    subject, text, _ = encoded.disclosures
    with pytest.raises(RecordError, match=r"^listing\.disclosures: group SUBJECT disclosed twice$"):
        _decode(encoded.payload, (subject, subject, text))


@pytest.mark.parametrize("part", ["value", "salt"])
def test_a_disclosure_that_does_not_match_is_refused(part: str) -> None:
    encoded = _encode(LISTING)
    subject, text, stores = encoded.disclosures
    other = _values(dataclasses.replace(LISTING, summary="Another summary."))[Group.TEXT]
    changed = {"value": other, "salt": bytes(32)}[part]
    forged = _replace(text, **{part: changed})
    with pytest.raises(
        RecordError,
        match=r"^listing\.disclosures: the TEXT disclosure does not match its commitment$",
    ) as caught:
        _decode(encoded.payload, (subject, forged, stores))
    assert caught.value.reason == "disclosure-mismatch"


def test_a_disclosure_of_another_record_does_not_match() -> None:
    """Same values, other salts: the commitments of one record open no other."""
    one, two = codec.encode_record(LISTING), codec.encode_record(LISTING)
    with pytest.raises(RecordError, match=r"the SUBJECT disclosure does not match") as caught:
        _decode(one.payload, two.disclosures)
    assert caught.value.reason == "disclosure-mismatch"


@pytest.mark.parametrize(
    ("kept", "missing"),
    [
        ((0, 1), "STORES"),
        ((0,), "TEXT, STORES"),
        ((2,), "SUBJECT, TEXT"),
    ],
)
def test_a_partial_disclosure_is_refused(kept: tuple[int, ...], missing: str) -> None:
    encoded = _encode(LISTING)
    some = tuple(encoded.disclosures[i] for i in kept)
    with pytest.raises(
        RecordError,
        match=rf"^listing\.disclosures: missing {missing} \(disclose every group or none\)$",
    ):
        _decode(encoded.payload, some)


def _listing_bytes(**fields: Any) -> bytes:
    return bytes(pb.Listing(**fields).SerializeToString(deterministic=True))


@pytest.mark.parametrize(
    ("group", "value", "message"),
    [
        # SUBJECT holds the id and the name, not the stores...
        (
            Group.SUBJECT,
            _listing_bytes(subject=pb.Subject(
                uscc="91330100716105852F", stores=[pb.StoreRef(platform=MALL, store_id="s")]
            )),
            r"^listing\.disclosures\[SUBJECT\]\.subject: unknown field 3 \(stores is not part",
        ),
        # ...STORES the stores, not the id...
        (
            Group.STORES,
            _listing_bytes(subject=pb.Subject(uscc="91330100716105852F")),
            r"^listing\.disclosures\[STORES\]\.subject: unknown field 1 \(uscc is not part",
        ),
        # ...TEXT no field of another group...
        (
            Group.TEXT,
            _listing_bytes(summary="s", subject=pb.Subject(name="n")),
            r"^listing\.disclosures\[TEXT\]: unknown field 2 \(subject is not part",
        ),
        # ...and no value may override a signed field in the clear.
        (
            Group.TEXT,
            _listing_bytes(summary="s", issuer="spiffe://zj.alliance.example/platform/other"),
            r"^listing\.disclosures\[TEXT\]: unknown field 1 \(issuer is not part",
        ),
        (
            Group.TEXT,
            _listing_bytes(summary="s", listed_at={"seconds": 1}),
            r"^listing\.disclosures\[TEXT\]: unknown field 8 \(listed_at is not part",
        ),
        (
            Group.TEXT,
            _listing_bytes(summary="s") + b"\xf8\x07\x01",  # field 127, varint 1
            r"^listing\.disclosures\[TEXT\]: unknown fields \(not in alliance\.v1\)$",
        ),
        (
            Group.TEXT,
            _listing_bytes(summary="s", commitments=[{"group": 2, "digest": bytes(32)}]),
            r"^listing\.disclosures\[TEXT\]: unknown field 16 \(commitments is not part",
        ),
        (
            Group.TEXT,
            b"\x0a\x05ab",  # a string of 5 bytes, 2 present
            r"^listing\.disclosures\[TEXT\]: value is not a valid listing message",
        ),
    ],
)  # fmt: skip
def test_a_value_holding_a_field_outside_its_group_is_refused(
    group: Group, value: bytes, message: str
) -> None:
    values = _values()
    values[group] = value
    payload, disclosures = _committed_listing(values)
    with pytest.raises(RecordError, match=message):
        _decode(payload, disclosures)


def test_committed_values_of_the_right_shape_are_accepted() -> None:
    """The counterpart of the refusals above: the same construction, well formed."""
    payload, disclosures = _committed_listing(_values())
    assert _decode(payload, disclosures) == LISTING


def test_an_empty_group_is_committed_and_disclosed_as_zero_bytes() -> None:
    no_stores = dataclasses.replace(LISTING, subject=Subject(uscc="91330100716105852F"))
    encoded = _encode(no_stores)
    assert {d.group: d.value for d in encoded.disclosures}[Group.STORES] == b""
    assert _decode(encoded.payload, encoded.disclosures) == no_stores


def test_disclosures_on_a_payload_type_without_groups_are_refused() -> None:
    encoded = _encode(LISTING)
    payload_type, payload = codec.encode_statement(LISTING, LISTING_V1)
    with pytest.raises(RecordError, match=r"^listing: this payload type has no disclosures$"):
        codec.decode_statement(payload_type, payload, encoded.disclosures)
    erasure_type, erasure = codec.encode_statement(ERASURE)
    with pytest.raises(RecordError, match=r"^erasure: this payload type has no disclosures$"):
        codec.decode_statement(erasure_type, erasure, encoded.disclosures[:1])


# --- disclosures on the wire and on envelopes ------------------------------------------


def _pb_disclosure(
    group: int = 1, salt: bytes = SALT, value: bytes = b""
) -> disclosure_pb.Disclosure:
    return disclosure_pb.Disclosure(
        group=disclosure_pb.DisclosureGroup.ValueType(group), salt=salt, value=value
    )


@pytest.mark.parametrize("length", [0, 31, 33])
def test_a_salt_not_of_32_bytes_is_refused_on_the_wire(length: int) -> None:
    items = [_pb_disclosure(), _pb_disclosure(2, salt=bytes(length))]
    with pytest.raises(
        RecordError, match=rf"^envelope\.disclosures\[1\]\.salt: must be 32 bytes, got {length}$"
    ):
        codec.disclosures_from_pb(items)


@pytest.mark.parametrize(
    ("group", "message"),
    [
        (0, r"^envelope\.disclosures\[0\]\.group: must be set \(UNSPECIFIED is not a value\)$"),
        (4, r"^envelope\.disclosures\[0\]\.group: unknown Group value 4$"),
    ],
)
def test_a_disclosure_of_no_group_is_refused_on_the_wire(group: int, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        codec.disclosures_from_pb([_pb_disclosure(group)])


def test_disclosures_round_trip_on_the_wire() -> None:
    encoded = _encode(LISTING)
    wire = codec.disclosures_to_pb(encoded.disclosures)
    assert codec.disclosures_from_pb(wire) == encoded.disclosures


def test_a_salt_not_of_32_bytes_is_refused_by_the_digest() -> None:
    with pytest.raises(RecordError, match=r"^disclosure\.salt: must be 32 bytes, got 31$"):
        commitment(Group.TEXT, bytes(31), b"")
    encoded = _encode(LISTING)
    short = dataclasses.replace(encoded.disclosures[0], salt=bytes(31))
    with pytest.raises(RecordError, match=r"^disclosure\.salt: must be 32 bytes, got 31$"):
        _decode(encoded.payload, (short, *encoded.disclosures[1:]))


@pytest.mark.parametrize("group", [0, 4, 255, 256])
def test_a_digest_of_no_group_is_refused(group: int) -> None:
    with pytest.raises(RecordError, match=rf"^disclosure\.group: {group} is not a group$"):
        commitment(group, SALT, b"")


def test_more_than_3_disclosures_on_an_envelope_are_refused() -> None:
    encoded = _encode(LISTING)
    four = (*encoded.disclosures, encoded.disclosures[0])
    with pytest.raises(RecordError, match=r"^envelope: at most 3 disclosures"):
        dsse.Envelope(payload=encoded.payload, payload_type=LISTING_V2, disclosures=four)
    assert dsse.Envelope(encoded.payload, LISTING_V2, disclosures=encoded.disclosures)
    msg = env_pb.Envelope(
        payload=encoded.payload,
        payload_type=LISTING_V2,
        disclosures=codec.disclosures_to_pb(four),
    )
    with pytest.raises(RecordError, match=r"^envelope: at most 3 disclosures"):
        codec.envelope_from_pb(msg)


def test_check_disclosures_takes_all_or_none() -> None:
    committed = {d.group: d.digest for d in _encode(LISTING).disclosures}
    assert check_disclosures(committed, (), "listing", partial=False) == {}
    encoded = _encode(LISTING)
    committed = {d.group: d.digest for d in encoded.disclosures}
    assert check_disclosures(committed, encoded.disclosures, "listing", partial=False) == {
        d.group: d.value for d in encoded.disclosures
    }
    # A subset only where the caller asks for it (the public feed's proofs).
    subject = encoded.disclosures[:1]
    with pytest.raises(RecordError, match=r"missing TEXT, STORES"):
        check_disclosures(committed, subject, "listing", partial=False)
    assert check_disclosures(committed, subject, "listing", partial=True) == {
        Group.SUBJECT: subject[0].value
    }


# --- erasure.v1 ----------------------------------------------------------------------


def test_erasure_round_trip() -> None:
    payload_type, payload = codec.encode_statement(ERASURE)
    assert payload_type == ERASURE_V1
    assert codec.decode_statement(ERASURE_V1, payload) == ERASURE
    many = dataclasses.replace(ERASURE, record_ids=tuple(f"{i:064x}" for i in range(1000)))
    assert codec.decode_statement(ERASURE_V1, codec.encode_statement(many)[1]) == many


def _erasure_payload(**changes: object) -> bytes:
    msg = pb.Erasure.FromString(codec.encode_statement(ERASURE)[1])
    for name, value in changes.items():
        msg.ClearField(name)  # type: ignore[arg-type]  # a field name chosen at run time
        if isinstance(value, list):
            getattr(msg, name).extend(value)
        else:
            setattr(msg, name, value)
    return bytes(msg.SerializeToString(deterministic=True))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"record_ids": []}, r"^erasure\.record_ids: 1 to 1000 record ids, got 0$"),
        (
            {"record_ids": [f"{i:064x}" for i in range(1001)]},
            r"^erasure\.record_ids: 1 to 1000 record ids, got 1001$",
        ),
        ({"record_ids": [LISTING_ID, LISTING_ID]}, r"^erasure\.record_ids: must not repeat"),
        (
            {"record_ids": [LISTING_ID.upper()]},
            r"^erasure\.record_ids\[0\]: must be 64 lowercase hex characters",
        ),
        (
            {"record_ids": [LISTING_ID, LISTING_ID[:63]]},
            r"^erasure\.record_ids\[1\]: must be 64 lowercase hex characters",
        ),
        ({"legal_basis": ""}, r"^erasure\.legal_basis: must not be empty$"),
        ({"basis": 0}, r"^erasure\.basis: must be set \(UNSPECIFIED is not a value\)$"),
        ({"basis": 5}, r"^erasure\.basis: unknown ErasureBasis value 5$"),
    ],
)
def test_a_malformed_erasure_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        codec.decode_statement(ERASURE_V1, _erasure_payload(**changes))


def test_an_erasure_without_effective_time_is_refused() -> None:
    msg = pb.Erasure.FromString(codec.encode_statement(ERASURE)[1])
    msg.ClearField("effective_at")
    with pytest.raises(RecordError, match=r"^erasure\.effective_at: must be set$"):
        codec.decode_statement(ERASURE_V1, msg.SerializeToString())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"record_ids": ()}, r"^erasure\.record_ids: 1 to 1000 record ids, got 0$"),
        (
            {"record_ids": tuple(f"{i:064x}" for i in range(1001))},
            r"^erasure\.record_ids: 1 to 1000 record ids, got 1001$",
        ),
        ({"record_ids": (LISTING_ID, LISTING_ID)}, r"^erasure\.record_ids: must not repeat"),
        ({"record_ids": ("ab",)}, r"^erasure\.record_ids\[0\]: must be a record id"),
        ({"legal_basis": ""}, r"^erasure\.legal_basis: must not be empty$"),
        ({"basis": 0}, r"^erasure\.basis: 0 is not a ErasureBasis$"),
    ],
)
def test_the_erasure_model_checks_itself(changes: dict[str, object], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        _replace(ERASURE, **changes)


def test_an_erasure_carries_no_field_beyond_5() -> None:
    payload = codec.encode_statement(ERASURE)[1] + b"\x30\x01"  # field 6, varint 1
    with pytest.raises(RecordError, match=r"^erasure: unknown fields \(not in alliance\.v1\)$"):
        codec.decode_statement(ERASURE_V1, payload)
