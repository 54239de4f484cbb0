"""The authorization table, proven against a real gateway: every RPC x every role.

Cases are generated from ``gateway.core.policy.RPC_ROLES``, and the table must name
exactly the methods of the alliance.v1 services, so a new RPC cannot be served without
its row. A role the table refuses gets PERMISSION_DENIED; a role it allows gets past
authorization (the minimal request then fails or succeeds on its own merits, and an RPC
not served yet answers UNIMPLEMENTED).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from gwtest import USCC, Alliance, Member, running_gateway

from gateway.core.notes import NoteSigner
from gateway.core.policy import RPC_ROLES, rpc_allowed
from gateway.core.statements import Role
from gateway.ops.app import Gateway
from gateway.pb.alliance import v1
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import federation_pb2 as fed
from gateway.pb.alliance.v1 import statements_pb2 as pb

Code = grpc.StatusCode


def _service_modules() -> list[ModuleType]:
    """Every generated alliance.v1 module (exchange, audit, federation, and any added)."""
    return [
        importlib.import_module(f"{v1.__name__}.{info.name}")
        for info in pkgutil.iter_modules(v1.__path__)
        if info.name.endswith("_pb2")
    ]


METHODS: dict[str, MethodDescriptor] = {
    f"/{service.full_name}/{method.name}": method
    for module in _service_modules()
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}

# Who calls, by role. The gateway role of our own trust domain is the gateway itself;
# "peer" is a configured gateway of another alliance.
IDENTITIES: dict[str, Role] = {
    "platform": Role.PLATFORM,
    "authority": Role.AUTHORITY,
    "gateway": Role.GATEWAY,
    "peer": Role.GATEWAY,
    "monitor": Role.MONITOR,
}

# A minimal, well-shaped request per RPC, and the codes an admitted caller may get for it.
# An RPC without an entry gets its empty request and must merely not be refused.
_REQUESTS: dict[str, tuple[Message, frozenset[Code]]] = {
    "/alliance.v1.Exchange/SubmitRecord": (
        ex.SubmitRecordRequest(),
        frozenset({Code.INVALID_ARGUMENT}),  # no envelope
    ),
    "/alliance.v1.Exchange/SubmitRecords": (
        ex.SubmitRecordRequest(),
        frozenset({Code.OK}),  # the stream answers; the record's result says INVALID_ARGUMENT
    ),
    "/alliance.v1.Exchange/SubmitBatches": (
        ex.SubmitBatch(records=[ex.SubmitRecordRequest()]),
        frozenset({Code.OK}),  # the batch is answered; its record's result says INVALID_ARGUMENT
    ),
    "/alliance.v1.Exchange/GetRecord": (
        ex.GetRecordRequest(record_id="ab" * 32),
        frozenset({Code.NOT_FOUND}),
    ),
    "/alliance.v1.Exchange/CheckSubjects": (
        ex.CheckSubjectsRequest(subjects=[pb.Subject(uscc=USCC[0])]),
        frozenset({Code.OK}),
    ),
    "/alliance.v1.Exchange/ListListings": (ex.ListListingsRequest(), frozenset({Code.OK})),
    "/alliance.v1.Exchange/WatchRecords": (
        ex.WatchRecordsRequest(from_index=0),
        frozenset({Code.OK}),  # the first entry arrives, then the test hangs up
    ),
    "/alliance.v1.AuditLog/GetCheckpoint": (au.GetCheckpointRequest(), frozenset({Code.OK})),
    "/alliance.v1.AuditLog/GetInclusionProof": (
        au.GetInclusionProofRequest(leaf_index=0),
        frozenset({Code.OK}),
    ),
    "/alliance.v1.AuditLog/GetConsistencyProof": (
        au.GetConsistencyProofRequest(first_size=1, second_size=1),
        frozenset({Code.OK}),
    ),
    "/alliance.v1.AuditLog/GetEntries": (
        au.GetEntriesRequest(start=0, end=1),
        frozenset({Code.OK}),
    ),
    "/alliance.v1.AuditLog/AddCosignature": (
        au.AddCosignatureRequest(),
        frozenset({Code.INVALID_ARGUMENT}),  # an empty checkpoint does not parse
    ),
    "/alliance.v1.Federation/Replicate": (
        fed.ReplicateRequest(from_index=0),
        frozenset({Code.OK, Code.UNIMPLEMENTED}),
    ),
}
_NEVER_WHEN_ADMITTED = frozenset(
    {Code.PERMISSION_DENIED, Code.UNAUTHENTICATED, Code.INTERNAL, Code.UNKNOWN, Code.UNAVAILABLE}
)


def test_the_table_names_exactly_the_rpcs_of_the_wire_contract() -> None:
    services = {method.containing_service.name for method in METHODS.values()}
    assert {"Exchange", "AuditLog", "Federation"} <= services
    assert set(RPC_ROLES) == set(METHODS)
    assert set(_REQUESTS) <= set(METHODS)  # no stale example requests


def _request_for(path: str) -> tuple[Message, frozenset[Code] | None]:
    if path in _REQUESTS:
        return _REQUESTS[path]
    cls = message_factory.GetMessageClass(METHODS[path].input_type)
    return cls(), None


def _invoke(channel: grpc.Channel, path: str, request: Message) -> Code:
    method = METHODS[path]
    response_cls = message_factory.GetMessageClass(method.output_type)

    def serialize(msg: Message) -> bytes:
        return msg.SerializeToString()

    kwargs: dict[str, Any] = {
        "request_serializer": serialize,
        "response_deserializer": response_cls.FromString,
    }
    try:
        if method.client_streaming and method.server_streaming:
            responses = channel.stream_stream(path, **kwargs)(iter([request]), timeout=10)
        elif method.server_streaming:
            responses = channel.unary_stream(path, **kwargs)(request, timeout=10)
        elif method.client_streaming:
            channel.stream_unary(path, **kwargs)(iter([request]), timeout=10)
            return Code.OK
        else:
            channel.unary_unary(path, **kwargs)(request, timeout=10)
            return Code.OK
        next(responses, None)  # streams may tail forever: one answer tells enough
        responses.cancel()
    except grpc.RpcError as e:
        return e.code()
    return Code.OK


@pytest.fixture(scope="module")
def callers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Gateway, dict[str, Member]]]:
    root = tmp_path_factory.mktemp("matrix")
    zj = Alliance(root / "zj", "zj.alliance.test")
    gd = Alliance(root / "gd", "gd.alliance.test", region="440100")
    members = {
        "platform": zj.member("platform", "shop-a"),
        "authority": zj.member("authority", "zj-amr", region="330000"),
        "monitor": zj.member("monitor", "ndrc", region="110000"),
    }
    peer = gd.gateway_member()
    origin = f"{gd.trust_domain}/alliance-log/v1"
    config = zj.config(
        f"sqlite:///{root / 'gateway.db'}",
        peers=[
            {
                "name": gd.gateway_name,
                "address": "127.0.0.1:1",
                "pull": False,  # an anchor only: nothing is dialled
                "trust_domain": gd.trust_domain,
                "ca_file": str(gd.ca),
                "log_origin": origin,
                "log_vkey": NoteSigner(origin, peer.signing_key).verifier().vkey,
            }
        ],
    )
    members["gateway"] = zj.gateway_member()
    # The peer's client certificate chains to its own CA; it verifies us with ours.
    members["peer"] = Member(
        peer.member_id, peer.cert, peer.key, peer.signing_key, zj.ca, peer.region
    )
    with running_gateway(config, register=tuple(zj.members.values())) as gw:
        yield gw, members


@pytest.mark.parametrize(
    ("path", "who"),
    [(path, who) for path in sorted(RPC_ROLES) for who in IDENTITIES],
)
def test_rpc_is_denied_exactly_when_the_table_says_so(
    callers: tuple[Gateway, dict[str, Member]], path: str, who: str
) -> None:
    gw, members = callers
    request, admitted_codes = _request_for(path)
    with members[who].channel(gw.port) as channel:
        code = _invoke(channel, path, request)
    if not rpc_allowed(path, IDENTITIES[who]):
        assert code == Code.PERMISSION_DENIED
    elif admitted_codes is not None:
        assert code in admitted_codes
    else:
        assert code not in _NEVER_WHEN_ADMITTED


def test_a_method_outside_the_table_is_denied_to_every_role(
    callers: tuple[Gateway, dict[str, Member]],
) -> None:
    """Deny by default, even for a method the server does not serve at all."""
    gw, members = callers
    for who, member in members.items():
        with member.channel(gw.port) as channel:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/alliance.v1.Exchange/DeleteEverything"
            )
            with pytest.raises(grpc.RpcError) as err:
                call(b"", timeout=10)
        assert err.value.code() == Code.PERMISSION_DENIED, who
