"""Fuzzing one running gateway: envelopes, statements, and every RPC's requests.

One gateway for the module (SQLite in a tmp folder, real mTLS, channels reused across
examples). Hypothesis generates envelopes (random bytes, near-valid payload types,
random signatures and key ids, real signatures over garbage), valid statements mutated
field by field and byte by byte, random and byte-mutated requests of every RPC of the
wire contract (sent as raw bytes, so they need not even parse), and SubmitRecords
streams mixing all of these.

Every answer must be deliberate: never INTERNAL or UNKNOWN (an exception the gateway
did not map), and the precise code where the case fixes it: INVALID_ARGUMENT for bad
bytes, shapes, signatures and fields; PERMISSION_DENIED when a registered member other
than the caller signed; NOT_FOUND for a well-formed id naming nothing;
RESOURCE_EXHAUSTED over ``max_message_bytes``. Afterwards the log holds nothing but
the records the gateway accepted from us (and the ones it signs itself), and the gateway
still serves. ``FUZZ_INPUTS`` generated inputs in all.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from gwtest import USCC, Alliance, Member, confirmation, listing, running_gateway, submit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey, VerifyingKey
from gateway.core.identifiers import MemberId
from gateway.core.notes import CosignatureSigner
from gateway.core.policy import RPC_ROLES, rpc_allowed
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    PAYLOAD_TYPES,
    AuthorityScope,
    LifecycleStep,
    MemberKey,
    MemberRecord,
    MemberStatus,
    MonthlyReport,
    Role,
    Statement,
    StatusChange,
)
from gateway.errors import RecordError, VerificationError
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import compliance_pb2 as co
from gateway.pb.alliance.v1 import envelope_pb2 as env_pb
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import federation_pb2 as fe
from gateway.pb.alliance.v1 import statements_pb2 as pb
from gateway.service.ledger import utc_now

Code = grpc.StatusCode
OK, INVALID, NOT_FOUND = Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND
DENIED, EXHAUSTED = Code.PERMISSION_DENIED, Code.RESOURCE_EXHAUSTED
FAILED = Code.FAILED_PRECONDITION
# An unmapped exception in a handler: the one outcome fuzzing must never see.
CRASH = frozenset({Code.INTERNAL, Code.UNKNOWN})
MAX_MESSAGE_BYTES = 64 * 1024
TIMEOUT_S = 10.0
# Long-lived streams tail the log: a short deadline, then the example moves on.
TAIL_TIMEOUT_S = 0.2

# The budget: at least FUZZ_INPUTS generated inputs over the module.
FUZZ_INPUTS = 10_000
ENVELOPE_EXAMPLES = 1_800
STATEMENT_EXAMPLES = 1_800
STREAM_EXAMPLES = 300
OVERSIZED_EXAMPLES = 12
REQUEST_EXAMPLES = 300  # per RPC, for random requests and again for mutated bytes
TAILING_EXAMPLES = 30  # per long-lived RPC, ditto

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
}

METHODS: dict[str, MethodDescriptor] = {
    f"/{service.full_name}/{method.name}": method
    for module in (ex, au, fe, co)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}
# Streams that tail the log live: a valid request from near the end of the log waits for
# entries that may never come, so running out of time is their normal answer.
TAILING = frozenset({"/alliance.v1.Exchange/WatchRecords", "/alliance.v1.Federation/Replicate"})
SUBMIT = "/alliance.v1.Exchange/SubmitRecord"
SUBMIT_MANY = "/alliance.v1.Exchange/SubmitRecords"
SUBMIT_BATCHES = "/alliance.v1.Exchange/SubmitBatches"

# Field 100 as a varint: a field alliance.v1 does not define.
_UNKNOWN_FIELD = b"\xa0\x06\x01"


def _request_class(method: str) -> type[Message]:
    return message_factory.GetMessageClass(METHODS[method].input_type)


def _parses(method: str, raw: bytes) -> Message | None:
    msg = _request_class(method)()
    try:
        msg.ParseFromString(raw)
    except DecodeError:
        return None
    return msg


# --- the module's gateway and what it was told -----------------------------------------


@dataclass
class Fuzzed:
    gw: Gateway
    shop: Member  # platform: the usual caller
    other: Member  # another platform: its signatures are not the caller's
    amr: Member  # authority
    ndrc: Member  # monitor
    gateway: Member  # the gateway's own identity: may call every RPC
    channels: dict[str, grpc.Channel]
    keys: dict[str, VerifyingKey]  # every registered member's signing key
    initial_size: int
    listings: dict[str, str]  # member id -> a listing it issued
    record_ids: tuple[str, ...]  # records in the log before fuzzing
    accepted: set[str] = field(default_factory=set)  # record ids the gateway took from us
    examples: Counter[str] = field(default_factory=Counter)  # inputs generated, by test
    ran: set[str] = field(default_factory=set)  # fuzz tests completed
    refs: Iterator[int] = field(default_factory=itertools.count)

    def channel(self, member: Member) -> grpc.Channel:
        return self.channels[member.member_id]

    def fresh_ref(self) -> str:
        """A new decision reference, always as long: draws may depend on lengths."""
        return f"FUZZ-{next(self.refs):08d}"


@pytest.fixture(scope="module")
def fz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    alliance = Alliance(root / "zj", "zj.alliance.test")
    shop = alliance.member("platform", "shop")
    other = alliance.member("platform", "other-shop")
    amr = alliance.member("authority", "zj-amr", region="330000")
    ndrc = alliance.member("monitor", "ndrc", region="110000")
    config = alliance.config(
        f"sqlite:///{root / 'gateway.db'}",
        max_message_bytes=MAX_MESSAGE_BYTES,
        # Tailing calls the fuzzer hangs up on linger up to a poll interval.
        max_streams_per_member=16,
    )
    gateway = alliance.gateway_member()
    with running_gateway(config, register=(shop, other, amr, ndrc)) as gw:
        members = (shop, other, amr, ndrc, gateway)
        with (
            shop.channel(gw.port) as c1,
            other.channel(gw.port) as c2,
            amr.channel(gw.port) as c3,
            ndrc.channel(gw.port) as c4,
            gateway.channel(gw.port) as c5,
        ):
            channels = {m.member_id: c for m, c in zip(members, (c1, c2, c3, c4, c5), strict=True)}
            listings = {}
            for member, uscc in ((shop, USCC[0]), (amr, USCC[1]), (other, USCC[2])):
                env = member.sign(listing(member, uscc=uscc))
                submit(channels[member.member_id], env)
                listings[member.member_id] = env.record_id
            size = gw.core.store.log_size()
            fuzzed = Fuzzed(
                gw=gw,
                shop=shop,
                other=other,
                amr=amr,
                ndrc=ndrc,
                gateway=gateway,
                channels=channels,
                keys={m.member_id: m.signing_key.public_key() for m in members},
                initial_size=size,
                listings=listings,
                record_ids=tuple(r.record_id for r in gw.core.store.records_range(0, size)),
            )
            yield fuzzed


# --- calling with raw bytes ------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    code: Code
    responses: tuple[bytes, ...] = ()
    details: str = ""


def _call(
    channel: grpc.Channel, method: str, requests: Sequence[bytes], *, timeout: float = TIMEOUT_S
) -> Answer:
    """Send ``requests`` as they are (no serializer) and collect the raw answers.

    A call still open at ``timeout`` answers DEADLINE_EXCEEDED: whether that is a hang
    or a valid tail of the log is for the caller to judge (``_may_tail``)."""
    desc = METHODS[method]
    got: list[bytes] = []
    try:
        if desc.client_streaming:
            bidi: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(method)
            got.extend(bidi(iter(requests), timeout=timeout))
            return Answer(OK, tuple(got))
        if desc.server_streaming:
            tail: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(method)
            stream = tail(requests[0], timeout=timeout)
            # A few items tell enough: a stream may tail the log for ever.
            got.extend(itertools.islice(stream, 3))
            stream.cancel()
            return Answer(OK, tuple(got))
        unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        return Answer(OK, (unary(requests[0], timeout=timeout),))
    except grpc.RpcError as e:
        return Answer(e.code(), tuple(got), e.details() or "")


def _may_tail(fz: Fuzzed, method: str, raw: bytes) -> bool:
    """Whether ``raw`` is a valid request of an RPC that tails the log, which may then
    wait for entries the log does not hold yet: its normal answer to a short deadline.
    Anything else that runs out of time hangs, and fails the test."""
    if method not in TAILING:
        return False
    msg = _parses(method, raw)
    if msg is None:
        return False
    if isinstance(msg, fe.ReplicateRequest):
        # The server checks both against its newest checkpoint.
        latest = fz.gw.core.store.latest_checkpoint()
        size = 0 if latest is None else latest.tree_size
        return msg.from_index <= size and msg.known_tree_size <= size
    return True


def _no_crash(answer: Answer, what: object) -> None:
    assert answer.code not in CRASH, f"{answer.code.name} ({answer.details}) for {what!r}"


def _note_accepted(fz: Fuzzed, method: str, answer: Answer) -> None:
    """Remember what the gateway appended for us: the log may grow by exactly that."""
    if answer.code is not OK:
        return
    if method == SUBMIT:
        response = ex.SubmitRecordResponse.FromString(answer.responses[0])
        if not response.duplicate:
            fz.accepted.add(response.record_id)
    elif method == SUBMIT_MANY:
        for raw in answer.responses:
            result = ex.SubmitRecordResult.FromString(raw)
            if result.code == OK.value[0] and not result.duplicate:
                fz.accepted.add(result.record_id)
    elif method == SUBMIT_BATCHES:
        for raw in answer.responses:
            for result in ex.SubmitBatchResult.FromString(raw).results:
                if result.code == OK.value[0] and not result.duplicate:
                    fz.accepted.add(result.record_id)


# --- strategies from descriptors -------------------------------------------------------

_I32 = (-(2**31), 2**31 - 1)
_U32 = (0, 2**32 - 1)
_I64 = (-(2**63), 2**63 - 1)
_U64 = (0, 2**64 - 1)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: _I32,
    FieldDescriptor.TYPE_SINT32: _I32,
    FieldDescriptor.TYPE_SFIXED32: _I32,
    FieldDescriptor.TYPE_ENUM: _I32,
    FieldDescriptor.TYPE_UINT32: _U32,
    FieldDescriptor.TYPE_FIXED32: _U32,
    FieldDescriptor.TYPE_INT64: _I64,
    FieldDescriptor.TYPE_SINT64: _I64,
    FieldDescriptor.TYPE_SFIXED64: _I64,
    FieldDescriptor.TYPE_UINT64: _U64,
    FieldDescriptor.TYPE_FIXED64: _U64,
}
_EDGES: tuple[int, ...] = (
    0,
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    100,
    999_999_999,
    10**9,
    2**31 - 1,
    2**31,
    2**32 - 1,
)
_EDGES += (2**53, 2**63 - 1, 2**63, 2**64 - 1, -1, -2, -(2**31), -(2**63))
_EDGES += (-62_135_596_800, -62_135_596_801, 253_402_300_799, 253_402_300_800)  # Timestamp


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({e for e in _EDGES if lo <= e <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(0, 40), st.integers(lo, hi))


class Strategies:
    """Values worth trying, per field type: edges, known ids and codes, and noise."""

    def __init__(self, fz: Fuzzed) -> None:
        now = int(utc_now().timestamp())
        known = [*fz.record_ids, *USCC, *fz.listings.values(), *PAYLOAD_TYPES.values()]
        known += [m.member_id for m in (fz.shop, fz.other, fz.amr, fz.ndrc, fz.gateway)]
        known += ["330100", "330000", "33", "3", "440300", "660000", "999999", "2026-10"]
        known += ["2026-13", "0000-01", "9999-12", "ab" * 32, "AB" * 32, "91110108551385082R"]
        known += [fz.gw.config.log_origin, _checkpoint_body(fz), str(now)]
        self.text = st.one_of(
            st.sampled_from(known),
            st.text(max_size=40),
            st.text(alphabet="0123456789abcdefABCDEF-:=+/\n ", max_size=70),
        )
        self.binary = st.one_of(st.binary(max_size=40), st.sampled_from([b"\x01" * 32, b""]))
        self._messages: dict[tuple[str, int], st.SearchStrategy[Message]] = {}

    def value(self, f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        single = self._single(f, depth)
        if f.is_repeated:
            return st.lists(single, max_size=3)
        return single

    def _single(self, f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            assert f.message_type is not None
            return self.message(f.message_type, depth + 1)
        if f.type in _INT_RANGES:
            return _ints(*_INT_RANGES[f.type])
        if f.type == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if f.type == FieldDescriptor.TYPE_STRING:
            return self.text
        if f.type == FieldDescriptor.TYPE_BYTES:
            return self.binary
        return st.floats()

    def message(self, desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        key = (desc.full_name, depth)
        if key not in self._messages:
            cls = message_factory.GetMessageClass(desc)
            if depth > 3:
                self._messages[key] = st.builds(cls)
            else:
                fields = {f.name: st.none() | self.value(f, depth) for f in desc.fields}
                self._messages[key] = st.fixed_dictionaries(fields).map(
                    functools.partial(_assemble, cls)
                )
        return self._messages[key]


def _assemble(cls: type[Message], values: dict[str, Any]) -> Message:
    msg = cls()
    for name, value in values.items():
        if value is not None:
            _set_field(msg, _field(msg, name), value)
    return msg


def _field(msg: Message, name: str) -> FieldDescriptor:
    return cast(FieldDescriptor, msg.DESCRIPTOR.fields_by_name[name])


def _set_field(msg: Message, f: FieldDescriptor, value: Any) -> None:
    if f.is_repeated:
        target = getattr(msg, f.name)
        del target[:]
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif f.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(msg, f.name).CopyFrom(value)
    else:
        setattr(msg, f.name, value)


def _mutate(data: st.DataObject, raw: bytes) -> bytes:
    """One to four byte-level edits: flip, insert, delete, truncate, append, replace."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append", "new"]))
        at = data.draw(st.integers(0, len(out)))
        if op == "flip" and out:
            i = min(at, len(out) - 1)
            out[i] ^= data.draw(st.integers(1, 255))
        elif op == "insert":
            out[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del out[at : at + data.draw(st.integers(1, 8))]
        elif op == "truncate":
            del out[at:]
        elif op == "append":
            out += data.draw(st.sampled_from([_UNKNOWN_FIELD, b"\xff", b"\x0a\x80\x80"]))
            out += data.draw(st.binary(max_size=8))
        elif op == "new":
            out = bytearray(data.draw(st.binary(max_size=64)))
    return bytes(out)


def _checkpoint_body(fz: Fuzzed) -> str:
    latest = fz.gw.core.store.latest_checkpoint()
    assert latest is not None
    return latest.note.split("\n\n", 1)[0] + "\n"


# --- 1. envelopes ----------------------------------------------------------------------


def _expected_for_envelope(fz: Fuzzed, envelope: env_pb.Envelope, caller: Member) -> set[Code]:
    """What SubmitRecord must answer, by the order of checks in docs/PROTOCOL.md §5."""
    if ex.SubmitRecordRequest(envelope=envelope).ByteSize() > MAX_MESSAGE_BYTES:
        return {EXHAUSTED}
    try:
        env = codec.envelope_from_pb(envelope)
    except RecordError:
        return {INVALID}
    return _expected_for_signed(fz, env, caller)


def _expected_for_signed(fz: Fuzzed, env: dsse.Envelope, caller: Member) -> set[Code]:
    """The answer to a well-formed envelope, by the order of checks in PROTOCOL.md §5:
    the issuer read from the payload must be a member id and the caller (whatever keyids
    say); a signature must verify under the issuer's keys; the statement must hold."""
    try:
        opened = codec.open_payload(env.payload_type, env.payload)
        MemberId.parse(opened.issuer)
    except RecordError:
        return {INVALID}
    if opened.issuer != caller.member_id:
        return {DENIED}
    try:
        dsse.verify(env, [fz.keys[caller.member_id]])
    except VerificationError:
        return {INVALID}
    try:
        opened.statement()
    except RecordError:
        return {INVALID}
    return {OK, INVALID, DENIED, NOT_FOUND}


def _near_types() -> st.SearchStrategy[str]:
    valid = sorted(PAYLOAD_TYPES.values())
    return st.one_of(
        st.sampled_from(valid),
        st.sampled_from(valid).map(str.upper),
        st.sampled_from(valid).map(lambda t: t + " "),
        st.sampled_from(valid).map(lambda t: t.replace("v1", "v2")),
        st.sampled_from(valid).map(lambda t: t.replace("+protobuf", "+json")),
        st.sampled_from(valid).map(lambda t: t[:-1]),
        st.sampled_from(valid).map(lambda t: t + "\u00e9"),
        st.text(max_size=140),
        st.just(""),
        st.just("x" * 129),
    )


def test_every_rpc_of_the_wire_contract_is_fuzzed() -> None:
    assert set(METHODS) == set(RPC_ROLES)


def test_envelopes(fz: Fuzzed) -> None:
    stranger = SigningKey.generate()
    payloads = st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda: codec.encode_record(listing(fz.shop, decision_ref=fz.fresh_ref())).payload
        ),
    )

    @settings(max_examples=ENVELOPE_EXAMPLES, **SETTINGS)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        fz.examples["envelopes"] += 1
        caller = data.draw(st.sampled_from([fz.shop, fz.amr]))
        payload = data.draw(payloads)
        payload_type = data.draw(_near_types())
        pae = dsse.pae(payload_type, payload)
        signers = {
            "caller": caller.signing_key,
            "other": fz.other.signing_key,
            "gateway": fz.gateway.signing_key,
            "stranger": stranger,
        }
        signatures = []
        for _ in range(data.draw(st.integers(0, 3))):
            mode = data.draw(st.sampled_from([*signers, "garbage"]))
            if mode == "garbage":
                sig = data.draw(st.one_of(st.binary(min_size=64, max_size=64), st.binary()))
                keyid = data.draw(st.one_of(st.text(max_size=130), st.just(caller_keyid(caller))))
            else:
                key = signers[mode]
                sig = key.sign(pae)
                keyid = data.draw(
                    st.sampled_from([key.public_key().keyid, "", caller_keyid(caller)])
                )
                if data.draw(st.integers(0, 9)) == 0:
                    sig = sig[: data.draw(st.integers(0, 63))]
            signatures.append(env_pb.Signature(sig=sig, keyid=keyid))
        envelope = env_pb.Envelope(
            payload=payload, payload_type=payload_type, signatures=signatures
        )
        expected = _expected_for_envelope(fz, envelope, caller)
        raw = ex.SubmitRecordRequest(envelope=envelope).SerializeToString()
        answer = _call(fz.channel(caller), SUBMIT, [raw])
        _no_crash(answer, envelope)
        assert answer.code in expected, (answer, envelope)
        _note_accepted(fz, SUBMIT, answer)

    run()
    fz.ran.add("envelopes")


