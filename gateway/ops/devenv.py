"""``make run``: a development alliance on this machine, then the gateway in the foreground.

Creates (once) under ``--dir``: a regional CA for trust domain ``zj.alliance.test``,
the gateway's TLS certificate and Ed25519 log key, four members (two platforms, an
authority, a monitor) with certificates, signing keys and a client profile each, and a
``gateway.toml`` on SQLite with the public search page and feed on 127.0.0.1:8080.
Registers the members, then serves until Ctrl-C.
Everything it writes is development material: never use it in production.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from certs.pki import (
    create_ca,
    generate_signing_key,
    issue_gateway,
    issue_member,
    possession_proof,
)
from gateway.core.crypto import load_signing_key
from gateway.core.notes import NoteSigner
from gateway.ops.app import Core
from gateway.ops.cli import main as cli_main
from gateway.ops.config import load_config

TRUST_DOMAIN = "zj.alliance.test"
REGION = "330100"
GATEWAY_NAME = "zj-gateway"
MEMBERS = (
    # Display names as the public page and the report show them (in Chinese, like the
    # official names of gateway/core/names.toml).
    ("platform", "shop-a", "330100", "示例电商平台甲"),
    ("platform", "shop-b", "330100", "示例电商平台乙"),
    ("authority", "zj-amr", "330000", "浙江省市场监督管理局"),
    ("monitor", "ndrc", "110000", "国家发展改革委（监测）"),
)


def prepare(
    base: Path,
    *,
    listen: str = "127.0.0.1:50051",
    metrics: str = "127.0.0.1:9102",
    public: str = "127.0.0.1:8080",
) -> Path:
    """Create the dev alliance under ``base`` if missing; return the gateway config path."""
    base.mkdir(parents=True, exist_ok=True)
    ca = base / "ca"
    if not (ca / "ca.pem").exists():
        create_ca(ca, TRUST_DOMAIN)
    gw = base / "gateway"
    if not (gw / f"{GATEWAY_NAME}.pem").exists():
        issue_gateway(ca, TRUST_DOMAIN, GATEWAY_NAME, gw)
    if not (gw / "signing-key.pem").exists():
        generate_signing_key(gw / "signing-key.pem")
    hmac_key = base / "alliance-hmac.key"
    if not hmac_key.exists():
        fd = os.open(hmac_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    config = gw / "gateway.toml"
    if not config.exists():
        config.write_text(
            f'trust_domain = "{TRUST_DOMAIN}"\n'
            f'gateway_name = "{GATEWAY_NAME}"\n'
            f'region_code = "{REGION}"\n'
            f'listen_address = "{listen}"\n'
            f'metrics_address = "{metrics}"\n'
            f'public_address = "{public}"\n'
            'database_url = "sqlite:///gateway.db"\n'
            'ca_file = "../ca/ca.pem"\n'
            f'cert_file = "{GATEWAY_NAME}.pem"\n'
            f'key_file = "{GATEWAY_NAME}-key.pem"\n'
            'signing_key_file = "signing-key.pem"\n'
            'crl_file = "../ca/crl.pem"\n'
        )
    vkey = NoteSigner(load_config(config).log_origin, load_signing_key(gw / "signing-key.pem"))
    (gw / "log.vkey").write_text(vkey.verifier().vkey + "\n")
    host, _, port = listen.rpartition(":")
    for role, name, region, display in MEMBERS:
        _member(base, ca, role, name, region, display, f"{host}:{port}", hmac_key)
    return config


def _member(
    base: Path, ca: Path, role: str, name: str, region: str, display: str, address: str, hmac: Path
) -> None:
    folder = base / "members" / name
    member_id = f"spiffe://{TRUST_DOMAIN}/{role}/{name}"
    if not (folder / f"{name}.pem").exists():
        issue_member(ca, member_id, folder)
    if not (folder / "signing-key.pem").exists():
        generate_signing_key(folder / "signing-key.pem")
    profile = folder / "profile.toml"
    if not profile.exists():
        profile.write_text(
            f'member_id = "{member_id}"\n'
            f'gateway = "{address}"\n'
            f'region_code = "{region}"\n'
            'ca_file = "../../ca/ca.pem"\n'
            f'cert_file = "{name}.pem"\n'
            f'key_file = "{name}-key.pem"\n'
            'signing_key_file = "signing-key.pem"\n'
            f'hmac_key_file = "{os.path.relpath(hmac, folder)}"\n'
            'log_vkey_file = "../../gateway/log.vkey"\n'
            'state_dir = "audit-state"\n'
        )
    (folder / ".display-name").write_text(display, encoding="utf-8")


def register(config: Path, base: Path) -> None:
    core = Core(load_config(config))
    try:
        core.members.ensure_self(REGION)
        for role, name, region, display in MEMBERS:
            member_id = f"spiffe://{TRUST_DOMAIN}/{role}/{name}"
            if core.directory.member(member_id) is None:
                # What the member hands the operator: its public key and the proof that
                # it holds the private key (`alliance-gateway certs possession`).
                key_file = base / "members" / name / "signing-key.pem"
                public_hex, proof = possession_proof(key_file, member_id)
                core.members.add(
                    member_id,
                    region,
                    bytes.fromhex(public_hex),
                    possession=proof,
                    display_name=display,
                )
    finally:
        core.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.ops.devenv", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".dev"))
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args(argv)
    base = args.dir.resolve()
    config = prepare(base)
    register(config, base)
    print(f"dev alliance ready in {base}; member profiles in {base / 'members'}", flush=True)
    public = load_config(config).public_address
    if public:
        print(f"public search page and feed: http://{public}/", flush=True)
    if args.prepare_only:
        return 0
    return cli_main(["serve", "--config", str(config)])


if __name__ == "__main__":
    sys.exit(main())
