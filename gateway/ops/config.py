"""Gateway configuration: one frozen dataclass, read from TOML with ALLIANCE_* overrides.

Units are in the field names. Paths in the file are relative to the file's folder.
Everything is validated at start-up; a bad value raises ConfigError naming the setting.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.core.deadlines import DeadlineRules
from gateway.core.identifiers import MemberId, Role
from gateway.core.intake import IntakeRules
from gateway.core.notes import NoteVerifier
from gateway.core.statements import MAX_ERASED_RECORDS
from gateway.errors import ConfigError, GatewayError, RecordError

_ENV_PREFIX = "ALLIANCE_"
# Retention after a listing closed, every kind (docs/OPERATIONS.md, "Retention and
# erasure"): the longest publication period any rule allows, 3 years, with a leap day.
RETENTION_DAYS = 1096
MAX_RETENTION_DAYS = 36_525  # a century
RETENTION_DAYS_SETTINGS = (
    "retention_listing_days",
    "retention_status_change_days",
    "retention_sanction_confirmation_days",
    "retention_government_measure_days",
)


def _gateway_id(trust_domain: str, name: str, setting: str) -> str:
    """The member id of a gateway, by the one member-id grammar of the core."""
    try:
        return str(MemberId(trust_domain, Role.GATEWAY, name))
    except RecordError as e:
        raise ConfigError(f"{setting}: {e}") from e


@dataclass(frozen=True)
class PeerConfig:
    """A federated regional gateway, configured out of band.

    Its gateway key (from ``log_vkey``) is the trust anchor for its region's member
    records. With ``pull = false`` the peer is an anchor only: records of its region
    that reach us through other peers verify, but we do not connect to it (a spoke in
    a hub-and-spoke federation); ``address`` may then be empty.
    """

    name: str
    address: str
    trust_domain: str
    ca_file: Path
    log_origin: str
    # C2SP vkey of the peer's log/gateway key: name+hex(keyid)+base64(0x01||pubkey).
    log_vkey: str
    pull: bool = True
    # The peer CA's CRL (docs/OPERATIONS.md): certificates it revokes are refused, and
    # the file is re-read when it changes, like our own crl_file.
    crl_file: Path | None = None

    @property
    def member_id(self) -> str:
        return f"spiffe://{self.trust_domain}/gateway/{self.name}"


@dataclass(frozen=True)
class Config:
    trust_domain: str
    gateway_name: str
    region_code: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    signing_key_file: Path
    crl_file: Path | None = None
    database_url: str = "sqlite:///gateway.db"
    listen_address: str = "127.0.0.1:50051"
    metrics_address: str = "127.0.0.1:9102"
    log_origin: str = ""
    checkpoint_interval_s: float = 1.0
    max_message_bytes: int = 4 * 1024 * 1024
    max_subjects_per_check: int = 10_000
    max_stream_records: int = 1_000_000
    max_submit_batch_records: int = 1000
    batch_max_records: int = 512
    batch_max_wait_ms: float = 2.0
    worker_threads: int = 16
    # Per member (gateway.transport.limits): requests/s and burst (0 rps: no limit),
    # concurrent streams, and how long a SubmitRecords stream may receive nothing.
    rate_limit_per_member_rps: float = 2000.0
    rate_limit_burst: int = 4000
    max_streams_per_member: int = 4
    stream_idle_timeout_s: float = 30.0
    # Availability (docs/OPERATIONS.md, "Threads, streams and connections"): streams of
    # all members together, read streams' age, and connection bounds.
    max_streams: int = 64
    stream_max_age_s: float = 600.0
    tls_handshake_timeout_s: float = 5.0
    connection_idle_timeout_s: float = 300.0
    connection_max_age_s: float = 1800.0
    connection_max_age_grace_s: float = 30.0
    min_open_files: int = 4096
    metrics_threads: int = 2
    metrics_timeout_s: float = 10.0
    metrics_max_connections: int = 32
    # Subjects (and records) one member may read a day (0: no quota); see "Access log".
    access_log_daily_quota: int = 100_000
    crl_reload_interval_s: float = 5.0
    access_log_retention_days: int = 3 * 366
    shutdown_grace_s: float = 5.0
    federation_backoff_initial_s: float = 0.5
    federation_backoff_max_s: float = 30.0
    federation_batch_max_entries: int = 1000
    # Log integrity (docs/OPERATIONS.md, "Log integrity"): entries rehashed at start-up,
    # and the background scrubber's pace (0: off). 100 entries/s goes round 10^6
    # entries in under 3 hours.
    startup_check_entries: int = 16_384
    scrub_rate_entries_per_s: float = 100.0
    # Compliance (docs/OPERATIONS.md, "Deadlines, escalation and the monthly report").
    sanction_grace_days: int = 7
    deadline_rules: str = ""
    calendar_dir: Path | None = None
    # Intake (docs/OPERATIONS.md, "Record times"): how far back a member may date a record
    # it submits, and how far ahead of our clock any time may be.
    backdating_window_days: int = 30
    clock_skew_s: float = 300.0
    # The public read-only HTTP service (docs/OPERATIONS.md, "Public service"): its
    # address ("" = off), each client address's requests/s and burst, the largest page,
    # open connections, and the reverse proxies whose X-Forwarded-For names the client.
    public_address: str = ""
    public_rate_per_client_rps: float = 10.0
    public_rate_burst: int = 40
    public_max_page: int = 1000
    public_max_connections: int = 256
    public_forwarded_allow_ips: str = ""
    # Retention (docs/OPERATIONS.md, "Retention and erasure"): the gateway erases the
    # disclosures of its trust domain's redactable records this many days after their
    # listing closed, per kind; and per ticker round at most so many erasures of at most
    # so many records each.
    retention_enabled: bool = True
    retention_listing_days: int = RETENTION_DAYS
    retention_status_change_days: int = RETENTION_DAYS
    retention_sanction_confirmation_days: int = RETENTION_DAYS
    retention_government_measure_days: int = RETENTION_DAYS
    retention_max_records_per_erasure: int = MAX_ERASED_RECORDS
    retention_max_erasures_per_tick: int = 4
    peers: tuple[PeerConfig, ...] = field(default=())

    def __post_init__(self) -> None:
        _gateway_id(self.trust_domain, self.gateway_name, "trust_domain, gateway_name")
        if not re.fullmatch(r"\d{6}", self.region_code):
            raise ConfigError(f"region_code: {self.region_code!r} must be 6 digits")
        for name in (
            "checkpoint_interval_s",
            "batch_max_wait_ms",
            "crl_reload_interval_s",
            "federation_backoff_initial_s",
            "federation_backoff_max_s",
            "stream_idle_timeout_s",
            "stream_max_age_s",
            "tls_handshake_timeout_s",
            "connection_idle_timeout_s",
            "connection_max_age_s",
            "connection_max_age_grace_s",
            "metrics_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive")
        for name in (
            "max_message_bytes",
            "max_subjects_per_check",
            "max_stream_records",
            "max_submit_batch_records",
            "batch_max_records",
            "worker_threads",
            "access_log_retention_days",
            "federation_batch_max_entries",
            "rate_limit_burst",
            "max_streams_per_member",
            "max_streams",
            "min_open_files",
            "metrics_threads",
            "metrics_max_connections",
            "public_rate_burst",
            "public_max_page",
            "public_max_connections",
            "retention_max_erasures_per_tick",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        self._check_retention()
        if self.rate_limit_per_member_rps < 0:
            raise ConfigError("rate_limit_per_member_rps: must be 0 (no limit) or more")
        if self.public_rate_per_client_rps < 0:
            raise ConfigError("public_rate_per_client_rps: must be 0 (no limit) or more")
        if self.public_max_page > 10_000:
            raise ConfigError("public_max_page: at most 10000 entries a page")
        address = r"\[?[0-9A-Za-z.:-]*\]?:\d{1,5}"
        if self.public_address and not re.fullmatch(address, self.public_address):
            raise ConfigError(
                f"public_address: {self.public_address!r} is not host:port",
                advice='e.g. "127.0.0.1:8080" behind a reverse proxy; "" turns it off',
            )
        if self.scrub_rate_entries_per_s < 0:
            raise ConfigError("scrub_rate_entries_per_s: must be 0 (off) or more")
        if self.startup_check_entries < 0:
            raise ConfigError("startup_check_entries: must be 0 or more")
        if self.access_log_daily_quota < 0:
            raise ConfigError("access_log_daily_quota: must be 0 (no quota) or more")
        self._check_peers()
        if self.sanction_grace_days < 0:
            raise ConfigError("sanction_grace_days: must not be negative")
        if self.backdating_window_days < 0:
            raise ConfigError("backdating_window_days: must not be negative")
        if not 0 <= self.clock_skew_s <= 86_400:
            raise ConfigError("clock_skew_s: must be between 0 and 86400 seconds")
        DeadlineRules.parse(self.deadline_rules)
        if not self.log_origin:
            object.__setattr__(self, "log_origin", f"{self.trust_domain}/alliance-log/v1")
        if " " in self.log_origin or "+" in self.log_origin:
            raise ConfigError("log_origin: must contain no spaces and no '+'")

    @property
    def member_id(self) -> str:
        return f"spiffe://{self.trust_domain}/gateway/{self.gateway_name}"

    @property
    def intake_rules(self) -> IntakeRules:
        return IntakeRules(
            backdating_window=timedelta(days=self.backdating_window_days),
            clock_skew=timedelta(seconds=self.clock_skew_s),
        )

    def _check_retention(self) -> None:
        for name in RETENTION_DAYS_SETTINGS:
            if not 1 <= getattr(self, name) <= MAX_RETENTION_DAYS:
                raise ConfigError(
                    f"{name}: must be between 1 and {MAX_RETENTION_DAYS} days",
                    advice="days after the listing closed (default 1096, three years)",
                )
        if not 1 <= self.retention_max_records_per_erasure <= MAX_ERASED_RECORDS:
            raise ConfigError(
                f"retention_max_records_per_erasure: must be between 1 and "
                f"{MAX_ERASED_RECORDS} (the most records one erasure may name)"
            )

    def _check_peers(self) -> None:
        seen: set[str] = set()
        for peer in self.peers:
            if peer.trust_domain == self.trust_domain:
                raise ConfigError(
                    f"peers: {peer.name} is in our own trust domain {self.trust_domain}",
                    advice="replicas of this gateway share its database; peers are other regions",
                )
            if peer.trust_domain in seen:
                raise ConfigError(f"peers: trust domain {peer.trust_domain} is listed twice")
            seen.add(peer.trust_domain)

    def check_files(self) -> None:
        """Fail at start-up, not at the first call, when a file is missing."""
        paths = [self.ca_file, self.cert_file, self.key_file, self.signing_key_file]
        paths += [p.ca_file for p in self.peers]
        for path in paths:
            if not path.is_file():
                raise ConfigError(f"{path}: file not found", advice=_FILES_ADVICE)


_FILES_ADVICE = "create certificates and keys with `alliance-gateway certs …` (docs/OPERATIONS.md)"
_PATH_FIELDS = {
    "ca_file",
    "cert_file",
    "key_file",
    "signing_key_file",
    "crl_file",
    "calendar_dir",
}


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (TOML) and apply ``ALLIANCE_<FIELD>`` overrides from ``env``."""
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: configuration file not found") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    return config_from_mapping(raw, base_dir=path.parent, env=os.environ if env is None else env)


