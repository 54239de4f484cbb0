"""Support for the authority, data and certificate attack tests: two regional
alliances (ZJ and GD), each with its own CA, gateway, log key and database, federated
over mTLS on reserved local ports, as tests/integration/test_federation.py builds them.
Nothing is mocked; a hostile party is played by real certificates and keys, and by
records appended straight to a gateway's log (what a rogue identity or a misbehaving
peer could have put there before the fixes).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from gwtest import Alliance, Member, pg_base_url, pg_schema_url, running_gateway

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import load_signing_key
from gateway.core.notes import NoteSigner
from gateway.core.statements import MemberKey, MemberRecord, MemberStatus, Role
from gateway.ops.app import Gateway
from gateway.ops.config import Config
from gateway.service.ledger import Accepted

WAIT_S = 20.0
MEMBER_RECORD_V1 = "application/vnd.alliance.member-record.v1+protobuf"


def eventually(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Wait for an event (a condition becoming true), up to a bounded deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s}s: {what}")


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as e:
        code: grpc.StatusCode = e.code()
        return code
    return grpc.StatusCode.OK


def reserve_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Region:
    """One regional alliance with a reserved gateway port, an authority and a platform."""

    alliance: Alliance
    port: int
    authority: Member
    platform: Member

    @property
    def trust_domain(self) -> str:
        return self.alliance.trust_domain

    @property
    def origin(self) -> str:
        return f"{self.trust_domain}/alliance-log/v1"

    @property
    def gateway_key_file(self) -> Path:
        return self.alliance.gw_dir / "signing-key.pem"

    def peer(self, **extra: Any) -> dict[str, Any]:
        """This region as a ``[[peers]]`` entry of another gateway's configuration."""
        key = load_signing_key(self.gateway_key_file)
        return {
            "name": self.alliance.gateway_name,
            "trust_domain": self.trust_domain,
            "ca_file": str(self.alliance.ca),
            "log_origin": self.origin,
            "log_vkey": NoteSigner(self.origin, key).verifier().vkey,
            "address": f"127.0.0.1:{self.port}",
            **extra,
        }

    def config(self, database_url: str, peers: Sequence[dict[str, Any]], **kw: Any) -> Config:
        return self.alliance.config(
            database_url,
            listen_address=f"127.0.0.1:{self.port}",
            federation_backoff_initial_s=0.1,
            federation_backoff_max_s=0.5,
            peers=list(peers),
            **kw,
        )

    def members(self) -> tuple[Member, ...]:
        return (self.authority, self.platform)

    def gateway_caller(self, calling: Region) -> Member:
        """This region's gateway identity, as a client of ``calling``'s gateway."""
        me = self.alliance.gateway_member()
        me.ca = calling.alliance.ca
        return me


def make_region(root: Path, code: str, region_code: str) -> Region:
    alliance = Alliance(root / code, f"{code}.alliance.test", region=region_code)
    authority = alliance.member("authority", f"{code}-amr", region=region_code[:2] + "0000")
    platform = alliance.member("platform", f"{code}-shop")
    return Region(alliance, reserve_port(), authority, platform)


@dataclass
class Pair:
    zj: Region
    gd: Region
    zj_gw: Gateway
    gd_gw: Gateway


@contextmanager
def federated_pair(
    tmp_path: Path,
    database_url: str,
    *,
    zj_config: dict[str, Any] | None = None,
    gd_config: dict[str, Any] | None = None,
    zj_peer: dict[str, Any] | None = None,
    gd_peer: dict[str, Any] | None = None,
    register: bool = True,
) -> Iterator[Pair]:
    """ZJ and GD, each pulling from the other. ``zj_peer`` is added to GD's entry in
    ZJ's configuration (``gd_peer`` the other way round); ``*_config`` are settings."""
    zj = make_region(tmp_path, "zj", "330100")
    gd = make_region(tmp_path, "gd", "440300")
    with ExitStack() as stack:
        if database_url.startswith("postgresql"):
            base = pg_base_url()
            assert base is not None
            other = stack.enter_context(pg_schema_url(base))
        else:
            other = f"sqlite:///{tmp_path / 'gd.db'}"
        zj_cfg = zj.config(database_url, [gd.peer(**(zj_peer or {}))], **(zj_config or {}))
        gd_cfg = gd.config(other, [zj.peer(**(gd_peer or {}))], **(gd_config or {}))
        zj_gw = stack.enter_context(
            running_gateway(zj_cfg, register=zj.members() if register else ())
        )
        gd_gw = stack.enter_context(
            running_gateway(gd_cfg, register=gd.members() if register else ())
        )
        yield Pair(zj, gd, zj_gw, gd_gw)


def has(gw: Gateway, record_id: str) -> bool:
    return gw.core.store.record_by_id(record_id) is not None


def append_v1_member_record(
    gw: Gateway,
    region: Region,
    member_id: str,
    *,
    keys: Sequence[bytes],
    issued_at: datetime,
    status: MemberStatus = MemberStatus.ACTIVE,
    region_code: str | None = None,
) -> str:
    """Sign a member record (the v1 format, with no proofs: what any code version could
    make) with ``region``'s gateway key and append it straight to ``gw``'s log, as a
    gateway did before the fixes, or as a peer that misbehaves does."""
    role = Role[member_id.split("/")[3].upper()]
    record = MemberRecord(
        issuer=region.alliance.gateway_id,
        member_id=member_id,
        role=role,
        region_code=region_code or region.alliance.region,
        keys=tuple(MemberKey(public_key=k, not_before=issued_at) for k in keys),
        status=status,
        issued_at=issued_at,
    )
    payload = codec.statement_to_pb(record).SerializeToString(deterministic=True)
    env = dsse.sign(MEMBER_RECORD_V1, payload, load_signing_key(region.gateway_key_file))
    accepted = Accepted(env, env.record_id, region.alliance.gateway_id, record, region.origin)
    gw.core.ledger.append([accepted])
    return env.record_id