def test_oversized_envelopes(fz: Fuzzed) -> None:
    """Over ``max_message_bytes``: refused by gRPC before the gateway reads a byte (each
    such refusal costs gRPC ~0.1 s, hence the few examples)."""

    @settings(max_examples=OVERSIZED_EXAMPLES, **SETTINGS)
    @given(
        size=st.integers(MAX_MESSAGE_BYTES + 1, 3 * MAX_MESSAGE_BYTES),
        fill=st.binary(min_size=1, max_size=16),
        payload_type=_near_types(),
    )
    def run(size: int, fill: bytes, payload_type: str) -> None:
        fz.examples["oversized"] += 1
        payload = (fill * (size // len(fill) + 1))[:size]
        env = dsse.sign("t", payload, fz.shop.signing_key)
        envelope = env_pb.Envelope(payload=payload, payload_type=payload_type)
        envelope.signatures.add(sig=env.signatures[0].sig, keyid=env.signatures[0].keyid)
        raw = ex.SubmitRecordRequest(envelope=envelope).SerializeToString()
        answer = _call(fz.channel(fz.shop), SUBMIT, [raw])
        assert answer.code is EXHAUSTED, answer

    run()
    fz.ran.add("oversized")


def caller_keyid(member: Member) -> str:
    return member.signing_key.public_key().keyid


# --- 2. statements ---------------------------------------------------------------------


def _base_statements(fz: Fuzzed, caller: Member) -> list[tuple[str, Message]]:
    """Valid statements of every type (as the caller's role may or may not sign them).

    No clock readings: the bytes' lengths must not vary between a run and its replay."""
    now = datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)
    own = fz.listings[caller.member_id]
    listed = datetime(2026, 10, 1, tzinfo=UTC)
    statements: list[Statement] = [
        listing(caller, decision_ref=fz.fresh_ref()),
        listing(caller, uscc=USCC[2], decision_ref=fz.fresh_ref(), listed_at=now),
        StatusChange(
            issuer=caller.member_id,
            listing_id=own,
            step=LifecycleStep.NOTICE_SERVED,
            effective_at=listed + timedelta(days=1),
            decision_ref=fz.fresh_ref(),
            document_sha256=hashlib.sha256(b"notice").digest(),
        ),
        StatusChange(
            issuer=caller.member_id,
            listing_id=own,
            step=LifecycleStep.CORRECTED,
            effective_at=listed + timedelta(days=20),
            decision_ref=fz.fresh_ref(),
            reason="corrected",
        ),
        confirmation(caller, fz.listings[fz.amr.member_id], note=fz.fresh_ref()),
        MemberRecord(
            issuer=fz.gateway.member_id,
            member_id=caller.member_id,
            role=MemberId.parse(caller.member_id).role,
            region_code=caller.region,
            keys=(
                MemberKey(
                    caller.signing_key.public_key().raw,
                    not_before=listed,
                    possession=prove_possession(caller.signing_key, caller.member_id),
                ),
            ),
            status=MemberStatus.ACTIVE,
            display_name=fz.fresh_ref(),
            issued_at=now,
            scope=(
                AuthorityScope.UNIT
                if MemberId.parse(caller.member_id).role is Role.AUTHORITY
                else None
            ),
        ),
        MonthlyReport(
            issuer=fz.gateway.member_id,
            month="2026-10",
            unit="33",
            checkpoint_size=1,
            checkpoint_root=b"\x00" * 32,
            content=f'{{"ref": "{fz.fresh_ref()}"}}'.encode(),
        ),
    ]
    return [(PAYLOAD_TYPES[type(s)], codec.statement_to_pb(s)) for s in statements]


def _field_paths(msg: Message, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of ``msg``, and of its set sub-messages, as paths from ``msg``."""
    paths = []
    for f in msg.DESCRIPTOR.fields:
        paths.append((*prefix, f.name))
        if f.type == FieldDescriptor.TYPE_MESSAGE and not f.is_repeated and msg.HasField(f.name):
            paths += _field_paths(getattr(msg, f.name), (*prefix, f.name))
    return paths


def _edit(data: st.DataObject, strategies: Strategies, msg: Message) -> None:
    """Set one field anywhere in ``msg`` to a value of its type, or clear it."""
    path = data.draw(st.sampled_from(_field_paths(msg)))
    parent = msg
    for name in path[:-1]:
        parent = getattr(parent, name)
    f = _field(parent, path[-1])
    if data.draw(st.integers(0, 5)) == 0:
        parent.ClearField(f.name)
        return
    _set_field(parent, f, data.draw(strategies.value(f, depth=1)))


def test_mutated_statements(fz: Fuzzed) -> None:
    strategies = Strategies(fz)

    @settings(max_examples=STATEMENT_EXAMPLES, **SETTINGS)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        fz.examples["statements"] += 1
        caller = data.draw(st.sampled_from([fz.shop, fz.amr]))
        payload_type, msg = data.draw(st.sampled_from(_base_statements(fz, caller)))
        for _ in range(data.draw(st.integers(0, 3))):
            _edit(data, strategies, msg)
        payload = msg.SerializeToString()
        if data.draw(st.booleans()):
            payload = _mutate(data, payload)
        if data.draw(st.integers(0, 9)) == 0:
            payload_type = data.draw(st.sampled_from(sorted(PAYLOAD_TYPES.values())))
        env = dsse.sign(payload_type, payload, caller.signing_key)
        expected = _expected_for_signed(fz, env, caller)
        if fz.gw.core.store.record_by_id(env.record_id) is not None:
            expected = {OK}  # the same bytes, signed by the same caller: a duplicate
        raw = ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env)).SerializeToString()
        answer = _call(fz.channel(caller), SUBMIT, [raw])
        _no_crash(answer, (payload_type, payload))
        assert answer.code in expected, (answer, payload_type, payload)
        _note_accepted(fz, SUBMIT, answer)

    run()
    fz.ran.add("statements")


# --- 3. every RPC's requests -----------------------------------------------------------


def _seeds(fz: Fuzzed) -> dict[str, list[Message]]:
    """Valid requests per RPC, for byte-level mutation."""
    size = fz.gw.core.store.log_size()
    body = _checkpoint_body(fz)
    cosigner = CosignatureSigner(fz.gateway.member_id, fz.gateway.signing_key)
    stored = fz.gw.core.store.record_by_id(fz.listings[fz.shop.member_id])
    assert stored is not None
    envelope = codec.envelope_to_pb(
        codec.stored_envelope(stored.payload_type, stored.payload, stored.signatures)
    )
    fresh = codec.envelope_to_pb(fz.shop.sign(listing(fz.shop, decision_ref="seed")))
    own_listing = fz.listings[fz.shop.member_id]
    page = ex.ListListingsResponse.FromString(
        _call(
            fz.channel(fz.gateway),
            "/alliance.v1.Exchange/ListListings",
            [ex.ListListingsRequest(page_size=1).SerializeToString()],
        ).responses[0]
    )
    subjects = [
        pb.Subject(uscc=USCC[0], stores=[pb.StoreRef(platform=fz.shop.member_id, store_id="s1")]),
        pb.Subject(person_hmac=b"\x07" * 32, name="n"),
    ]
    seeds: dict[str, list[Message]] = {
        SUBMIT: [ex.SubmitRecordRequest(envelope=envelope), ex.SubmitRecordRequest(envelope=fresh)],
        SUBMIT_MANY: [ex.SubmitRecordRequest(envelope=envelope)],
        SUBMIT_BATCHES: [
            ex.SubmitBatch(
                records=[
                    ex.SubmitRecordRequest(envelope=envelope),
                    ex.SubmitRecordRequest(envelope=fresh),
                ]
            )
        ],
        "/alliance.v1.Exchange/GetRecord": [ex.GetRecordRequest(record_id=own_listing)],
        "/alliance.v1.Exchange/CheckSubjects": [ex.CheckSubjectsRequest(subjects=subjects)],
        "/alliance.v1.Exchange/ListListings": [
            ex.ListListingsRequest(
                list=pb.LIST_KIND_BLACKLIST,
                conduct=pb.CONDUCT_TYPE_FAKE_TRANSACTIONS,
                region_prefix="33",
                step=pb.LIFECYCLE_STEP_LISTED,
                page_size=2,
            ),
            ex.ListListingsRequest(page_size=1, page_token=page.next_page_token),
        ],
        "/alliance.v1.Exchange/WatchRecords": [ex.WatchRecordsRequest(from_index=size - 1)],
        "/alliance.v1.AuditLog/GetCheckpoint": [
            au.GetCheckpointRequest(),
            au.GetCheckpointRequest(tree_size=size),
        ],
        "/alliance.v1.AuditLog/GetInclusionProof": [
            au.GetInclusionProofRequest(record_id=own_listing, tree_size=size),
            au.GetInclusionProofRequest(leaf_index=1),
        ],
        "/alliance.v1.AuditLog/GetConsistencyProof": [
            au.GetConsistencyProofRequest(first_size=1, second_size=size),
            au.GetConsistencyProofRequest(first_size=0, second_size=size),
        ],
        "/alliance.v1.AuditLog/GetEntries": [au.GetEntriesRequest(start=0, end=size)],
        "/alliance.v1.AuditLog/AddCosignature": [
            au.AddCosignatureRequest(
                checkpoint=body, signature_line=cosigner.cosign(body, int(utc_now().timestamp()))
            )
        ],
        "/alliance.v1.Federation/Replicate": [
            fe.ReplicateRequest(from_index=1, known_tree_size=1),
        ],
        "/alliance.v1.Compliance/GetCompliance": [co.GetComplianceRequest(listing_id=own_listing)],
        "/alliance.v1.Compliance/ListOutstanding": [
            co.ListOutstandingRequest(
                region_prefix="33", kind=co.OBLIGATION_KIND_APPLY, page_size=2
            )
        ],
        "/alliance.v1.Compliance/GetReportSchedule": [co.GetReportScheduleRequest(month="2026-10")],
        "/alliance.v1.Compliance/GetDeadlineRules": [co.GetDeadlineRulesRequest()],
        "/alliance.v1.Compliance/ListOwed": [co.ListOwedRequest(page_size=2)],
    }
    assert set(seeds) == set(METHODS)
    return seeds


# What an admitted caller may be answered, per RPC, for a request that parses.
_READS = frozenset({OK, INVALID, NOT_FOUND})
ALLOWED: dict[str, frozenset[Code]] = {
    SUBMIT: frozenset({OK, INVALID, DENIED, NOT_FOUND}),
    SUBMIT_MANY: frozenset({OK}),  # each record's code is in its result
    # Each record's code is in its result; a batch of too many records ends the stream.
    SUBMIT_BATCHES: frozenset({OK, EXHAUSTED}),
    "/alliance.v1.Exchange/CheckSubjects": frozenset({OK, INVALID}),
    "/alliance.v1.Exchange/ListListings": frozenset({OK, INVALID}),
    "/alliance.v1.Exchange/WatchRecords": frozenset({OK, INVALID}),
    # A tree size the log never signed a checkpoint for.
    "/alliance.v1.AuditLog/GetCheckpoint": frozenset({OK, NOT_FOUND}),
    "/alliance.v1.AuditLog/GetConsistencyProof": frozenset({OK, INVALID}),
    "/alliance.v1.AuditLog/GetEntries": frozenset({OK, INVALID}),
    "/alliance.v1.Federation/Replicate": frozenset({OK, INVALID}),
    "/alliance.v1.Compliance/ListOutstanding": frozenset({OK, INVALID}),
    # A month of a year the gateway has no working-day calendar for: its operator's job.
    "/alliance.v1.Compliance/GetReportSchedule": frozenset({OK, INVALID, FAILED}),
    "/alliance.v1.Compliance/GetDeadlineRules": frozenset({OK}),
    # Platforms only: any other caller is refused.
    "/alliance.v1.Compliance/ListOwed": frozenset({OK, INVALID, DENIED}),
}
_RESULT_CODES = frozenset(c.value[0] for c in (OK, INVALID, DENIED, NOT_FOUND))


def _expected_for_request(fz: Fuzzed, method: str, raw: bytes) -> frozenset[Code]:
    msg = _parses(method, raw)
    if msg is None:
        # Bytes that are not the request message at all.
        return frozenset({OK}) if method == SUBMIT_MANY else frozenset({INVALID})
    if method in ("/alliance.v1.Exchange/GetRecord", "/alliance.v1.Compliance/GetCompliance"):
        record_id = str(getattr(msg, "record_id" if method.endswith("GetRecord") else "listing_id"))
        try:
            codec.record_id_from_pb(record_id, "id")
        except RecordError:
            return frozenset({INVALID})
        if method.endswith("GetRecord"):
            stored = fz.gw.core.store.record_by_id(record_id) is not None
            return frozenset({OK}) if stored else frozenset({NOT_FOUND})
    return ALLOWED.get(method, _READS)


def _check_request(fz: Fuzzed, caller: Member, method: str, requests: Sequence[bytes]) -> None:
    # Only a request that may tail gets the short deadline; one that must be answered
    # gets the long one, so a slow answer under load is not taken for a hang.
    tails = len(requests) == 1 and _may_tail(fz, method, requests[0])
    answer = _call(
        fz.channel(caller), method, requests, timeout=TAIL_TIMEOUT_S if tails else TIMEOUT_S
    )
    _no_crash(answer, (method, requests))
    if method == SUBMIT_BATCHES and answer.code is OK:
        # One answer per batch, one result per record, the stream's sequence throughout.
        batches = [_parses(method, raw) for raw in requests]
        assert all(isinstance(b, ex.SubmitBatch) for b in batches), (answer, requests)
        assert len(answer.responses) == len(requests), (answer, requests)
        results = [
            r for raw in answer.responses for r in ex.SubmitBatchResult.FromString(raw).results
        ]
        assert len(results) == sum(len(cast(ex.SubmitBatch, b).records) for b in batches)
        for sequence, result in enumerate(results):
            assert result.sequence == sequence
            assert result.code in _RESULT_CODES, (result, requests)
    elif method == SUBMIT_BATCHES:
        assert answer.code in _expected_for_request(fz, method, requests[0]), (answer, requests)
    elif method == SUBMIT_MANY:
        assert answer.code is OK, (answer, requests)
        assert len(answer.responses) == len(requests), (answer, requests)
        for sequence, (raw, result_raw) in enumerate(zip(requests, answer.responses, strict=True)):
            result = ex.SubmitRecordResult.FromString(result_raw)
            assert result.sequence == sequence
            assert result.code in _RESULT_CODES, (result, raw)
            if _parses(method, raw) is None:
                assert result.code == INVALID.value[0], (result, raw)
    else:
        allowed = _expected_for_request(fz, method, requests[0])
        if answer.code is Code.DEADLINE_EXCEEDED and _may_tail(fz, method, requests[0]):
            allowed = allowed | {Code.DEADLINE_EXCEEDED}
        assert answer.code in allowed, (answer, requests)
    _note_accepted(fz, method, answer)


def _caller(fz: Fuzzed, method: str) -> Member:
    """The gateway's own identity, which may call every RPC but the submissions (a
    gateway's records travel by replication only); a platform for those."""
    return fz.gateway if rpc_allowed(method, Role.GATEWAY) else fz.shop


def _examples_for(method: str) -> int:
    return TAILING_EXAMPLES if method in TAILING else REQUEST_EXAMPLES


@pytest.mark.parametrize("method", sorted(METHODS))
def test_random_requests(fz: Fuzzed, method: str) -> None:
    """Requests built field by field from the descriptor, as a member that may call it."""
    message = Strategies(fz).message(METHODS[method].input_type)

    @settings(max_examples=_examples_for(method), **SETTINGS)
    @given(request=message)
    def run(request: Message) -> None:
        fz.examples["random-requests"] += 1
        _check_request(fz, _caller(fz, method), method, [request.SerializeToString()])

    run()
    fz.ran.add(f"random {method}")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_mutated_requests(fz: Fuzzed, method: str) -> None:
    """Valid requests with bytes flipped, cut, inserted, appended: sent as they are."""
    seeds = [s.SerializeToString() for s in _seeds(fz)[method]]

    @settings(max_examples=_examples_for(method), **SETTINGS)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        fz.examples["mutated-requests"] += 1
        raw = _mutate(data, data.draw(st.sampled_from(seeds)))
        _check_request(fz, _caller(fz, method), method, [raw])

    run()
    fz.ran.add(f"mutated {method}")


def test_submit_streams(fz: Fuzzed) -> None:
    """SubmitRecords streams mixing garbage bytes, mutated requests and good records."""
    stored = fz.gw.core.store.record_by_id(fz.listings[fz.shop.member_id])
    assert stored is not None
    seed = ex.SubmitRecordRequest(
        envelope=codec.envelope_to_pb(
            codec.stored_envelope(stored.payload_type, stored.payload, stored.signatures)
        )
    ).SerializeToString()

    def good() -> bytes:
        env = fz.shop.sign(listing(fz.shop, decision_ref=fz.fresh_ref()))
        return ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env)).SerializeToString()

    @settings(max_examples=STREAM_EXAMPLES, **SETTINGS)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        fz.examples["streams"] += 1
        requests = []
        for _ in range(data.draw(st.integers(1, 6))):
            kind = data.draw(st.sampled_from(["garbage", "mutated", "good", "duplicate"]))
            if kind == "garbage":
                requests.append(data.draw(st.binary(max_size=80)))
            elif kind == "mutated":
                requests.append(_mutate(data, seed))
            else:
                requests.append(good() if kind == "good" else seed)
        _check_request(fz, fz.shop, SUBMIT_MANY, requests)

    run()
    fz.ran.add("streams")