def config_from_mapping(
    raw: Mapping[str, Any], *, base_dir: Path, env: Mapping[str, str] | None = None
) -> Config:
    fields = {f.name: f for f in dataclasses.fields(Config)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "peers":
            continue
        if key not in fields:
            raise ConfigError(f"{key}: unknown setting")
        values[key] = value
    for name in fields:
        env_value = (env or {}).get(_ENV_PREFIX + name.upper())
        if env_value is not None and name != "peers":
            values[name] = env_value
    converted = {
        name: _convert(name, value, fields[name].type, base_dir) for name, value in values.items()
    }
    converted["peers"] = tuple(_peer(p, base_dir) for p in raw.get("peers", ()))
    try:
        return Config(**converted)
    except TypeError as e:
        raise ConfigError(f"missing setting: {e}") from e


def _convert(name: str, value: Any, annotation: Any, base_dir: Path) -> Any:
    if name in _PATH_FIELDS:
        return _path(value, base_dir)
    kind = str(annotation)
    if kind == "bool":
        return _bool(name, value)
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name}: {value!r} is not a number") from e
    if name == "database_url":
        return _database_url(str(value), base_dir)
    return str(value)


def _bool(name: str, value: Any) -> bool:
    """A TOML boolean, or from the environment ``true`` / ``false`` (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in ("true", "false"):
        return text == "true"
    raise ConfigError(f"{name}: {value!r} is not true or false")


def _path(value: Any, base_dir: Path) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base_dir / path


def _database_url(url: str, base_dir: Path) -> str:
    """Relative SQLite paths are relative to the configuration file, like every path."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((base_dir / url[len(prefix) :]).resolve())
    return url


