"""Hardening part 1, items 5 and 6: database files owner-only; refused calls logged.

5. The SQLite files (``.db``, ``-wal``, ``-shm``) hold the access log and were created
   0644; they are now 0600, and an existing file readable by others is tightened.
6. Refused calls (a certificate that names no member, revoked, suspended, a role that
   may not call the RPC) left no log line; each is now logged with the caller, the RPC
   and the code, rate-limited so a flood of refusals cannot flood the log.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from availability_support import Code, code_of, unary_call, wait_for
from gwtest import Alliance, Member, listing, running_gateway, submit

from certs.pki import revoke
from gateway.core.statements import MemberStatus
from gateway.ops.app import Gateway

REFUSALS = "gateway.transport.interceptor"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_are_owner_only(tmp_path: Path) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    shop = a.member("platform", "shop-a")
    db = tmp_path / "gw.db"
    with running_gateway(a.config(f"sqlite:///{db}"), register=(shop,)) as gw:
        with shop.channel(gw.port) as ch:
            submit(ch, shop.sign(listing(shop)))
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(p.exists() for p in files)
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_an_existing_database_readable_by_others_is_tightened(tmp_path: Path) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    db = tmp_path / "gw.db"
    with running_gateway(a.config(f"sqlite:///{db}")):
        pass
    db.chmod(0o644)
    with running_gateway(a.config(f"sqlite:///{db}")):
        assert _mode(db) == 0o600


# --- refused calls in the log ----------------------------------------------------------


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    a = Alliance(tmp_path_factory.mktemp("refusals"), "zj.alliance.test")
    a.member("platform", "shop-a")
    a.member("platform", "suspended")
    a.member("platform", "revoked")
    a.member("monitor", "ndrc", region="110000")
    return a


@pytest.fixture(scope="module")
def stranger(alliance: Alliance) -> Member:
    m = alliance.member("platform", "stranger")
    del alliance.members["stranger"]
    return m


@pytest.fixture(scope="module")
def gw(alliance: Alliance) -> Iterator[Gateway]:
    config = alliance.config(f"sqlite:///{alliance.root / 'refusals.db'}")
    with running_gateway(config, register=tuple(alliance.members.values())) as g:
        g.core.members.set_status(alliance.members["suspended"].member_id, MemberStatus.SUSPENDED)
        yield g


def _refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == REFUSALS and r.levelno == logging.WARNING and "refused" in r.getMessage()
    ]


@pytest.mark.parametrize("who", ["stranger", "suspended", "revoked", "monitor-submits"])
def test_a_refused_call_is_logged_with_caller_rpc_and_code(
    gw: Gateway,
    alliance: Alliance,
    stranger: Member,
    who: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=REFUSALS)
    if who == "revoked":
        member = alliance.members["revoked"]
        revoke(alliance.ca_dir, member.cert)
        with member.channel(gw.port) as ch:
            wait_for(lambda: unary_call(ch) is Code.PERMISSION_DENIED, what="the CRL")
    caplog.clear()
    if who == "monitor-submits":
        member = alliance.members["ndrc"]
        shop = alliance.members["shop-a"]
        with member.channel(gw.port) as ch:
            code = code_of(lambda: submit(ch, shop.sign(listing(shop))))
        method = "/alliance.v1.Exchange/SubmitRecord"
    else:
        member = stranger if who == "stranger" else alliance.members[who]
        with member.channel(gw.port) as ch:
            code = unary_call(ch)
        method = "/alliance.v1.AuditLog/GetCheckpoint"
    assert code is Code.PERMISSION_DENIED
    lines = _refusal_lines(caplog)
    assert len(lines) == 1
    assert member.member_id in lines[0]
    assert method in lines[0]
    assert "PERMISSION_DENIED" in lines[0]


def test_refusal_lines_are_rate_limited(
    gw: Gateway, stranger: Member, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=REFUSALS)
    with stranger.channel(gw.port) as ch:
        caplog.clear()
        codes = [unary_call(ch) for _ in range(200)]
        assert set(codes) == {Code.PERMISSION_DENIED}
        lines = _refusal_lines(caplog)
        assert len(lines) < 100
        # Once the budget refills, the next line tells how many were left out.
        wait_for(lambda: _refused_once_more(ch, caplog), what="a line with the count")


def _refused_once_more(channel: object, caplog: pytest.LogCaptureFixture) -> bool:
    assert unary_call(channel) is Code.PERMISSION_DENIED  # type: ignore[arg-type]
    return any("more refusals not logged" in line for line in _refusal_lines(caplog))
