"""Protobuf <-> domain: round trips, strict decoding, enum parity with the proto."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from gateway.codec import (
    PAYLOAD_SCHEMAS,
    decode_statement,
    encode_record,
    encode_statement,
    statement_to_pb,
    subject_from_pb,
    subject_to_pb,
    timestamp_from_pb,
    timestamp_to_pb,
)
from gateway.core.crypto import SigningKey
from gateway.core.disclosure import Disclosure
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    LISTING_V1,
    PAYLOAD_TYPES,
    SANCTION_CONFIRMATION_V1,
    STATUS_CHANGE_V1,
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.errors import RecordError
from gateway.pb.alliance.v1 import statements_pb2 as pb

PLATFORM = "spiffe://zj.alliance/platform/shop"
GATEWAY = "spiffe://zj.alliance/gateway/hz"
USCC = "91330100716105852F"
T0 = datetime(2024, 11, 30, 8, 0, 0, 123456, tzinfo=UTC)
LID = "ab" * 32
LISTING_TYPE = "application/vnd.alliance.listing.v1+protobuf"
# The clear v1 forms of the redactable statements: still decoded (records in logs).
V1_TYPES = {
    Listing: LISTING_V1,
    StatusChange: STATUS_CHANGE_V1,
    SanctionConfirmation: SANCTION_CONFIRMATION_V1,
}
_KEY_1 = SigningKey.from_raw(b"\x01" * 32)
_KEY_2 = SigningKey.from_raw(b"\x02" * 32)


def _proof(key: SigningKey) -> bytes:
    """A member-record.v2 key's proof of possession, for PLATFORM."""
    return prove_possession(key, PLATFORM)


def _statements() -> list[Statement]:
    return [
        Listing(
            issuer=PLATFORM,
            subject=Subject(uscc=USCC, stores=(StoreRef(PLATFORM, "s-1"),), name="Seller"),
            list=ListKind.BLACKLIST,
            conduct=ConductType.FAKE_TRANSACTIONS,
            region_code="330100",
            decision_ref="ZJ-1",
            listed_at=T0,
            summary="brushing",
            legal_basis="PIPL art. 13(3)",
        ),
        Listing(
            issuer=PLATFORM,
            subject=Subject(person_hmac=bytes(range(32))),
            list=ListKind.KEY_SCRUTINY,
            conduct=ConductType.OTHER,
            conduct_other="something new",
            region_code="660000",
            decision_ref="XJ-1",
            listed_at=T0,
            correction_deadline=T0 + timedelta(days=30),
        ),
        StatusChange(
            issuer=PLATFORM,
            listing_id=LID,
            step=LifecycleStep.REMOVED,
            effective_at=T0,
            decision_ref="court",
            reason="deleted",
            decided_by="Hangzhou court",
        ),
        SanctionConfirmation(
            issuer=PLATFORM,
            listing_id=LID,
            measure=SanctionMeasure.OTHER,
            measure_other="m",
            action=SanctionAction.LIFTED,
            effective_at=T0,
            store_id="s-1",
            note="n",
        ),
        MemberRecord(
            issuer=GATEWAY,
            member_id=PLATFORM,
            role=Role.PLATFORM,
            region_code="330100",
            keys=(
                MemberKey(_KEY_1.public_key().raw, T0, possession=_proof(_KEY_1)),
                MemberKey(
                    _KEY_2.public_key().raw,
                    T0,
                    T0 + timedelta(days=365),
                    possession=_proof(_KEY_2),
                ),
            ),
            status=MemberStatus.ACTIVE,
            issued_at=T0,
            display_name="Shop",
        ),
    ]


@pytest.mark.parametrize("stmt", _statements(), ids=lambda s: type(s).__name__)
def test_round_trip(stmt: Statement) -> None:
    encoded = encode_record(stmt)
    assert encoded.payload_type == PAYLOAD_TYPES[type(stmt)]
    assert len(encoded.disclosures) == len(PAYLOAD_SCHEMAS[encoded.payload_type].groups)
    assert decode_statement(encoded.payload_type, encoded.payload, encoded.disclosures) == stmt