# --- what fuzzing found ----------------------------------------------------------------

# Inputs that once made the gateway answer INTERNAL, kept as plain fast tests.
FOUND_BY_FUZZING: dict[str, tuple[str, bytes, Code]] = {
    # A month whose successor falls past year 9999 (datetime's last year).
    "report-month-9999-12": (
        "/alliance.v1.Compliance/GetReportSchedule",
        co.GetReportScheduleRequest(month="9999-12").SerializeToString(),
        INVALID,
    ),
    # A checkpoint size past any database integer (it was looked up, and overflowed).
    "checkpoint-size-2^63": (
        "/alliance.v1.AuditLog/GetCheckpoint",
        au.GetCheckpointRequest(tree_size=2**63).SerializeToString(),
        NOT_FOUND,
    ),
    # Bytes that are not the request message: gRPC's own deserializer said INTERNAL.
    "not-protobuf": ("/alliance.v1.AuditLog/GetCheckpoint", b"\xff", INVALID),
    "bad-utf8-in-a-string": ("/alliance.v1.Exchange/GetRecord", b"\x0a\x01\xff", INVALID),
    "truncated-submission": (SUBMIT, b"\x0a\x05\x0a", INVALID),
}


@pytest.mark.parametrize("case", sorted(FOUND_BY_FUZZING))
def test_found_by_fuzzing(fz: Fuzzed, case: str) -> None:
    method, raw, expected = FOUND_BY_FUZZING[case]
    assert _call(fz.channel(_caller(fz, method)), method, [raw]).code is expected


