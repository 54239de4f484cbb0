"""Member profiles: reading, validation with named settings, key files; retry policy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clients import RetryPolicy
from clients.cli import main
from clients.profile import PROFILE_ENV, load_profile
from gateway.core.crypto import SigningKey, write_private_key
from gateway.core.notes import NoteSigner
from gateway.errors import ConfigError, RecordError

MEMBER = "spiffe://zj.alliance.test/platform/shop-a"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A member folder laid out as ``make run`` lays it out."""
    base = tmp_path / "dev"
    member = base / "members" / "shop-a"
    member.mkdir(parents=True)
    (base / "ca").mkdir()
    (base / "gateway").mkdir()
    (base / "ca" / "ca.pem").write_text("ca\n")
    (member / "shop-a.pem").write_text("cert\n")
    (member / "shop-a-key.pem").write_text("key\n")
    write_private_key(member / "signing-key.pem", SigningKey.generate())
    (base / "alliance-hmac.key").write_text("ab" * 32 + "\n")
    vkey = NoteSigner("zj.alliance.test/alliance-log/v1", SigningKey.generate()).verifier().vkey
    (base / "gateway" / "log.vkey").write_text(vkey + "\n")
    return member


BASE = {
    "member_id": MEMBER,
    "gateway": "127.0.0.1:50051",
    "region_code": "330100",
    "ca_file": "../../ca/ca.pem",
    "cert_file": "shop-a.pem",
    "key_file": "shop-a-key.pem",
    "signing_key_file": "signing-key.pem",
    "hmac_key_file": "../../alliance-hmac.key",
    "log_vkey_file": "../../gateway/log.vkey",
    "state_dir": "audit-state",
}


def write(folder: Path, values: dict[str, str], extra: str = "") -> Path:
    path = folder / "profile.toml"
    path.write_text("".join(f'{k} = "{v}"\n' for k, v in values.items()) + extra)
    return path


def test_a_dev_profile_loads_with_paths_relative_to_its_folder(folder: Path) -> None:
    profile = load_profile(write(folder, BASE))
    assert profile.member_id == MEMBER and profile.member.name == "shop-a"
    assert profile.ca_file == folder / "../../ca/ca.pem"
    assert profile.state_dir == folder / "audit-state"
    assert profile.server_name is None
    assert profile.hmac_key() == b"\xab" * 32
    assert profile.log_verifier().name == "zj.alliance.test/alliance-log/v1"
    assert profile.signing_key().public_key().raw == profile.signing_key().public_key().raw
    ca, cert, key = profile.tls_files()
    assert (ca, cert, key) == (b"ca\n", b"cert\n", b"key\n")


def test_the_environment_names_the_default_profile(folder: Path) -> None:
    path = write(folder, BASE)
    assert load_profile(env={PROFILE_ENV: str(path)}).path == path.resolve()
    with pytest.raises(ConfigError, match="no profile given") as err:
        load_profile(env={})
    assert "--profile" in err.value.advice and PROFILE_ENV in err.value.advice


def test_the_cli_reads_alliance_profile(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert main(["check"]) == 2
    assert "error: no profile given\nhint: pass --profile PATH" in capsys.readouterr().err
    monkeypatch.setenv(PROFILE_ENV, str(write(folder, BASE)))
    assert main(["check"]) == 2  # the profile loads; the command lacks its subjects
    assert "error: check: give USCC codes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "setting", "problem"),
    [
        ({"member_id": "shop-a"}, "member_id", "must start with spiffe://"),
        ({"gateway": "localhost"}, "gateway", "must be host:port"),
        ({"gateway": "localhost:99999"}, "gateway", "is not 1..65535"),
        ({"region_code": "990000"}, "region_code", "prefix 99"),
        ({"cert_file": "missing.pem"}, "cert_file", "file not found"),
        ({"signing_key_file": "nope.pem"}, "signing_key_file", "file not found"),
        ({"server_name": ""}, "server_name", "non-empty string"),
        ({"colour": "red"}, "colour", "unknown setting"),
    ],
)
def test_a_bad_setting_is_named(
    folder: Path, change: dict[str, str], setting: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_profile(write(folder, {**BASE, **change}))
    assert str(err.value).startswith(f"{setting}: ") and problem in str(err.value)
    assert err.value.advice


def test_missing_settings_and_bad_files(folder: Path) -> None:
    values = dict(BASE)
    del values["key_file"]
    with pytest.raises(ConfigError, match=r"^key_file: missing from the profile"):
        load_profile(write(folder, values))
    with pytest.raises(ConfigError, match="region_code: must be a non-empty string"):
        load_profile(
            write(
                folder,
                {k: v for k, v in BASE.items() if k != "region_code"},
                "region_code = 330100\n",
            )
        )
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile(write(folder, BASE, "gateway = \n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_profile(folder / "absent.toml")

    (folder / "short.key").write_text("abcd\n")
    short = load_profile(write(folder, {**BASE, "hmac_key_file": "short.key"}))
    with pytest.raises(ConfigError, match="hmac_key_file: the key is 2 bytes"):
        short.hmac_key()
    (folder / "bad.vkey").write_text("not-a-vkey\n")
    bad = load_profile(write(folder, {**BASE, "log_vkey_file": "bad.vkey"}))
    with pytest.raises(ConfigError, match=r"^log_vkey_file: "):
        bad.log_verifier()
    (folder / "rsa.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(ConfigError, match=r"^signing_key_file: "):
        load_profile(write(folder, {**BASE, "signing_key_file": "rsa.pem"})).signing_key()

    bare = {
        k: v for k, v in BASE.items() if k not in ("hmac_key_file", "log_vkey_file", "state_dir")
    }
    minimal = load_profile(write(folder, bare))
    assert minimal.state_dir == folder / "audit-state"
    with pytest.raises(ConfigError, match="hmac_key_file: not set"):
        minimal.hmac_key()
    with pytest.raises(ConfigError, match="log_vkey_file: not set"):
        minimal.log_verifier()


def test_server_name_and_round_trip(folder: Path) -> None:
    profile = load_profile(write(folder, {**BASE, "server_name": "gw.zj.example"}))
    assert profile.server_name == "gw.zj.example"
    again = folder / "again.toml"
    again.write_text(profile.to_toml())
    assert load_profile(again) == dataclasses.replace(profile, path=again.resolve())
    assert 'ca_file = "../../ca/ca.pem"' in profile.to_toml()


def test_retry_policy_backs_off_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=6, initial_backoff_s=0.1, max_backoff_s=0.5)
    for _ in range(50):
        delays = list(policy.delays())
        assert len(delays) == 5
        ceilings = [0.1, 0.2, 0.4, 0.5, 0.5]
        assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert list(RetryPolicy(max_attempts=1).delays()) == []
    with pytest.raises(RecordError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(RecordError):
        RetryPolicy(initial_backoff_s=2, max_backoff_s=1)
