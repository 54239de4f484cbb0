"""Which ``alliance.v1`` this code speaks, and how a gateway says which one it speaks.

The wire contract is the proto package ``alliance.v1``; each change to it raises
``REVISION`` (docs/PROTOCOL.md §5.1). The gateway sends ``header()`` in the initial
metadata of its health answers; a client parses it with ``ProtocolVersion.parse`` and
compares it with its own. Standard library only: the server and the client
distribution both ship this module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gateway.errors import RecordError

__all__ = [
    "CONTRACT_SHA256",
    "CURRENT",
    "METADATA_KEY",
    "ProtocolVersion",
    "contract_digest",
    "header",
]

METADATA_KEY: Final = "alliance-protocol"
"""The gRPC metadata key (lower case, as HTTP/2 carries it) of the version statement."""

CONTRACT_SHA256: Final = "299051d96dd76338765e0f67512ef18e94b3cca5e97e5d807b33b6013e60c5c2"
"""``contract_digest`` of the ``alliance.v1`` descriptors of this revision. The tests
recompute it from the generated code, so no contract change ships without a new
revision."""

_PATTERN: Final = re.compile(r"(alliance\.v([1-9][0-9]{0,3}))/([1-9][0-9]{0,8})")


@dataclass(frozen=True, slots=True)
class ProtocolVersion:
    """A contract (``alliance.v1``) at a revision (1, 2, …)."""

    package: str
    revision: int

    def __post_init__(self) -> None:
        if not _PATTERN.fullmatch(f"{self.package}/{self.revision}"):
            raise RecordError(
                f"protocol version: {self.package!r} revision {self.revision!r} is not "
                "alliance.vN at a revision of 1 or more"
            )

    @property
    def major(self) -> int:
        """The contract's number: 1 for ``alliance.v1``."""
        return int(self.package.removeprefix("alliance.v"))

    def __str__(self) -> str:
        return f"{self.package}/{self.revision}"

    @classmethod
    def parse(cls, text: str) -> ProtocolVersion:
        """``alliance.v1/3`` -> ProtocolVersion("alliance.v1", 3); RecordError otherwise."""
        match = _PATTERN.fullmatch(text)
        if match is None:
            shown = text if len(text) <= 64 else text[:64] + "…"
            raise RecordError(
                f"{METADATA_KEY}: {shown!r} is not <package>/<revision> (e.g. alliance.v1/1)"
            )
        return cls(match.group(1), int(match.group(3)))


CURRENT: Final = ProtocolVersion("alliance.v1", 4)
"""What this code speaks. Revision history: docs/PROTOCOL.md §5.1."""


def header() -> tuple[str, str]:
    """The metadata entry a gateway sends: ``("alliance-protocol", "alliance.v1/4")``."""
    return (METADATA_KEY, str(CURRENT))


def contract_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over ``(proto file name, serialized FileDescriptorProto)`` pairs, in name
    order, each name and descriptor preceded by its length (8 bytes, big-endian)."""
    digest = hashlib.sha256()
    for name, descriptor in sorted(files):
        for part in (name.encode(), descriptor):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()