def test_an_undecodable_message_in_a_stream_is_answered_in_its_place(fz: Fuzzed) -> None:
    env = fz.shop.sign(listing(fz.shop, decision_ref=fz.fresh_ref()))
    good = ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env)).SerializeToString()
    answer = _call(fz.channel(fz.shop), SUBMIT_MANY, [b"\x00", good, b"\xff\xff"])
    assert answer.code is OK
    results = [ex.SubmitRecordResult.FromString(r) for r in answer.responses]
    assert [r.code for r in results] == [INVALID.value[0], 0, INVALID.value[0]]
    assert results[1].record_id == env.record_id
    fz.accepted.add(env.record_id)


# --- afterwards ------------------------------------------------------------------------


def test_nothing_invalid_was_stored_and_the_gateway_still_serves(fz: Fuzzed) -> None:
    """Runs last: the log grew by exactly the records accepted from us (and what the
    gateway signs itself, e.g. escalations); every one of them is a valid record."""
    gw = fz.gw
    size = gw.core.store.log_size()
    appended = []
    for start in range(fz.initial_size, size, 1000):
        appended += gw.core.store.records_range(start, size, limit=1000)
    assert len(appended) == size - fz.initial_size
    ours = {r.record_id for r in appended if r.signer != gw.config.member_id}
    assert ours == fz.accepted
    for record in appended:
        codec.decode_statement(
            record.payload_type, record.payload, record.disclosures
        )  # raises if invalid

    channel = fz.channel(fz.shop)
    env = fz.shop.sign(listing(fz.shop, decision_ref="after-the-fuzz", listed_at=utc_now()))
    assert not submit(channel, env).duplicate
    checkpoint = au.GetCheckpointRequest().SerializeToString()
    assert _call(channel, "/alliance.v1.AuditLog/GetCheckpoint", [checkpoint]).code is OK
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    every = {"envelopes", "oversized", "statements", "streams"}
    every |= {f"{kind} {method}" for kind in ("random", "mutated") for method in METHODS}
    if fz.ran == every:  # the whole module ran, not a selection
        assert sum(fz.examples.values()) >= FUZZ_INPUTS, fz.examples
    print(f"fuzzed inputs: {sum(fz.examples.values())} {dict(fz.examples)}")
