"""Hardening, part 2 (issue 14), items 9 and 10: certificates.

9. A peer gateway's certificate is checked against the CRL of the peer's CA, named in
   the peer's configuration and re-read when it changes, as our own CRL is.
10. One member-id grammar, the gateway's (gateway.core.identifiers), for the `certs`
    tool too: it refused names the gateway accepts (65-128 characters) and issued names
    the gateway refuses (upper case).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from authz_support import code_of, eventually, federated_pair, has
from gwtest import USCC, Member, audit, listing, running_gateway, submit, zhejiang

from certs.pki import generate_signing_key, issue_member, read_member_id, revoke
from gateway.core.crypto import load_signing_key
from gateway.core.identifiers import MemberId
from gateway.errors import ConfigError, RecordError
from gateway.pb.alliance.v1 import audit_pb2 as au

REPO = Path(__file__).resolve().parents[2]
OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED


# --- 9. peer CRLs ---------------------------------------------------------------------------


def test_a_revoked_peer_gateway_certificate_is_refused_without_restart(
    tmp_path: Path, database_url: str
) -> None:
    """GD's CA revokes GD's gateway certificate; ZJ, which names GD's CRL in its peer
    configuration, refuses that certificate from then on (GD can no longer replicate
    from ZJ) without a restart. Before the fix the peer's CRL was never consulted."""
    gd_crl = tmp_path / "gd" / "ca" / "crl.pem"
    with federated_pair(tmp_path, database_url, zj_peer={"crl_file": str(gd_crl)}) as pair:
        zj, gd = pair.zj, pair.gd
        env = zj.platform.sign(listing(zj.platform, decision_ref="BEFORE-REVOCATION"))
        with zj.platform.channel(zj.port) as ch:
            submit(ch, env)
        eventually(lambda: has(pair.gd_gw, env.record_id), "GD replicates from ZJ")
        gd_gateway = gd.gateway_caller(zj)

        def read() -> grpc.StatusCode:
            with gd_gateway.channel(zj.port) as ch:
                return code_of(
                    lambda: audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=5)
                )

        assert read() == OK
        revoke(gd.alliance.ca_dir, gd_gateway.cert)
        # Every call from then on is refused (ending calls already open is issue 14 item 4).
        eventually(lambda: read() == DENIED, "ZJ re-reads GD's CRL and refuses the peer")
        # ZJ's own members are not affected by GD's CRL.
        with zj.platform.channel(zj.port) as ch:
            assert code_of(lambda: audit(ch).GetCheckpoint(au.GetCheckpointRequest())) == OK


def test_a_peer_without_a_crl_file_is_named_in_a_warning(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="gateway.ops.app"),
        federated_pair(tmp_path, database_url) as pair,
    ):
        assert any(
            "names no crl_file" in r.getMessage() and pair.gd.alliance.gateway_id in r.getMessage()
            for r in caplog.records
        )


# --- 10. one member-id grammar ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Shop-A", "SHOP", "shop.A", "a" * 129, "", ".", "..", "shop a", "shop/a", "shöp"],
)
def test_the_certs_tool_refuses_what_the_gateway_refuses(tmp_path: Path, name: str) -> None:
    alliance = zhejiang(tmp_path / "zj")
    member_id = f"spiffe://{alliance.trust_domain}/platform/{name}"
    with pytest.raises(RecordError):
        MemberId.parse(member_id)
    with pytest.raises(ConfigError):
        issue_member(alliance.ca_dir, member_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_certs_cli_refuses_upper_case_with_a_hint(tmp_path: Path) -> None:
    alliance = zhejiang(tmp_path / "zj")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "certs",
            "issue",
            "--ca",
            str(alliance.ca_dir),
            "--member-id",
            f"spiffe://{alliance.trust_domain}/platform/Shop-A",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "may contain only lower-case letters" in result.stderr and "hint: " in result.stderr


@pytest.mark.parametrize("length", [64, 65, 128])
def test_names_the_gateway_accepts_are_issued_and_admitted(
    tmp_path: Path, database_url: str, length: int
) -> None:
    """A member name of up to 128 characters: the tool refused 65 and more."""
    alliance = zhejiang(tmp_path / "zj")
    name = ("long-name-" * 13)[:length]
    member_id = f"spiffe://{alliance.trust_domain}/platform/{name}"
    folder = tmp_path / "long"
    issued = issue_member(alliance.ca_dir, member_id, folder)
    assert read_member_id(issued.cert.read_bytes()) == member_id
    generate_signing_key(folder / "signing-key.pem")
    member = Member(
        member_id,
        issued.cert,
        issued.key,
        load_signing_key(folder / "signing-key.pem"),
        alliance.ca,
        alliance.region,
    )
    config = alliance.config(database_url)
    with running_gateway(config, register=(member,)) as gw, member.channel(gw.port) as ch:
        env = member.sign(listing(member, uscc=USCC[0], decision_ref=f"LONG-{length}"))
        assert code_of(lambda: submit(ch, env)) == OK
