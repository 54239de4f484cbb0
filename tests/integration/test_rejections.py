"""Malformed input is refused with the right status code, stores nothing, and leaves the
gateway serving (real gateway on port 0, SQLite and PostgreSQL).

Status codes: a record or request that is wrong in itself is INVALID_ARGUMENT (bad
signature, bad bytes, bad field, bad id or token, a proof or range outside the log); a
well-formed id naming nothing is NOT_FOUND; a message over ``max_message_bytes`` is
RESOURCE_EXHAUSTED, refused by gRPC before the gateway reads it.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import grpc
import pytest
from gwtest import (
    BACKENDS,
    USCC,
    Alliance,
    Member,
    audit,
    exchange,
    listing,
    pg_base_url,
    pg_schema_url,
    running_gateway,
    submit,
)

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey
from gateway.core.notes import Checkpoint, CosignatureSigner
from gateway.core.statements import PAYLOAD_TYPES, Listing, StatusChange
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import envelope_pb2 as env_pb
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import statements_pb2 as pb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
OK = grpc.StatusCode.OK
MAX_SUBJECTS = 10
MAX_MESSAGE_BYTES = 64 * 1024
LISTING_TYPE = PAYLOAD_TYPES[Listing]
# Field 100 as a varint: a field alliance.v1 does not define.
_UNKNOWN_FIELD = b"\xa0\x06\x01"


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return OK


@pytest.fixture(scope="module", params=BACKENDS)
def backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like conftest's ``database_url``, once per module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"
        return
    base = pg_base_url()
    assert base is not None
    with pg_schema_url(base) as url:
        yield url


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    a = Alliance(tmp_path_factory.mktemp("zj"), "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    a.member("monitor", "ndrc", region="110000")
    return a


@pytest.fixture(scope="module")
def gw(alliance: Alliance, backend_url: str) -> Iterator[Gateway]:
    config = alliance.config(
        backend_url,
        max_subjects_per_check=MAX_SUBJECTS,
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    with running_gateway(config, register=tuple(alliance.members.values())) as g:
        amr = alliance.members["zj-amr"]
        with amr.channel(g.port) as ch:  # a few entries for the proofs and lookups
            for uscc in USCC:
                submit(ch, amr.sign(listing(amr, uscc=uscc)))
        yield g


@pytest.fixture
def amr(alliance: Alliance) -> Member:
    return alliance.members["zj-amr"]


@pytest.fixture
def channel(gw: Gateway, amr: Member) -> Iterator[grpc.Channel]:
    with amr.channel(gw.port) as ch:
        yield ch


# --- records ---------------------------------------------------------------------------


def _listing_pb(amr: Member) -> pb.Listing:
    msg = codec.statement_to_pb(listing(amr, decision_ref=f"R-{secrets.token_hex(6)}"))
    assert isinstance(msg, pb.Listing)
    return msg


def _signed(amr: Member, msg: pb.Listing, payload_type: str = LISTING_TYPE) -> env_pb.Envelope:
    """``msg`` signed as ``payload_type``; as a listing.v2, with its groups moved into
    disclosures (codec.split_message checks no rule: the bad values travel)."""
    if payload_type != LISTING_TYPE:
        return codec.envelope_to_pb(
            dsse.sign(payload_type, msg.SerializeToString(), amr.signing_key)
        )
    encoded = codec.split_message(payload_type, msg)
    env = dsse.sign(payload_type, encoded.payload, amr.signing_key)
    return codec.envelope_to_pb(dsse.with_disclosures(env, encoded.disclosures))


def _tampered(amr: Member) -> env_pb.Envelope:
    env = _signed(amr, _listing_pb(amr))
    tampered = env.payload.replace(b"330000", b"330100", 1)  # region edited after signing
    assert tampered != env.payload
    env.payload = tampered
    return env


def _wrong_key(amr: Member) -> env_pb.Envelope:
    msg = _listing_pb(amr)
    return codec.envelope_to_pb(
        dsse.sign(LISTING_TYPE, msg.SerializeToString(), SigningKey.generate())
    )


def _truncated_signature(amr: Member) -> env_pb.Envelope:
    env = _signed(amr, _listing_pb(amr))
    env.signatures[0].sig = env.signatures[0].sig[:63]
    return env


def _type_swapped(amr: Member) -> env_pb.Envelope:
    """Same bytes and signature, another payload type: PAE covers the type."""
    env = _signed(amr, _listing_pb(amr))
    env.payload_type = PAYLOAD_TYPES[StatusChange]
    return env


def _type_swapped_and_signed(amr: Member) -> env_pb.Envelope:
    """Listing bytes honestly signed as a status change: they do not parse as one."""
    return _signed(amr, _listing_pb(amr), PAYLOAD_TYPES[StatusChange])


def _empty(amr: Member) -> env_pb.Envelope:
    return env_pb.Envelope()


def _unsigned(amr: Member) -> env_pb.Envelope:
    env = _signed(amr, _listing_pb(amr))
    del env.signatures[:]
    return env


def _unknown_type(amr: Member) -> env_pb.Envelope:
    return _signed(amr, _listing_pb(amr), "application/vnd.alliance.verdict.v1+protobuf")


def _unknown_field(amr: Member) -> env_pb.Envelope:
    env = _signed(amr, _listing_pb(amr))
    payload = env.payload + _UNKNOWN_FIELD
    signed = codec.envelope_from_pb(env)
    resigned = dsse.sign(LISTING_TYPE, payload, amr.signing_key)
    return codec.envelope_to_pb(dsse.with_disclosures(resigned, signed.disclosures))


def _unknown_nested_field(amr: Member) -> env_pb.Envelope:
    msg = _listing_pb(amr)
    msg.subject.MergeFromString(_UNKNOWN_FIELD)
    return _signed(amr, msg)


def _invalid_uscc(amr: Member) -> env_pb.Envelope:
    msg = _listing_pb(amr)
    msg.subject.uscc = "91110108551385082R"  # the check character should be Q
    return _signed(amr, msg)


def _absent_timestamp(amr: Member) -> env_pb.Envelope:
    msg = _listing_pb(amr)
    msg.ClearField("listed_at")
    return _signed(amr, msg)


def _out_of_range_timestamp(amr: Member) -> env_pb.Envelope:
    msg = _listing_pb(amr)
    msg.listed_at.nanos = -1
    return _signed(amr, msg)


def _unknown_enum(amr: Member) -> env_pb.Envelope:
    msg = _listing_pb(amr)
    msg.list = 7  # type: ignore[assignment]  # an enum value alliance.v1 does not define
    return _signed(amr, msg)


def _not_protobuf(amr: Member) -> env_pb.Envelope:
    return codec.envelope_to_pb(dsse.sign(LISTING_TYPE, b"\xff\xff\xff", amr.signing_key))


BAD_RECORDS: dict[str, Callable[[Member], env_pb.Envelope]] = {
    "tampered-payload": _tampered,
    "wrong-key": _wrong_key,
    "truncated-signature": _truncated_signature,
    "payload-type-swap": _type_swapped,
    "payload-type-swap-resigned": _type_swapped_and_signed,
    "empty-envelope": _empty,
    "no-signatures": _unsigned,
    "unknown-payload-type": _unknown_type,
    "unknown-field": _unknown_field,
    "unknown-nested-field": _unknown_nested_field,
    "invalid-uscc": _invalid_uscc,
    # A protobuf Timestamp is always UTC, so a "naive" time cannot travel; absent and
    # out-of-range ones can.
    "absent-timestamp": _absent_timestamp,
    "out-of-range-timestamp": _out_of_range_timestamp,
    "unknown-enum-value": _unknown_enum,
    "not-protobuf": _not_protobuf,
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_bad_record_is_invalid_and_not_stored(
    gw: Gateway, amr: Member, channel: grpc.Channel, case: str
) -> None:
    env = BAD_RECORDS[case](amr)
    size = gw.core.store.log_size()
    request = ex.SubmitRecordRequest(envelope=env)
    assert _code(lambda: exchange(channel).SubmitRecord(request, timeout=10)) == INVALID
    assert gw.core.store.log_size() == size


def test_bulk_submission_reports_each_bad_record(
    gw: Gateway, amr: Member, channel: grpc.Channel
) -> None:
    cases = sorted(BAD_RECORDS)
    good = _signed(amr, _listing_pb(amr))
    requests = [ex.SubmitRecordRequest(envelope=BAD_RECORDS[c](amr)) for c in cases]
    requests.append(ex.SubmitRecordRequest(envelope=good))
    size = gw.core.store.log_size()
    results = list(exchange(channel).SubmitRecords(iter(requests), timeout=20))
    codes = {c: r.code for c, r in zip([*cases, "good"], results, strict=True)}
    assert codes == {**dict.fromkeys(cases, INVALID.value[0]), "good": OK.value[0]}
    assert gw.core.store.log_size() == size + 1


def test_oversized_message_is_resource_exhausted(
    gw: Gateway, amr: Member, channel: grpc.Channel
) -> None:
    env = codec.envelope_to_pb(dsse.sign(LISTING_TYPE, b"\x00" * 100 * 1024, amr.signing_key))
    size = gw.core.store.log_size()
    code = _code(
        lambda: exchange(channel).SubmitRecord(ex.SubmitRecordRequest(envelope=env), timeout=10)
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert gw.core.store.log_size() == size


# --- lookups ---------------------------------------------------------------------------


def _subjects(n: int) -> list[pb.Subject]:
    return [pb.Subject(uscc=USCC[i % len(USCC)]) for i in range(n)]


def test_check_subjects_limits_and_validates(channel: grpc.Channel) -> None:
    stub = exchange(channel)

    def check(subjects: list[pb.Subject]) -> grpc.StatusCode:
        request = ex.CheckSubjectsRequest(subjects=subjects)
        return _code(lambda: stub.CheckSubjects(request, timeout=10))

    assert check(_subjects(MAX_SUBJECTS)) == OK
    assert check(_subjects(MAX_SUBJECTS + 1)) == INVALID
    assert check([pb.Subject(uscc="91110108551385082R")]) == INVALID
    assert check([pb.Subject()]) == INVALID  # neither credit code nor person hash
    assert check([pb.Subject(person_hmac=b"\x01" * 31)]) == INVALID


@pytest.mark.parametrize(
    ("record_id", "expected"),
    [
        ("", INVALID),
        ("xyz", INVALID),
        ("AB" * 32, INVALID),  # record ids are lowercase
        ("ab" * 32 + "a", INVALID),
        ("ab" * 32, NOT_FOUND),
    ],
)
def test_get_record_rejects_bad_and_unknown_ids(
    channel: grpc.Channel, record_id: str, expected: grpc.StatusCode
) -> None:
    request = ex.GetRecordRequest(record_id=record_id)
    assert _code(lambda: exchange(channel).GetRecord(request, timeout=10)) == expected


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "!!!not a token",
        "%%%%",
        _token("v2:1"),
        _token("v1:"),
        _token("v1:one"),
        _token("v1:-1"),
        _token("v1:" + "9" * 30),  # parses as an int, fits no database column
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_list_listings_rejects_a_garbage_page_token(channel: grpc.Channel, token: str) -> None:
    request = ex.ListListingsRequest(page_token=token)
    assert _code(lambda: exchange(channel).ListListings(request, timeout=10)) == INVALID


def test_list_listings_pages_with_its_own_tokens(channel: grpc.Channel) -> None:
    stub = exchange(channel)
    first = stub.ListListings(ex.ListListingsRequest(page_size=1), timeout=10)
    assert len(first.listings) == 1 and first.next_page_token
    second = stub.ListListings(
        ex.ListListingsRequest(page_size=1, page_token=first.next_page_token), timeout=10
    )
    assert [s.listing_id for s in second.listings] != [s.listing_id for s in first.listings]
    bad_filter = ex.ListListingsRequest(region_prefix="33a")
    assert _code(lambda: stub.ListListings(bad_filter, timeout=10)) == INVALID


# --- the audit log ---------------------------------------------------------------------


def test_proofs_and_ranges_outside_the_log_are_invalid(gw: Gateway, channel: grpc.Channel) -> None:
    """Past the tree size is INVALID_ARGUMENT (the advice says to wait for a checkpoint
    that covers it), like every other request naming a range the log does not hold."""
    stub = audit(channel)
    size = gw.core.store.log_size()
    latest = gw.core.store.latest_checkpoint()
    assert latest is not None
    tree = latest.tree_size

    at = au.GetInclusionProofRequest

    def inclusion(request: au.GetInclusionProofRequest) -> grpc.StatusCode:
        return _code(lambda: stub.GetInclusionProof(request, timeout=10))

    def consistency(first: int, second: int) -> grpc.StatusCode:
        request = au.GetConsistencyProofRequest(first_size=first, second_size=second)
        return _code(lambda: stub.GetConsistencyProof(request, timeout=10))

    def entries(start: int, end: int) -> grpc.StatusCode:
        request = au.GetEntriesRequest(start=start, end=end)
        return _code(lambda: list(stub.GetEntries(request, timeout=10)))

    assert inclusion(at(leaf_index=tree - 1)) == OK
    assert inclusion(at(leaf_index=tree)) == INVALID
    assert inclusion(at(leaf_index=2**64 - 1)) == INVALID
    assert inclusion(at(leaf_index=0, tree_size=size + 1)) == INVALID
    assert inclusion(at()) == INVALID  # neither record_id nor leaf_index
    assert inclusion(at(record_id="not-an-id")) == INVALID
    assert inclusion(at(record_id="cd" * 32)) == NOT_FOUND
    assert consistency(1, size) == OK
    assert consistency(2, 1) == INVALID
    assert consistency(0, 1) == OK  # the empty proof from the empty tree (PROTOCOL.md §4.1)
    assert consistency(1, size + 1) == INVALID
    assert consistency(2**64 - 1, 2**64 - 1) == INVALID
    assert entries(0, size) == OK
    assert entries(2, 1) == INVALID
    assert entries(0, size + 1) == INVALID
    assert entries(2**64 - 1, 0) == INVALID


def test_cosignature_rejections(gw: Gateway, alliance: Alliance) -> None:
    ndrc = alliance.members["ndrc"]
    latest = gw.core.store.latest_checkpoint()
    assert latest is not None
    body = latest.note.split("\n\n", 1)[0] + "\n"
    ours = CosignatureSigner(ndrc.member_id, ndrc.signing_key)
    stranger = CosignatureSigner(ndrc.member_id, SigningKey.generate())
    impersonated = CosignatureSigner(alliance.members["zj-amr"].member_id, ndrc.signing_key)
    never_signed = Checkpoint(
        origin=gw.config.log_origin, size=latest.tree_size + 1000, root_hash=b"\x00" * 32
    ).body()
    now = int(time.time())
    cases = [
        ("not a checkpoint", ours.cosign(body, now), INVALID),
        (never_signed, ours.cosign(never_signed, now), NOT_FOUND),
        (body, stranger.cosign(body, now), INVALID),  # a key the monitor never registered
        (body, impersonated.cosign(body, now), INVALID),  # named as another member
        (body, ours.cosign(body, now) + ours.cosign(body, now), INVALID),  # two lines
        (body, "— not a signature line", INVALID),
    ]
    with ndrc.channel(gw.port) as ch:
        stub = audit(ch)

        def cosign(checkpoint: str, line: str) -> grpc.StatusCode:
            request = au.AddCosignatureRequest(checkpoint=checkpoint, signature_line=line)
            return _code(lambda: stub.AddCosignature(request, timeout=10))

        for checkpoint, line, expected in cases:
            assert cosign(checkpoint, line) == expected, line
        assert gw.core.store.cosignatures(latest.tree_size) == []
        assert cosign(body, ours.cosign(body, now)) == OK
    assert gw.core.store.cosignatures(latest.tree_size) == [ours.cosign(body, now)]


def test_the_gateway_still_serves_after_every_rejection(
    gw: Gateway, amr: Member, channel: grpc.Channel
) -> None:
    """Runs last in the module: every rejection above left a working gateway."""
    env = amr.sign(listing(amr, decision_ref="after-the-storm", listed_at=datetime.now(UTC)))
    reply = submit(channel, env)
    assert not reply.duplicate
    assert gw.core.store.record_by_id(env.record_id) is not None
    proof = audit(channel).GetInclusionProof(au.GetInclusionProofRequest(leaf_index=0), timeout=10)
    assert proof.tree_size >= 1