def _peer(raw: Any, base_dir: Path) -> PeerConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError("peers: each peer must be a table ([[peers]])")
    pull = raw.get("pull", True)
    if not isinstance(pull, bool):
        raise ConfigError(f"peers: peer {raw.get('name', '?')!r}: pull must be true or false")
    required = ["name", "trust_domain", "ca_file", "log_origin", "log_vkey"]
    if pull:
        required.append("address")
    missing = [k for k in required if k not in raw]
    if missing:
        raise ConfigError(f"peers: peer {raw.get('name', '?')!r} lacks {', '.join(missing)}")
    unknown = set(raw) - {*required, "address", "pull", "crl_file"}
    if unknown:
        raise ConfigError(f"peers: unknown setting(s) {', '.join(sorted(unknown))}")
    name, trust_domain = str(raw["name"]), str(raw["trust_domain"])
    _gateway_id(trust_domain, name, f"peers: {name!r}")
    origin, vkey = str(raw["log_origin"]), str(raw["log_vkey"])
    try:
        verifier = NoteVerifier.from_vkey(vkey)
    except GatewayError as e:
        raise ConfigError(f"peers: {name}: log_vkey: {e}") from e
    if verifier.name != origin:
        raise ConfigError(
            f"peers: {name}: log_vkey names {verifier.name!r}, not the log origin {origin!r}",
            advice="ask the peer for `alliance-gateway log-key` output and its log_origin",
        )
    return PeerConfig(
        name=name,
        address=str(raw.get("address", "")),
        trust_domain=trust_domain,
        ca_file=_path(raw["ca_file"], base_dir),
        log_origin=origin,
        log_vkey=vkey,
        pull=pull,
        crl_file=_path(raw["crl_file"], base_dir) if "crl_file" in raw else None,
    )
