"""Member administration against real gateways: key rotation, and the operator's
``alliance-gateway members …`` commands run next to a serving gateway on the same
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from gwtest import Alliance, Member, audit, listing, running_gateway, submit

from certs.pki import generate_signing_key, write_public_key
from gateway.core.crypto import SigningKey, load_signing_key
from gateway.core.possession import prove_possession
from gateway.core.statements import MemberStatus
from gateway.ops.app import Gateway
from gateway.ops.cli import main
from gateway.pb.alliance.v1 import audit_pb2 as au

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
_serial = iter(range(1_000_000))


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return OK


def _submit_as(gw: Gateway, member: Member, key: SigningKey) -> grpc.StatusCode:
    """Submit a new listing by ``member`` signed with ``key``; nothing stored on refusal."""
    signer = Member(member.member_id, member.cert, member.key, key, member.ca, member.region)
    env = signer.sign(listing(member, decision_ref=f"M-{next(_serial)}"))
    size = gw.core.store.log_size()
    with member.channel(gw.port) as ch:
        code = _code(lambda: submit(ch, env))
    assert (gw.core.store.log_size() == size) == (code != OK)
    return code


def _read(gw: Gateway, member: Member) -> grpc.StatusCode:
    with member.channel(gw.port) as ch:
        return _code(lambda: audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=10))


def _eventually(probe: Callable[[], grpc.StatusCode], expected: grpc.StatusCode) -> None:
    """The running gateway notices another process's appends on its next tick."""
    deadline = time.monotonic() + 5
    code = probe()
    while code != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        code = probe()
    assert code == expected


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    return a


def test_rotated_out_key_is_refused_at_once(alliance: Alliance, database_url: str) -> None:
    amr = alliance.members["zj-amr"]
    with running_gateway(alliance.config(database_url), register=(amr,)) as gw:
        old, new, newer = amr.signing_key, SigningKey.generate(), SigningKey.generate()
        assert _submit_as(gw, amr, old) == OK
        assert _submit_as(gw, amr, new) == INVALID  # not registered yet
        # Registered a moment ago, rotated now, no overlap: the old key ends now.
        gw.core.members.rotate_key(
            amr.member_id,
            new.public_key().raw,
            possession=prove_possession(new, amr.member_id),
            overlap=timedelta(0),
        )
        assert _submit_as(gw, amr, old) == INVALID
        assert _submit_as(gw, amr, new) == OK
        # With an overlap both keys sign until it ends.
        gw.core.members.rotate_key(
            amr.member_id,
            newer.public_key().raw,
            possession=prove_possession(newer, amr.member_id),
            overlap=timedelta(hours=1),
        )
        assert _submit_as(gw, amr, new) == OK
        assert _submit_as(gw, amr, newer) == OK
        assert _submit_as(gw, amr, old) == INVALID


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI installs its own root handler and level; give pytest its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _config_file(alliance: Alliance, database_url: str, folder: Path) -> Path:
    """The operator's TOML file, written like a deployment's (paths relative to it)."""
    gw_dir = Path("..") / alliance.gw_dir.relative_to(alliance.root)
    lines = [
        f'trust_domain = "{alliance.trust_domain}"',
        f'gateway_name = "{alliance.gateway_name}"',
        f'region_code = "{alliance.region}"',
        f'database_url = "{database_url}"',
        'listen_address = "127.0.0.1:0"',
        'metrics_address = "127.0.0.1:0"',
        'ca_file = "../ca/ca.pem"',
        'crl_file = "../ca/crl.pem"',
        f'cert_file = "{gw_dir / (alliance.gateway_name + ".pem")}"',
        f'key_file = "{gw_dir / (alliance.gateway_name + "-key.pem")}"',
        f'signing_key_file = "{gw_dir / "signing-key.pem"}"',
        "checkpoint_interval_s = 0.2",
        "crl_reload_interval_s = 0.2",
    ]
    folder.mkdir()
    path = folder / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _proof(key: SigningKey, member_id: str) -> str:
    return base64.b64encode(prove_possession(key, member_id)).decode("ascii")


def _cli(*argv: str | Path) -> int:
    return main(["--log-level", "WARNING", *(str(a) for a in argv)])