@pytest.mark.parametrize(
    "stmt",
    [s for s in _statements() if type(s) in V1_TYPES],
    ids=lambda s: type(s).__name__,
)
def test_round_trip_of_the_clear_v1_form(stmt: Statement) -> None:
    payload_type, payload = encode_statement(stmt, V1_TYPES[type(stmt)])
    assert payload_type == V1_TYPES[type(stmt)]
    assert decode_statement(payload_type, payload) == stmt


def test_payload_built_with_protobuf_round_trips() -> None:
    listed = Timestamp(seconds=1_732_953_600, nanos=5_000)
    msg = pb.Listing(
        issuer=PLATFORM,
        subject=pb.Subject(uscc=USCC, stores=[pb.StoreRef(platform=PLATFORM, store_id="77")]),
        list=pb.LIST_KIND_BLACKLIST,
        conduct=pb.CONDUCT_TYPE_COUNTERFEIT,
        region_code="330106",
        decision_ref="ref",
        listed_at=listed,
    )
    raw = msg.SerializeToString()
    stmt = decode_statement(LISTING_TYPE, raw)
    assert isinstance(stmt, Listing)
    assert stmt.conduct is ConductType.COUNTERFEIT
    assert stmt.subject is not None and stmt.subject.stores == (StoreRef(PLATFORM, "77"),)
    assert stmt.listed_at == datetime(2024, 11, 30, 8, 0, 0, 5, tzinfo=UTC)
    assert stmt.correction_deadline is None
    again = pb.Listing()
    again.ParseFromString(encode_statement(stmt, LISTING_TYPE)[1])
    assert again == msg


# --- enum parity with the proto ------------------------------------------------------

ENUM_PAIRS: list[tuple[EnumDescriptor, type[enum.IntEnum], str]] = [
    (pb.ListKind.DESCRIPTOR, ListKind, "LIST_KIND_"),
    (pb.ConductType.DESCRIPTOR, ConductType, "CONDUCT_TYPE_"),
    (pb.LifecycleStep.DESCRIPTOR, LifecycleStep, "LIFECYCLE_STEP_"),
    (pb.SanctionMeasure.DESCRIPTOR, SanctionMeasure, "SANCTION_MEASURE_"),
    (pb.SanctionAction.DESCRIPTOR, SanctionAction, "SANCTION_ACTION_"),
    (pb.Role.DESCRIPTOR, Role, "ROLE_"),
    (pb.MemberStatus.DESCRIPTOR, MemberStatus, "MEMBER_STATUS_"),
]


# Ids name the domain enum: a descriptor's repr carries a memory address, which would
# make the test ids differ from run to run.
@pytest.mark.parametrize(
    ("desc", "cls", "prefix"), ENUM_PAIRS, ids=[cls.__name__ for _, cls, _ in ENUM_PAIRS]
)
def test_domain_enums_mirror_proto(
    desc: EnumDescriptor, cls: type[enum.IntEnum], prefix: str
) -> None:
    from_proto = {v.name.removeprefix(prefix): v.number for v in desc.values if v.number != 0}
    assert from_proto == {m.name: m.value for m in cls}


# --- strict decoding -----------------------------------------------------------------


def _listing_pb() -> pb.Listing:
    msg = statement_to_pb(_statements()[0])
    assert isinstance(msg, pb.Listing)
    return msg


def test_unknown_payload_type() -> None:
    with pytest.raises(RecordError, match=r"^unsupported payload_type 'application/json'$"):
        decode_statement("application/json", b"")


def test_garbage_bytes_are_record_error() -> None:
    with pytest.raises(RecordError, match=r"^listing: payload is not a valid listing message"):
        decode_statement(LISTING_TYPE, b"\xff\xff\xff")


def test_payload_must_be_bytes() -> None:
    with pytest.raises(RecordError, match=r"^listing: payload must be bytes$"):
        decode_statement(LISTING_TYPE, "x")  # type: ignore[arg-type]


def test_unknown_top_level_field_rejected() -> None:
    raw = _listing_pb().SerializeToString() + b"\xa0\x06\x01"  # field 100, varint 1
    with pytest.raises(RecordError, match=r"^listing: unknown fields"):
        decode_statement(LISTING_TYPE, raw)


