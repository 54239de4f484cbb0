"""A member's client profile: who it is, where its gateway is, and its key files.

A profile is a TOML file (``alliance-gateway``'s dev environment writes one per member)::

    member_id = "spiffe://zj.alliance.test/platform/shop-a"
    gateway = "gw.zj.example:50051"        # host:port of the regional gateway
    region_code = "330100"                 # default region of listings this member files
    ca_file = "../../ca/ca.pem"            # the alliance CA bundle (trust anchor for TLS)
    cert_file = "shop-a.pem"               # TLS client certificate (SPIFFE URI SAN)
    key_file = "shop-a-key.pem"            # its private key
    signing_key_file = "signing-key.pem"   # Ed25519 record-signing key
    hmac_key_file = "../../alliance-hmac.key"  # optional: alliance key for resident ids
    log_vkey_file = "../../gateway/log.vkey"   # optional: the log's C2SP verifier key
    state_dir = "audit-state"              # optional: the monitor's own state
    server_name = "gw.zj.example"          # optional: TLS name override

Paths are relative to the profile's folder. ``ALLIANCE_PROFILE`` names the default
profile of the CLI. Anything missing or malformed is a ``ConfigError`` naming the
setting, with advice.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.core.crypto import SigningKey, load_signing_key
from gateway.core.identifiers import MemberId, validate_region_code
from gateway.core.notes import NoteVerifier
from gateway.errors import ConfigError, GatewayError

__all__ = ["PROFILE_ENV", "Profile", "load_profile"]

PROFILE_ENV: Final = "ALLIANCE_PROFILE"

_REQUIRED: Final = (
    "member_id",
    "gateway",
    "region_code",
    "ca_file",
    "cert_file",
    "key_file",
    "signing_key_file",
)
_OPTIONAL: Final = ("hmac_key_file", "log_vkey_file", "state_dir", "server_name")
_REQUIRED_FILES: Final = ("ca_file", "cert_file", "key_file", "signing_key_file")
_MIN_HMAC_KEY_BYTES: Final = 32
_MAX_SMALL_FILE: Final = 64 * 1024
_ADVICE: Final = "fix the named setting in your profile.toml (see `alliance --help`)"


def _error(setting: str, problem: str, advice: str = _ADVICE) -> ConfigError:
    return ConfigError(f"{setting}: {problem}", advice=advice)


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated member profile; paths are absolute."""

    member_id: str
    gateway: str
    region_code: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    signing_key_file: Path
    state_dir: Path
    hmac_key_file: Path | None = None
    log_vkey_file: Path | None = None
    server_name: str | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        try:
            MemberId.parse(self.member_id)
        except GatewayError as e:
            raise _error("member_id", str(e)) from e
        _check_address(self.gateway)
        try:
            validate_region_code(self.region_code)
        except GatewayError as e:
            raise _error("region_code", str(e)) from e
        if self.server_name is not None and (not self.server_name or " " in self.server_name):
            raise _error("server_name", f"{self.server_name!r} is not a host name")

    @property
    def member(self) -> MemberId:
        return MemberId.parse(self.member_id)

    def signing_key(self) -> SigningKey:
        """The member's Ed25519 record-signing key."""
        try:
            return load_signing_key(self.signing_key_file)
        except OSError as e:
            raise _error("signing_key_file", f"cannot read {self.signing_key_file}: {e}") from e
        except GatewayError as e:
            raise _error("signing_key_file", f"{self.signing_key_file}: {e}") from e

    def tls_files(self) -> tuple[bytes, bytes, bytes]:
        """``(ca bundle, certificate chain, private key)`` as PEM bytes."""
        return (
            _read("ca_file", self.ca_file),
            _read("cert_file", self.cert_file),
            _read("key_file", self.key_file),
        )

    def hmac_key(self) -> bytes:
        """The alliance-wide key that turns resident ids into pseudonyms (hex in its file)."""
        if self.hmac_key_file is None:
            raise _error(
                "hmac_key_file",
                "not set in the profile; it is needed for natural persons",
                "add hmac_key_file = <path of the alliance-wide key file> to the profile",
            )
        text = _read("hmac_key_file", self.hmac_key_file).decode("ascii", "replace").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError as e:
            raise _error("hmac_key_file", f"{self.hmac_key_file} does not hold hex") from e
        if len(key) < _MIN_HMAC_KEY_BYTES:
            raise _error(
                "hmac_key_file",
                f"the key is {len(key)} bytes; at least {_MIN_HMAC_KEY_BYTES} are required",
            )
        return key

    def log_verifier(self) -> NoteVerifier:
        """The gateway log's C2SP note verifier key (``alliance-gateway log-key``)."""
        if self.log_vkey_file is None:
            raise _error(
                "log_vkey_file",
                "not set in the profile; auditing needs the log's verifier key",
                "ask the gateway operator for `alliance-gateway log-key` and save it in a file",
            )
        text = _read("log_vkey_file", self.log_vkey_file).decode("utf-8", "replace").strip()
        try:
            return NoteVerifier.from_vkey(text)
        except GatewayError as e:
            raise _error("log_vkey_file", f"{self.log_vkey_file}: {e}") from e

    def to_toml(self) -> str:
        """The profile as TOML; paths relative to the profile's folder when possible."""
        base = self.path.parent if self.path is not None else None
        lines = [
            f"member_id = {_quote(self.member_id)}",
            f"gateway = {_quote(self.gateway)}",
            f"region_code = {_quote(self.region_code)}",
        ]
        for name in ("ca_file", "cert_file", "key_file", "signing_key_file", "state_dir"):
            lines.append(f"{name} = {_quote(_relative(getattr(self, name), base))}")
        for name in ("hmac_key_file", "log_vkey_file"):
            value = getattr(self, name)
            if value is not None:
                lines.append(f"{name} = {_quote(_relative(value, base))}")
        if self.server_name is not None:
            lines.append(f"server_name = {_quote(self.server_name)}")
        return "\n".join(lines) + "\n"


