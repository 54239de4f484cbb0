"""Test support: real alliances (CA, certificates, keys), real gateways on port 0.

Nothing here is a mock: a test gets a regional CA made for it, member certificates
with SPIFFE SANs, Ed25519 signing keys, and a gateway serving mTLS on 127.0.0.1:0 over
a real SQLite file (or a fresh PostgreSQL schema when ALLIANCE_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from certs.pki import create_ca, generate_signing_key, issue_gateway, issue_member
from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey, load_signing_key
from gateway.core.notes import NoteSigner
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    ConductType,
    Erasure,
    ErasureBasis,
    Listing,
    ListKind,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    Subject,
)
from gateway.ops.app import Gateway
from gateway.ops.config import Config, config_from_mapping
from gateway.pb.alliance.v1 import audit_pb2_grpc, exchange_pb2_grpc
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.storage.scratch import temporary_schema

USCC = ("91330100716105852F", "91440300708461136T", "91110000802100433B")


@dataclass
class Member:
    member_id: str
    cert: Path
    key: Path
    signing_key: SigningKey
    ca: Path
    region: str

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.key.read_bytes(),
            certificate_chain=self.cert.read_bytes(),
        )

    @contextmanager
    def channel(self, port: int) -> Iterator[grpc.Channel]:
        with grpc.secure_channel(f"127.0.0.1:{port}", self.credentials()) as ch:
            yield ch

    def sign(self, statement: Statement) -> dsse.Envelope:
        """``statement`` signed by this member, with its disclosures (codec.seal)."""
        return codec.seal(statement, self.signing_key)

    def possession(self) -> bytes:
        """The proof that this member holds its signing key (for its registration)."""
        return prove_possession(self.signing_key, self.member_id)


def register_member(gateway: Gateway, member: Member) -> None:
    """Register ``member`` at ``gateway`` as an operator would (members add)."""
    gateway.core.members.add(
        member.member_id,
        member.region,
        member.signing_key.public_key().raw,
        possession=member.possession(),
    )


@dataclass
class Alliance:
    """One regional alliance: its CA, its gateway's files, its members."""

    root: Path
    trust_domain: str
    region: str = "330100"
    gateway_name: str = "gw"
    members: dict[str, Member] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ca_dir = self.root / "ca"
        create_ca(self.ca_dir, self.trust_domain)
        self.gw_dir = self.root / "gateway"
        issue_gateway(self.ca_dir, self.trust_domain, self.gateway_name, self.gw_dir)
        generate_signing_key(self.gw_dir / "signing-key.pem")

    @property
    def ca(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def gateway_id(self) -> str:
        return f"spiffe://{self.trust_domain}/gateway/{self.gateway_name}"

    def gateway_member(self) -> Member:
        return Member(
            self.gateway_id,
            self.gw_dir / f"{self.gateway_name}.pem",
            self.gw_dir / f"{self.gateway_name}-key.pem",
            load_signing_key(self.gw_dir / "signing-key.pem"),
            self.ca,
            self.region,
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """For a grpc server of the test's own: this alliance's gateway certificate,
        and client certificates of the alliance's CA required, as the gateway does."""
        gw = self.gateway_member()
        return grpc.ssl_server_credentials(
            [(gw.key.read_bytes(), gw.cert.read_bytes())],
            root_certificates=self.ca.read_bytes(),
            require_client_auth=True,
        )

    def member(self, role: str, name: str, *, region: str | None = None, **cert: Any) -> Member:
        """Issue a certificate and a signing key (not yet registered at the gateway)."""
        member_id = f"spiffe://{self.trust_domain}/{role}/{name}"
        folder = self.root / "members" / name
        issued = issue_member(self.ca_dir, member_id, folder, **cert)
        generate_signing_key(folder / "signing-key.pem", force=True)
        m = Member(
            member_id,
            issued.cert,
            issued.key,
            load_signing_key(folder / "signing-key.pem"),
            self.ca,
            region or self.region,
        )
        self.members[name] = m
        return m

    def peer_entry(self, port: int) -> dict[str, Any]:
        """This alliance's gateway as a ``[[peers]]`` entry of another gateway's config,
        pulled from ``port``."""
        origin = f"{self.trust_domain}/alliance-log/v1"
        key = load_signing_key(self.gw_dir / "signing-key.pem")
        return {
            "name": self.gateway_name,
            "address": f"127.0.0.1:{port}",
            "trust_domain": self.trust_domain,
            "ca_file": str(self.ca),
            "log_origin": origin,
            "log_vkey": NoteSigner(origin, key).verifier().vkey,
        }

    def config(self, database_url: str, **overrides: Any) -> Config:
        raw: dict[str, Any] = {
            "trust_domain": self.trust_domain,
            "gateway_name": self.gateway_name,
            "region_code": self.region,
            "listen_address": "127.0.0.1:0",
            "metrics_address": "127.0.0.1:0",
            "database_url": database_url,
            "ca_file": str(self.ca),
            "cert_file": str(self.gw_dir / f"{self.gateway_name}.pem"),
            "key_file": str(self.gw_dir / f"{self.gateway_name}-key.pem"),
            "signing_key_file": str(self.gw_dir / "signing-key.pem"),
            "crl_file": str(self.ca_dir / "crl.pem"),
            "checkpoint_interval_s": 0.2,
            "crl_reload_interval_s": 0.2,
            "shutdown_grace_s": 1.0,
            # The suite's records carry fixed dates (listing() is 2026-10-01); the intake
            # bound itself is tested in tests/security with the default window.
            "backdating_window_days": 3660,
        }
        raw.update(overrides)
        return config_from_mapping(raw, base_dir=self.root, env={})


def zhejiang(root: Path) -> Alliance:
    """The usual test alliance: authority zj-amr, platforms shop-a and shop-b, monitor ndrc."""
    a = Alliance(root, "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    a.member("platform", "shop-a")
    a.member("platform", "shop-b")
    a.member("monitor", "ndrc", region="110000")
    return a


@contextmanager
def running_gateway(
    config: Config,
    *,
    register: tuple[Member, ...] = (),
    monotonic: Callable[[], float] = time.monotonic,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[Gateway]:
    """A started gateway with ``register``ed members; stopped with a grace period.

    ``monotonic``: the clock of its rate limits, idle streams and CRL reloads (a test's
    fake clock makes them wait for the test, not for the wall clock); ``clock``: its
    wall time (records, deadlines, publication periods), the real one by default."""
    if clock is None:
        gateway = Gateway(config, monotonic=monotonic)
    else:
        gateway = Gateway(config, clock=clock, monotonic=monotonic)
    for m in register:
        if gateway.core.directory.member(m.member_id) is None:
            register_member(gateway, m)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop(grace_s=1.0)


class Clock:
    """A gateway's wall clock, set by the test (read from the gateway's threads)."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now


_CONFIG_KEYS = (
    "trust_domain",
    "gateway_name",
    "region_code",
    "ca_file",
    "cert_file",
    "key_file",
    "signing_key_file",
    "database_url",
    "listen_address",
    "metrics_address",
)


def write_config(path: Path, config: Config) -> Path:
    """``config``'s identity, files and addresses as a TOML file the CLI reads."""
    text = "".join(f"{k} = {json.dumps(str(getattr(config, k)))}\n" for k in _CONFIG_KEYS)
    path.write_text(text, encoding="utf-8")
    return path


def pg_base_url() -> str | None:
    return os.environ.get("ALLIANCE_TEST_DATABASE_URL") or None


# The database backends every backend-parametrized test runs on. Without
# ALLIANCE_TEST_DATABASE_URL the PostgreSQL variants are collected and reported as
# skipped, with the reason, rather than left out of the run unseen.
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            pg_base_url() is None,
            reason="PostgreSQL variant: set ALLIANCE_TEST_DATABASE_URL to run it",
        ),
    ),
]


def pg_schema_url(base: str) -> AbstractContextManager[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    return temporary_schema(base, prefix="t_")


# Fixture listings are dated a month before the day of the run (midnight UTC), so
# their three-month deadline and publication periods lie ahead of the gateways' wall
# clock on any date: a listing fixed on a calendar date would be escalated, then
# retired, by the gateway itself once that date's deadline passed, and tests counting
# log entries would start failing on a date. Tests about those transitions give their
# gateway a ``Clock`` and their listings explicit dates.
LISTED_AT = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
    days=30
)


def listing(issuer: Member, uscc: str = USCC[0], **kw: Any) -> Listing:
    values: dict[str, Any] = {
        "issuer": issuer.member_id,
        "subject": Subject(uscc=uscc),
        "list": ListKind.BLACKLIST,
        "conduct": ConductType.FAKE_TRANSACTIONS,
        "region_code": issuer.region,
        "decision_ref": "ZJ-AMR-2026-0042",
        "listed_at": LISTED_AT,
    }
    values.update(kw)
    return Listing(**values)


def subject_pb(stmt: Listing) -> Any:
    """The subject of a listing built here, as a CheckSubjects request carries it."""
    assert stmt.subject is not None
    return codec.subject_to_pb(stmt.subject)


def confirmation(platform: Member, listing_id: str, **kw: Any) -> SanctionConfirmation:
    values: dict[str, Any] = {
        "issuer": platform.member_id,
        "listing_id": listing_id,
        "measure": SanctionMeasure.CLOSE_STORE,
        "action": SanctionAction.APPLIED,
        "effective_at": LISTED_AT + timedelta(days=1),
    }
    values.update(kw)
    return SanctionConfirmation(**values)


def erasure(issuer: Member, *record_ids: str, **kw: Any) -> Erasure:
    """An erasure of ``record_ids`` by ``issuer`` (purpose achieved, effective now)."""
    values: dict[str, Any] = {
        "issuer": issuer.member_id,
        "record_ids": record_ids,
        "basis": ErasureBasis.PURPOSE_ACHIEVED,
        "legal_basis": "PIPL art. 47(1): the purpose of the listing is achieved",
        "effective_at": datetime.now(UTC).replace(microsecond=0),
    }
    values.update(kw)
    return Erasure(**values)


def submit(channel: grpc.Channel, env: dsse.Envelope) -> ex.SubmitRecordResponse:
    stub = exchange_pb2_grpc.ExchangeStub(channel)
    response: ex.SubmitRecordResponse = stub.SubmitRecord(
        ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env)), timeout=10
    )
    return response


def exchange(channel: grpc.Channel) -> exchange_pb2_grpc.ExchangeStub:
    return exchange_pb2_grpc.ExchangeStub(channel)


def audit(channel: grpc.Channel) -> audit_pb2_grpc.AuditLogStub:
    return audit_pb2_grpc.AuditLogStub(channel)