def test_unknown_nested_field_rejected() -> None:
    msg = _listing_pb()
    store = msg.subject.stores[0]
    store.MergeFromString(b"\x18\x01")  # StoreRef field 3 does not exist
    with pytest.raises(RecordError, match=r"^listing\.subject\.stores: unknown fields"):
        decode_statement(LISTING_TYPE, msg.SerializeToString())


def test_unknown_field_in_timestamp_rejected() -> None:
    msg = _listing_pb()
    msg.listed_at.MergeFromString(b"\x18\x01")
    with pytest.raises(RecordError, match=r"^listing\.listed_at: unknown fields"):
        decode_statement(LISTING_TYPE, msg.SerializeToString())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("list", 0, r"^listing\.list: must be set \(UNSPECIFIED is not a value\)$"),
        ("list", 9, r"^listing\.list: unknown ListKind value 9$"),
        ("conduct", 0, r"^listing\.conduct: must be set"),
        ("conduct", 50, r"^listing\.conduct: unknown ConductType value 50$"),
    ],
)
def test_listing_enum_errors(field: str, value: int, message: str) -> None:
    msg = _listing_pb()
    setattr(msg, field, value)
    with pytest.raises(RecordError, match=message):
        decode_statement(LISTING_TYPE, msg.SerializeToString())


def test_listing_missing_parts() -> None:
    msg = _listing_pb()
    msg.ClearField("listed_at")
    with pytest.raises(RecordError, match=r"^listing\.listed_at: must be set$"):
        decode_statement(LISTING_TYPE, msg.SerializeToString())
    msg = _listing_pb()
    msg.ClearField("subject")
    with pytest.raises(RecordError, match=r"^listing\.subject: must be set$"):
        decode_statement(LISTING_TYPE, msg.SerializeToString())
    msg = _listing_pb()
    msg.subject.ClearField("uscc")
    with pytest.raises(RecordError, match=r"^subject: exactly one of uscc or person_hmac"):
        decode_statement(LISTING_TYPE, msg.SerializeToString())


def test_domain_rules_apply_after_decoding() -> None:
    msg = _listing_pb()
    msg.subject.uscc = "91110108551385082R"
    with pytest.raises(RecordError, match=r"^subject\.uscc: check character is R, expected Q$"):
        decode_statement(LISTING_TYPE, msg.SerializeToString())
    msg = _listing_pb()
    msg.correction_deadline.CopyFrom(msg.listed_at)
    with pytest.raises(RecordError, match=r"^listing\.correction_deadline: must be after"):
        decode_statement(LISTING_TYPE, msg.SerializeToString())


def test_empty_uscc_in_oneof_is_rejected() -> None:
    # Setting the oneof to "" still selects uscc: it must be a valid code.
    msg = _listing_pb()
    msg.subject.uscc = ""
    with pytest.raises(RecordError, match=r"^subject\.uscc: must be 18 characters, got 0$"):
        decode_statement(LISTING_TYPE, msg.SerializeToString())


def _signed_message(stmt: Statement) -> tuple[str, Message, tuple[Disclosure, ...]]:
    """``stmt`` as its payload type signs it (a redactable one: its clear fields and
    commitments), parsed back into its message, with its disclosures."""
    encoded = encode_record(stmt)
    msg = PAYLOAD_SCHEMAS[encoded.payload_type].message.FromString(encoded.payload)
    return encoded.payload_type, msg, encoded.disclosures