def load_profile(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Profile:
    """Read and validate a profile; ``None`` means the file named by ``ALLIANCE_PROFILE``."""
    if path is None:
        value = (os.environ if env is None else env).get(PROFILE_ENV, "")
        if not value:
            raise ConfigError(
                "no profile given",
                advice=f"pass --profile PATH or set {PROFILE_ENV} to your profile.toml",
            )
        path = value
    file = Path(path).expanduser()
    try:
        with file.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError as e:
        raise ConfigError(
            f"profile {file}: file not found",
            advice=f"pass --profile PATH or set {PROFILE_ENV} to your profile.toml",
        ) from e
    except OSError as e:
        raise ConfigError(f"profile {file}: cannot read it: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"profile {file}: not valid TOML: {e}") from e
    return profile_from_mapping(raw, base_dir=file.resolve().parent, path=file.resolve())


def profile_from_mapping(
    raw: Mapping[str, object], *, base_dir: Path, path: Path | None = None
) -> Profile:
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _error(
            unknown[0], "unknown setting", f"known settings: {', '.join(_REQUIRED + _OPTIONAL)}"
        )
    missing = [name for name in _REQUIRED if name not in raw]
    if missing:
        raise _error(missing[0], "missing from the profile")
    values: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(value, str) or not value:
            raise _error(name, f"must be a non-empty string, got {value!r}")
        values[name] = value
    files = {name: _path(values[name], base_dir) for name in _REQUIRED_FILES}
    for name, file in files.items():
        if not file.is_file():
            raise _error(name, f"{file}: file not found", _files_advice(name))
    optional = {
        name: _path(values[name], base_dir) if name in values else None
        for name in ("hmac_key_file", "log_vkey_file")
    }
    return Profile(
        member_id=values["member_id"],
        gateway=values["gateway"],
        region_code=values["region_code"],
        ca_file=files["ca_file"],
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        signing_key_file=files["signing_key_file"],
        state_dir=_path(values.get("state_dir", "audit-state"), base_dir),
        hmac_key_file=optional["hmac_key_file"],
        log_vkey_file=optional["log_vkey_file"],
        server_name=values.get("server_name"),
        path=path,
    )


def _files_advice(name: str) -> str:
    if name == "signing_key_file":
        return "create one with `alliance-gateway signing-key --out PATH` and have it registered"
    return "ask your alliance's CA operator for your certificate, key and the CA bundle"


def _check_address(address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or host in ("[]",):
        raise _error(
            "gateway", f"{address!r} must be host:port", 'e.g. gateway = "127.0.0.1:50051"'
        )
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _error(
            "gateway",
            f"port {port!r} of {address!r} is not 1..65535",
            'e.g. gateway = "127.0.0.1:50051"',
        )


def _path(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _read(setting: str, path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_SMALL_FILE + 1)
    except OSError as e:
        raise _error(setting, f"cannot read {path}: {e}", _files_advice(setting)) from e
    if len(data) > _MAX_SMALL_FILE:
        raise _error(setting, f"{path} is larger than {_MAX_SMALL_FILE} bytes")
    return data


def _relative(path: Path, base: Path | None) -> str:
    if base is None:
        return str(path)
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return str(path)


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
