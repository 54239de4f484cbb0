"""Start-up validation of the gateway configuration (``gateway/ops/config.py``): every
bad setting is a ConfigError that names it, before anything listens or writes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway.core.crypto import SigningKey
from gateway.core.notes import NoteSigner
from gateway.errors import ConfigError
from gateway.ops.config import Config, config_from_mapping, load_config

PEER_ORIGIN = "gd.alliance.test/alliance-log/v1"
PEER_VKEY = NoteSigner(PEER_ORIGIN, SigningKey.generate()).verifier().vkey


def _base() -> dict[str, Any]:
    return {
        "trust_domain": "zj.alliance.test",
        "gateway_name": "gw",
        "region_code": "330100",
        "ca_file": "ca.pem",
        "cert_file": "gw.pem",
        "key_file": "gw-key.pem",
        "signing_key_file": "signing-key.pem",
    }


def _peer(**overrides: Any) -> dict[str, Any]:
    peer: dict[str, Any] = {
        "name": "gd",
        "address": "127.0.0.1:50052",
        "trust_domain": "gd.alliance.test",
        "ca_file": "gd-ca.pem",
        "log_origin": PEER_ORIGIN,
        "log_vkey": PEER_VKEY,
    }
    peer.update(overrides)
    return {k: v for k, v in peer.items() if v is not None}


def _config(tmp_path: Path, env: dict[str, str] | None = None, **overrides: Any) -> Config:
    raw = _base()
    raw.update(overrides)
    return config_from_mapping(raw, base_dir=tmp_path, env=env or {})


def test_a_minimal_configuration_gets_its_defaults(tmp_path: Path) -> None:
    config = _config(tmp_path, database_url="sqlite:///data/gw.db", peers=[_peer()])
    assert config.member_id == "spiffe://zj.alliance.test/gateway/gw"
    assert config.log_origin == "zj.alliance.test/alliance-log/v1"
    assert config.ca_file == tmp_path / "ca.pem"  # relative to the file's folder
    assert config.database_url == f"sqlite:///{(tmp_path / 'data' / 'gw.db').resolve()}"
    assert config.crl_file is None and config.crl_reload_interval_s == 5.0
    (peer,) = config.peers
    assert peer.member_id == "spiffe://gd.alliance.test/gateway/gd" and peer.pull
    assert peer.ca_file == tmp_path / "gd-ca.pem"


def test_memory_and_absolute_sqlite_urls_are_kept(tmp_path: Path) -> None:
    for url in ("sqlite:///:memory:", "sqlite:////var/lib/gw.db", "postgresql+psycopg://u@h/d"):
        assert _config(tmp_path, database_url=url).database_url == url


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {
        "ALLIANCE_CHECKPOINT_INTERVAL_S": "2.5",
        "ALLIANCE_WORKER_THREADS": "3",
        "ALLIANCE_PEERS": "ignored: peers come from the file only",
    }
    config = _config(tmp_path, env, checkpoint_interval_s=9.0)
    assert (config.checkpoint_interval_s, config.worker_threads) == (2.5, 3)
    assert config.peers == ()


def test_load_config_reads_toml_and_names_a_missing_or_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    lines = [f'{k} = "{v}"' for k, v in _base().items()]
    path.write_text("\n".join([*lines, "checkpoint_interval_s = 0.5", ""]))
    config = load_config(path, env={})
    assert config.checkpoint_interval_s == 0.5 and config.cert_file == tmp_path / "gw.pem"

    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "missing.toml", env={})
    path.write_text("trust_domain = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"colour": "red"}, "colour: unknown setting"),
        (
            {"trust_domain": "ZJ Alliance"},
            "trust_domain, gateway_name: .*'ZJ Alliance' may contain",
        ),
        ({"gateway_name": "gw/1"}, "trust_domain, gateway_name: .*name 'gw/1' may contain"),
        ({"region_code": "33010"}, "region_code: '33010' must be 6 digits"),
        ({"checkpoint_interval_s": 0}, "checkpoint_interval_s: must be positive"),
        ({"crl_reload_interval_s": -1}, "crl_reload_interval_s: must be positive"),
        ({"batch_max_wait_ms": 0}, "batch_max_wait_ms: must be positive"),
        ({"federation_backoff_max_s": 0}, "federation_backoff_max_s: must be positive"),
        ({"max_message_bytes": 0}, "max_message_bytes: must be at least 1"),
        ({"worker_threads": 0}, "worker_threads: must be at least 1"),
        ({"federation_batch_max_entries": 0}, "federation_batch_max_entries: must be at least"),
        ({"access_log_retention_days": 0}, "access_log_retention_days: must be at least 1"),
        ({"worker_threads": "many"}, "worker_threads: 'many' is not a number"),
        ({"rate_limit_per_member_rps": -0.5}, "rate_limit_per_member_rps: must be 0"),
        ({"sanction_grace_days": -1}, "sanction_grace_days: must not be negative"),
        ({"deadline_rules": "BLACKLIST=three"}, "deadline_rules"),
        ({"log_origin": "zj log"}, "log_origin: must contain no spaces"),
        ({"log_origin": "zj+log"}, "log_origin: must contain no spaces and no '\\+'"),
    ],
)
def test_a_bad_setting_is_named(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, **overrides)


def test_a_missing_required_setting_is_named(tmp_path: Path) -> None:
    raw = _base()
    del raw["signing_key_file"]
    with pytest.raises(ConfigError, match=r"missing setting: .*signing_key_file"):
        config_from_mapping(raw, base_dir=tmp_path, env={})


# --- peers ---------------------------------------------------------------------------------


def test_a_peer_in_our_own_trust_domain_is_refused(tmp_path: Path) -> None:
    """A 'peer' of our own domain would be a second anchor for our members' records:
    replicas of one gateway share its database instead."""
    own = _peer(trust_domain="zj.alliance.test", log_origin="zj.alliance.test/alliance-log/v1")
    own["log_vkey"] = NoteSigner(own["log_origin"], SigningKey.generate()).verifier().vkey
    with pytest.raises(ConfigError, match="peers: gd is in our own trust domain") as refused:
        _config(tmp_path, peers=[own])
    assert "replicas" in refused.value.advice


def test_a_trust_domain_listed_twice_is_refused(tmp_path: Path) -> None:
    """Two anchors for one region: which key verifies its member records?"""
    with pytest.raises(ConfigError, match=r"trust domain gd\.alliance\.test is listed twice"):
        _config(tmp_path, peers=[_peer(), _peer(name="gd2")])


@pytest.mark.parametrize(
    ("peer", "message"),
    [
        ("gd", "each peer must be a table"),
        (_peer(pull="yes"), "pull must be true or false"),
        (_peer(address=None), "lacks address"),
        (_peer(log_vkey=None, log_origin=None), "lacks log_origin, log_vkey"),
        (_peer(colour="red"), r"unknown setting\(s\) colour"),
        (_peer(name="GD gateway"), "peers: 'GD gateway': .*name 'GD gateway' may contain"),
        (
            _peer(trust_domain="gd alliance"),
            "peers: 'gd': .*trust domain 'gd alliance' may contain",
        ),
        (_peer(log_vkey="not-a-vkey"), "peers: gd: log_vkey: "),
        (_peer(log_origin="gd.alliance.test/other-log"), "log_vkey names"),
    ],
)
def test_a_bad_peer_table_is_named(tmp_path: Path, peer: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, peers=[peer])


def test_an_anchor_only_peer_needs_no_address(tmp_path: Path) -> None:
    (peer,) = _config(tmp_path, peers=[_peer(address=None, pull=False)]).peers
    assert peer.address == "" and not peer.pull


def test_missing_files_fail_at_start_up(tmp_path: Path) -> None:
    config = _config(tmp_path, peers=[_peer()])
    for name in ("ca.pem", "gw.pem", "gw-key.pem", "signing-key.pem"):
        with pytest.raises(ConfigError, match=re.escape(f"{name}: file not found")):
            config.check_files()
        (tmp_path / name).write_text("x")
    with pytest.raises(ConfigError, match=r"gd-ca\.pem: file not found"):
        config.check_files()
    (tmp_path / "gd-ca.pem").write_text("x")
    config.check_files()
