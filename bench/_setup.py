"""A bench alliance (CA, gateway, members; the lines of tests/gwtest.py that matter
here) and the databases the benchmarks run on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy.engine import make_url

from certs.pki import create_ca, generate_signing_key, issue_gateway, issue_member
from gateway.core.crypto import SigningKey, load_signing_key
from gateway.core.notes import NoteSigner
from gateway.core.possession import prove_possession
from gateway.ops.app import Core
from gateway.ops.config import Config, config_from_mapping
from gateway.storage.disclosures import SUBJECT_INDEX_INFO, SubjectIndex
from gateway.storage.scratch import temporary_schema

GATEWAY_NAME = "gw"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Region:
    code: str  # short name: zj, gd
    region_code: str  # the gateway's administrative division code

    @property
    def trust_domain(self) -> str:
        return f"{self.code}.alliance.test"

    @property
    def province_code(self) -> str:
        return self.region_code[:2] + "0000"


HOME_REGION = Region("zj", "330100")
PEER_REGION = Region("gd", "440300")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class TlsFiles:
    """What a server needs for mTLS: its certificate and key, and the client CA."""

    cert: Path
    key: Path
    ca: Path

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.ca.read_bytes(),
            require_client_auth=True,
        )


class Alliance:
    """One regional alliance made for the run: CA, gateway files and members.

    The default is Zhejiang; the federation benchmark makes a second one (its own CA,
    trust domain and log key) with ``Alliance(root, PEER_REGION)``.
    """

    def __init__(self, root: Path, region: Region | None = None) -> None:
        self.region = region or HOME_REGION
        self.trust_domain = self.region.trust_domain
        self.root = root
        self.ca_dir = root / "ca"
        create_ca(self.ca_dir, self.trust_domain)
        self.gw_dir = root / "gateway"
        issue_gateway(self.ca_dir, self.trust_domain, GATEWAY_NAME, self.gw_dir)
        generate_signing_key(self.gw_dir / "signing-key.pem")
        code = self.region.code
        self.authority = self._member("authority", f"{code}-amr", self.region.province_code)
        self.monitor = self._member("monitor", "ndrc", "110000")

    @property
    def log_origin(self) -> str:
        return f"{self.trust_domain}/alliance-log/v1"

    def peer_entry(self, address: str | None) -> dict[str, Any]:
        """This alliance's gateway as another gateway's ``[[peers]]`` table; without an
        address it is an anchor only (``pull = false``)."""
        key = load_signing_key(self.gw_dir / "signing-key.pem")
        entry: dict[str, Any] = {
            "name": GATEWAY_NAME,
            "trust_domain": self.trust_domain,
            "ca_file": str(self.ca),
            "log_origin": self.log_origin,
            "log_vkey": NoteSigner(self.log_origin, key).verifier().vkey,
        }
        if address is None:
            entry["pull"] = False
        else:
            entry["address"] = address
        return entry

    def subject_index(self) -> SubjectIndex:
        """The key of the gateway's lookup index, as its ``Core`` derives it from the
        gateway's signing key (a bulk fill writes the digests the gateway reads)."""
        key = load_signing_key(self.gw_dir / "signing-key.pem")
        return SubjectIndex(key.derive_secret(SUBJECT_INDEX_INFO))

    @property
    def ca(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def server_tls(self) -> TlsFiles:
        return TlsFiles(
            self.gw_dir / f"{GATEWAY_NAME}.pem", self.gw_dir / f"{GATEWAY_NAME}-key.pem", self.ca
        )

    @property
    def members(self) -> tuple[Member, ...]:
        return (self.authority, self.monitor)

    def _member(self, role: str, name: str, region: str) -> Member:
        member_id = f"spiffe://{self.trust_domain}/{role}/{name}"
        folder = self.root / "members" / name
        issued = issue_member(self.ca_dir, member_id, folder)
        generate_signing_key(folder / "signing-key.pem", force=True)
        return Member(
            member_id,
            issued.cert,
            issued.key,
            load_signing_key(folder / "signing-key.pem"),
            self.ca,
            region,
        )

    def config(self, database_url: str, **overrides: Any) -> Config:
        raw: dict[str, Any] = {
            "trust_domain": self.trust_domain,
            "gateway_name": GATEWAY_NAME,
            "region_code": self.region.region_code,
            "listen_address": "127.0.0.1:0",
            "metrics_address": "127.0.0.1:0",
            "database_url": database_url,
            "ca_file": str(self.ca),
            "cert_file": str(self.server_tls.cert),
            "key_file": str(self.server_tls.key),
            "signing_key_file": str(self.gw_dir / "signing-key.pem"),
            "crl_file": str(self.ca_dir / "crl.pem"),
            "shutdown_grace_s": 2.0,
            # Measure the gateway, not the per-member limit (its code path still runs).
            "rate_limit_per_member_rps": 1_000_000.0,
            "rate_limit_burst": 1_000_000,
            # Likewise the access log's daily quota: a run checks millions of subjects
            # (the quota's counting still runs on every read).
            "access_log_daily_quota": 1_000_000_000,
        }
        raw.update(overrides)
        return config_from_mapping(raw, base_dir=self.root, env={})

    def prepare(self, config: Config) -> None:
        """Create the schema and register the members, as an operator would."""
        core = Core(config)
        try:
            core.members.ensure_self(config.region_code)
            for m in self.members:
                if core.directory.member(m.member_id) is None:
                    core.members.add(
                        m.member_id,
                        m.region,
                        m.signing_key.public_key().raw,
                        possession=prove_possession(m.signing_key, m.member_id),
                    )
        finally:
            core.close()


class Backend:
    """Where a benchmark's database lives: fresh SQLite files, or fresh PostgreSQL schemas."""

    def __init__(self, name: str, base_url: str, scratch: Path) -> None:
        self.name = name
        self.base_url = base_url
        self._scratch = scratch
        self._count = 0

    @property
    def is_sqlite(self) -> bool:
        return self.base_url.startswith("sqlite")

    @contextmanager
    def fresh(self, label: str) -> Iterator[str]:
        """A new, empty database URL for one benchmark; removed afterwards."""
        self._count += 1
        if self.is_sqlite:
            database = make_url(self.base_url).database
            if database:
                path = Path(database)
                path = path.with_name(f"{path.stem}-{label}-{self._count}{path.suffix or '.db'}")
            else:
                path = self._scratch / f"{label}-{self._count}.db"
            _remove_sqlite(path)
            try:
                yield f"sqlite:///{path}"
            finally:
                _remove_sqlite(path)
            return
        with pg_schema_url(self.base_url) as url:
            yield url


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def pg_schema_url(base: str) -> AbstractContextManager[str]:
    """A fresh PostgreSQL schema, dropped afterwards (as tests/gwtest.py does)."""
    return temporary_schema(base, prefix="bench_")


def backend_names(backends: Sequence[Backend]) -> list[str]:
    return [b.name for b in backends]
