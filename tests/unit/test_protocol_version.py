"""The protocol version: its text form, the contract digest that pins a revision to the
generated code, and what the client makes of the gateway's statement."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import clients
from clients.version import PROTOCOL, VersionCheck, _from_metadata, notice
from gateway import protocol
from gateway.errors import RecordError
from gateway.pb.alliance import v1
from gateway.protocol import CURRENT, ProtocolVersion, contract_digest

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def _generated_descriptors() -> list[tuple[str, bytes]]:
    files = []
    for module in pkgutil.iter_modules(v1.__path__):
        if module.name.endswith("_pb2"):
            pb2 = importlib.import_module(f"{v1.__name__}.{module.name}")
            files.append((pb2.DESCRIPTOR.name, pb2.DESCRIPTOR.serialized_pb))
    return files


def test_the_revision_is_pinned_to_the_generated_contract() -> None:
    files = _generated_descriptors()
    assert {name for name, _ in files} >= {"alliance/v1/exchange.proto", "alliance/v1/audit.proto"}
    digest = contract_digest(files)
    assert digest == protocol.CONTRACT_SHA256, (
        "the alliance.v1 contract changed: raise REVISION in gateway/protocol.py (CURRENT), "
        "add the revision to docs/PROTOCOL.md §5.1 and the client's __version__, and set "
        f"CONTRACT_SHA256 = {digest!r} (only the digest, when just the code generator changed)"
    )


def test_the_digest_covers_every_byte_and_ignores_order() -> None:
    files = _generated_descriptors()
    digest = contract_digest(files)
    assert contract_digest(list(reversed(files))) == digest
    name, descriptor = files[0]
    changed = bytes([descriptor[0] ^ 1]) + descriptor[1:]
    assert contract_digest([(name, changed), *files[1:]]) != digest
    assert contract_digest(files[1:]) != digest
    # Lengths frame each part: moving a byte from a name to its descriptor changes it.
    assert contract_digest([("ab", b"c")]) != contract_digest([("a", b"bc")])


def test_the_client_distribution_is_versioned_with_the_protocol() -> None:
    major, minor, patch = clients.__version__.split(".")
    assert (int(major), int(minor)) == (CURRENT.major, CURRENT.revision)
    assert patch.isdigit()
    assert PROTOCOL == CURRENT


@pytest.mark.parametrize(
    ("text", "package", "revision"),
    [("alliance.v1/1", "alliance.v1", 1), ("alliance.v2/17", "alliance.v2", 17)],
)
def test_parse(text: str, package: str, revision: int) -> None:
    parsed = ProtocolVersion.parse(text)
    assert parsed == ProtocolVersion(package, revision)
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alliance.v1",
        "alliance.v1/",
        "alliance.v1/0",
        "alliance.v1/01",
        "alliance.v1/-1",
        "alliance.v1/1/2",
        "alliance.v1/1 ",
        "alliance.v0/1",
        "Alliance.v1/1",
        "alliance.v1/1234567890",
        "other.v1/1",
        "alliance.v1/" + "9" * 500,
    ],
)
def test_parse_refuses_anything_else(text: str) -> None:
    with pytest.raises(RecordError, match=r"^alliance-protocol: .* is not <package>/<revision>"):
        ProtocolVersion.parse(text)


def test_a_version_checks_itself() -> None:
    with pytest.raises(RecordError):
        ProtocolVersion("alliance.v1", 0)
    with pytest.raises(RecordError):
        ProtocolVersion("grpc.health.v1", 1)
    assert ProtocolVersion("alliance.v3", 2).major == 3


def test_header() -> None:
    assert protocol.header() == ("alliance-protocol", str(CURRENT))


def test_docs_state_the_current_revision() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert f"alliance-protocol: {CURRENT}" in text
    assert re.search(rf"^\| {CURRENT.revision} \| ", text, re.MULTILINE), "revision table"


V1_1, V1_2, V2_1 = (
    ProtocolVersion.parse(t) for t in ("alliance.v1/1", "alliance.v1/2", "alliance.v2/1")
)


def test_the_same_revision_is_no_warning() -> None:
    check = VersionCheck(V1_1, V1_1, serving=True)
    assert check.matches and check.warning() is None and notice(check) is None


def test_an_older_gateway_refuses_newer_records() -> None:
    check = VersionCheck(V1_2, V1_1, serving=True)
    assert not check.matches
    warning = check.warning()
    assert warning is not None
    message, advice = warning
    assert "older than this client's alliance.v1/2" in message and "INVALID_ARGUMENT" in message
    assert "alliance-client 1.1.x" in advice


def test_a_newer_gateway_asks_for_a_newer_client() -> None:
    warning = VersionCheck(V1_1, V1_2, serving=True).warning()
    assert warning is not None
    assert "newer than this client's alliance.v1/1" in warning[0]
    assert warning[1] == "upgrade the client to alliance-client 1.2.x or later"


def test_another_contract_is_a_different_protocol() -> None:
    warning = VersionCheck(V1_1, V2_1, serving=True).warning()
    assert warning is not None
    assert "the two contracts are different" in warning[0]
    assert "alliance-client 2.1.x" in warning[1]
    text = notice(VersionCheck(V1_1, V2_1, serving=True))
    assert text is not None and text.startswith("warning: ") and "\nhint: " in text


@pytest.mark.parametrize(
    ("metadata", "unreadable"),
    [
        ((), ""),
        ((("other-key", "alliance.v1/1"),), ""),
        ((("alliance-protocol", "alliance.v1/1"), ("alliance-protocol", "alliance.v1/2")), "2 "),
        ((("alliance-protocol", b"alliance.v1/1"),), "binary value"),
        ((("alliance-protocol", "alliance.v1"),), "is not <package>/<revision>"),
    ],
)
def test_a_missing_or_unreadable_statement_is_a_warning(
    metadata: tuple[tuple[str, str | bytes], ...], unreadable: str
) -> None:
    check = _from_metadata(metadata, serving=True)
    assert check.gateway is None and not check.matches
    assert unreadable in check.unreadable
    warning = check.warning()
    assert warning is not None and "did not state which protocol it speaks" in warning[0]


def test_the_statement_is_read_from_the_metadata() -> None:
    check = _from_metadata((("x", "y"), ("alliance-protocol", "alliance.v1/1")), serving=False)
    assert check.gateway == V1_1 and check.client == PROTOCOL and not check.serving
