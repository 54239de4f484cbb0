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
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]{1,255}$")
_NAME = re.compile(r"^[a-z0-9._-]{1,128}$")
_ENV_PREFIX = "ALLIANCE_"


@dataclass(frozen=True)
class PeerConfig:
    """A federated regional gateway, configured out of band."""

    name: str
    address: str
    trust_domain: str
    ca_file: Path
    log_origin: str
    # C2SP vkey of the peer's log/gateway key: name+hex(keyid)+base64(0x01||pubkey).
    log_vkey: str


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
    batch_max_records: int = 512
    batch_max_wait_ms: float = 2.0
    worker_threads: int = 16
    crl_reload_interval_s: float = 5.0
    access_log_retention_days: int = 3 * 366
    shutdown_grace_s: float = 5.0
    peers: tuple[PeerConfig, ...] = field(default=())

    def __post_init__(self) -> None:
        if not _TRUST_DOMAIN.match(self.trust_domain):
            raise ConfigError(f"trust_domain: {self.trust_domain!r} is not a valid trust domain")
        if not _NAME.match(self.gateway_name):
            raise ConfigError(f"gateway_name: {self.gateway_name!r} must match [a-z0-9._-]+")
        if not re.fullmatch(r"\d{6}", self.region_code):
            raise ConfigError(f"region_code: {self.region_code!r} must be 6 digits")
        for name in ("checkpoint_interval_s", "batch_max_wait_ms", "crl_reload_interval_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive")
        for name in (
            "max_message_bytes",
            "max_subjects_per_check",
            "max_stream_records",
            "batch_max_records",
            "worker_threads",
            "access_log_retention_days",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if not self.log_origin:
            object.__setattr__(self, "log_origin", f"{self.trust_domain}/alliance-log/v1")
        if " " in self.log_origin or "+" in self.log_origin:
            raise ConfigError("log_origin: must contain no spaces and no '+'")

    @property
    def member_id(self) -> str:
        return f"spiffe://{self.trust_domain}/gateway/{self.gateway_name}"

    def check_files(self) -> None:
        """Fail at start-up, not at the first call, when a file is missing."""
        paths = [self.ca_file, self.cert_file, self.key_file, self.signing_key_file]
        paths += [p.ca_file for p in self.peers]
        for path in paths:
            if not path.is_file():
                raise ConfigError(f"{path}: file not found", advice=_FILES_ADVICE)


_FILES_ADVICE = "create certificates and keys with `alliance-gateway certs …` (docs/OPERATIONS.md)"
_PATH_FIELDS = {"ca_file", "cert_file", "key_file", "signing_key_file", "crl_file"}


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
    required = ("name", "address", "trust_domain", "ca_file", "log_origin", "log_vkey")
    missing = [k for k in required if k not in raw]
    if missing:
        raise ConfigError(f"peers: peer {raw.get('name', '?')!r} lacks {', '.join(missing)}")
    unknown = set(raw) - set(required)
    if unknown:
        raise ConfigError(f"peers: unknown setting(s) {', '.join(sorted(unknown))}")
    return PeerConfig(
        name=str(raw["name"]),
        address=str(raw["address"]),
        trust_domain=str(raw["trust_domain"]),
        ca_file=_path(raw["ca_file"], base_dir),
        log_origin=str(raw["log_origin"]),
        log_vkey=str(raw["log_vkey"]),
    )