@pytest.mark.usefixtures("restore_logging")
def test_members_cli_next_to_a_running_gateway(
    alliance: Alliance,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _config_file(alliance, database_url, alliance.root / "etc")
    newcomer = alliance.member("platform", "shop-new")
    public = tmp_path / "shop-new.pub.pem"
    write_public_key(alliance.root / "members" / "shop-new" / "signing-key.pem", public)
    rotated = tmp_path / "rotated-key.pem"
    generate_signing_key(rotated)
    write_public_key(rotated, tmp_path / "rotated.pub.pem")
    cfg = ("--config", config)
    member = ("--member-id", newcomer.member_id)
    # The proofs the member hands the operator with its public keys.
    proof = ("--possession", _proof(newcomer.signing_key, newcomer.member_id))
    rotated_proof = ("--possession", _proof(load_signing_key(rotated), newcomer.member_id))

    with running_gateway(alliance.config(database_url)) as gw:
        assert _read(gw, newcomer) == DENIED
        assert (
            _cli(
                "members",
                "add",
                *cfg,
                *member,
                "--region",
                "330100",
                "--public-key",
                public,
                *proof,
            )
            == 0
        )
        _eventually(lambda: _read(gw, newcomer), OK)
        assert _submit_as(gw, newcomer, newcomer.signing_key) == OK

        assert _cli("members", "suspend", *cfg, *member) == 0
        _eventually(lambda: _read(gw, newcomer), DENIED)
        assert _cli("members", "activate", *cfg, *member) == 0
        _eventually(lambda: _read(gw, newcomer), OK)

        new_key = load_signing_key(rotated)
        rotate = (
            "members",
            "rotate-key",
            *cfg,
            *member,
            "--public-key",
            tmp_path / "rotated.pub.pem",
            *rotated_proof,
        )
        assert _cli(*rotate, "--overlap-hours", "0") == 0
        _eventually(lambda: _submit_as(gw, newcomer, new_key), OK)
        assert _submit_as(gw, newcomer, newcomer.signing_key) == INVALID

        capsys.readouterr()
        assert _cli("members", "list", *cfg) == 0
        rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
        mine = [r for r in rows if r[0] == newcomer.member_id]
        assert len(mine) == 1 and mine[0][1:3] == ["active", "330100"]
        assert any(r[0] == alliance.gateway_id for r in rows)

        # Mistakes exit 2 with a one-line error and a hint, and change nothing.
        size = gw.core.store.log_size()
        unknown = ("--member-id", f"spiffe://{alliance.trust_domain}/platform/nobody")
        assert _cli("members", "suspend", *cfg, *unknown) == 2
        foreign = ("--member-id", "spiffe://gd.alliance.test/platform/shop")
        assert (
            _cli(
                "members",
                "add",
                *cfg,
                *foreign,
                "--region",
                "440100",
                "--public-key",
                public,
                *proof,
            )
            == 2
        )
        assert _cli(*rotate, "--overlap-hours", "-1") == 2
        err = capsys.readouterr().err
        assert err.count("error: ") == 3 and err.count("hint: ") == 3
        assert gw.core.store.log_size() == size
        record = gw.core.directory.member(newcomer.member_id)
        assert record is not None and record.status is MemberStatus.ACTIVE


def test_rotation_keeps_history_verifiable(alliance: Alliance, database_url: str) -> None:
    """The ended key stays in the member record with its window, so records it signed
    before the rotation still verify at their time."""
    amr = alliance.members["zj-amr"]
    with running_gateway(alliance.config(database_url), register=(amr,)) as gw:
        before = datetime.now(UTC)
        new = SigningKey.generate()
        gw.core.members.rotate_key(
            amr.member_id,
            new.public_key().raw,
            possession=prove_possession(new, amr.member_id),
            overlap=timedelta(0),
        )
        after = datetime.now(UTC) + timedelta(milliseconds=1)
        old_raw = amr.signing_key.public_key().raw
        assert old_raw in [k.raw for k in gw.core.directory.keys_at(amr.member_id, before)]
        keys_now = [k.raw for k in gw.core.directory.keys_at(amr.member_id, after)]
        assert keys_now == [new.public_key().raw]