@pytest.mark.parametrize(
    ("stmt_index", "field", "value", "message"),
    [
        (2, "step", 0, r"^status_change\.step: must be set"),
        (2, "step", 12, r"^status_change\.step: unknown LifecycleStep value 12$"),
        (3, "measure", 0, r"^sanction_confirmation\.measure: must be set"),
        (3, "action", 4, r"^sanction_confirmation\.action: unknown SanctionAction value 4$"),
        # NOT_APPLICABLE (3) carries no measure: one that names one is refused.
        (3, "action", 3, r"^sanction_confirmation\.measure: must be unset when the action"),
        (4, "role", 0, r"^member_record\.role: must be set"),
        (4, "status", 5, r"^member_record\.status: unknown MemberStatus value 5$"),
    ],
)
def test_other_enum_errors(stmt_index: int, field: str, value: int, message: str) -> None:
    stmt = _statements()[stmt_index]
    payload_type, msg, disclosures = _signed_message(stmt)
    setattr(msg, field, value)
    with pytest.raises(RecordError, match=message):
        decode_statement(payload_type, msg.SerializeToString(), disclosures)


@pytest.mark.parametrize(
    ("stmt_index", "field", "message"),
    [
        (2, "effective_at", r"^status_change\.effective_at: must be set$"),
        (3, "effective_at", r"^sanction_confirmation\.effective_at: must be set$"),
        (4, "issued_at", r"^member_record\.issued_at: must be set$"),
    ],
)
def test_missing_timestamps(stmt_index: int, field: str, message: str) -> None:
    stmt = _statements()[stmt_index]
    payload_type, msg, disclosures = _signed_message(stmt)
    msg.ClearField(field)
    with pytest.raises(RecordError, match=message):
        decode_statement(payload_type, msg.SerializeToString(), disclosures)


def test_member_key_missing_not_before() -> None:
    msg = statement_to_pb(_statements()[4])
    assert isinstance(msg, pb.MemberRecord)
    msg.keys[0].ClearField("not_before")
    with pytest.raises(RecordError, match=r"^member_key\.not_before: must be set$"):
        decode_statement(PAYLOAD_TYPES[MemberRecord], msg.SerializeToString())


# --- timestamps and subjects ---------------------------------------------------------


def test_timestamp_conversion() -> None:
    ts = timestamp_to_pb(datetime(1970, 1, 1, 0, 0, 1, 500, tzinfo=UTC))
    assert (ts.seconds, ts.nanos) == (1, 500_000)
    ts = timestamp_to_pb(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))
    assert (ts.seconds, ts.nanos) == (-1, 999_999_000)
    cst = timezone(timedelta(hours=8))
    assert timestamp_to_pb(datetime(1970, 1, 1, 8, tzinfo=cst)).seconds == 0
    out = timestamp_from_pb(Timestamp(seconds=0, nanos=1_999))
    assert out == datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert out.tzinfo is UTC


@given(st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC)))
def test_timestamp_round_trip(dt: datetime) -> None:
    assert timestamp_from_pb(timestamp_to_pb(dt)) == dt


def test_timestamp_errors() -> None:
    with pytest.raises(RecordError, match=r"^timestamp: must be timezone-aware \(UTC\)$"):
        timestamp_to_pb(datetime(2024, 1, 1))
    with pytest.raises(RecordError, match=r"^x: nanos must be in 0\.\.999999999, got -1$"):
        timestamp_from_pb(Timestamp(seconds=0, nanos=-1), field="x")
    with pytest.raises(RecordError, match=r"^x: nanos must be in"):
        timestamp_from_pb(Timestamp(seconds=0, nanos=1_000_000_000), field="x")
    with pytest.raises(RecordError, match=r"^x: seconds 253402300800 is outside years"):
        timestamp_from_pb(Timestamp(seconds=253_402_300_800), field="x")
    with pytest.raises(RecordError, match=r"^x: seconds -62135596801 is outside"):
        timestamp_from_pb(Timestamp(seconds=-62_135_596_801), field="x")


def test_subject_conversion() -> None:
    person = Subject(person_hmac=b"\x07" * 32)
    msg = subject_to_pb(person)
    assert msg.WhichOneof("id") == "person_hmac"
    assert subject_from_pb(msg) == person
    company = Subject(uscc=USCC, name="N", stores=(StoreRef(PLATFORM, "1"),))
    msg = subject_to_pb(company)
    assert msg.WhichOneof("id") == "uscc"
    assert subject_from_pb(msg) == company


def test_encoding_is_deterministic() -> None:
    stmt = _statements()[4]
    assert encode_statement(stmt) == encode_statement(stmt)
