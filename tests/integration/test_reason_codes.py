"""The gateway's stable reason codes (trailing metadata ``alliance-reason``) on real
refusals from a real gateway, and the ``alliance`` CLI saying them in Chinese."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from gwtest import USCC, Alliance, Member, listing, running_gateway, submit
from test_client import write_profile

from clients import reasons
from clients.cli import main
from gateway import codec
from gateway.core import dsse
from gateway.core.statements import LifecycleStep, MemberStatus, StatusChange
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import exchange_pb2_grpc
from gateway.pb.alliance.v1 import statements_pb2 as pb

UNKNOWN = "ab" * 32


@dataclass
class Site:
    gw: Gateway
    amr: Member
    shop: Member
    other: Member
    authority: Path
    platform: Path


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = alliance.member("authority", "zj-amr", region="330000")
    shop = alliance.member("platform", "shop-a")
    other = alliance.member("platform", "shop-b")
    config = alliance.config(database_url)
    with running_gateway(config, register=(amr, shop, other)) as gw:
        address = f"127.0.0.1:{gw.port}"
        yield Site(
            gw,
            amr,
            shop,
            other,
            write_profile(alliance, amr, address, config.log_origin),
            write_profile(alliance, shop, address, config.log_origin),
        )


def _reason(call: Callable[[], object]) -> tuple[grpc.StatusCode, str | None]:
    try:
        call()
    except grpc.RpcError as e:
        assert isinstance(e, grpc.Call)
        found = [v for k, v in e.trailing_metadata() or () if k == reasons.REASON_KEY]
        return e.code(), found[0] if found else None
    raise AssertionError("the gateway accepted the call")


def _recent() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def test_refusals_carry_their_reason_code(site: Site) -> None:
    shop, other = site.shop, site.other
    port = site.gw.port
    with shop.channel(port) as ch:
        # Authorization: a record issued in another member's name.
        forged = shop.sign(listing(other, listed_at=_recent()))
        assert _reason(lambda: submit(ch, forged)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "issuer-not-signer",
        )
        # Not found: a step on a listing the gateway does not know.
        step = StatusChange(
            issuer=shop.member_id,
            listing_id=UNKNOWN,
            step=LifecycleStep.CORRECTED,
            effective_at=_recent(),
            decision_ref="SHOP-A-1",
            reason="corrected",
            decided_by="shop-a",
        )
        assert _reason(lambda: submit(ch, shop.sign(step))) == (
            grpc.StatusCode.NOT_FOUND,
            "unknown-listing",
        )
        stub = exchange_pb2_grpc.ExchangeStub(ch)
        assert _reason(
            lambda: stub.GetRecord(ex.GetRecordRequest(record_id=UNKNOWN), timeout=10)
        ) == (grpc.StatusCode.NOT_FOUND, "unknown-record")
        # Record validation: the bytes of a listing whose deadline precedes its date
        # (the client library would not build one; a foreign client might).
        encoded = codec.encode_record(listing(shop, listed_at=_recent()))
        message = pb.Listing.FromString(encoded.payload)
        message.correction_deadline.FromDatetime(_recent() - timedelta(days=1))
        bad = dsse.with_disclosures(
            dsse.sign(encoded.payload_type, message.SerializeToString(), shop.signing_key),
            encoded.disclosures,
        )
        assert _reason(lambda: submit(ch, bad)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "deadline-too-early",
        )
        # A record dated in the future.
        future = shop.sign(listing(shop, listed_at=datetime.now(UTC) + timedelta(days=2)))
        assert _reason(lambda: submit(ch, future)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "time-in-future",
        )
    # Standing: a suspended member.
    site.gw.core.members.set_status(other.member_id, MemberStatus.SUSPENDED)
    with other.channel(port) as ch:
        fresh = other.sign(listing(other, listed_at=_recent()))
        assert _reason(lambda: submit(ch, fresh)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "member-suspended",
        )


def test_the_cli_says_a_real_refusal_in_chinese(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--lang", "zh-CN", "--profile", str(site.platform)]
    code = main([*args, "confirm-sanction", UNKNOWN, "--measure", "close-store"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        "错误：网关中没有该编号的名单记录",
        "提示：请先提交名单记录，或等待其同步",
        f"网关原文：listing_id: no listing {UNKNOWN} is known to this gateway",
    ]
    # A platform may not cosign checkpoints (role-may-not-call, after the verification).
    code = main([*args, "audit", "cosign"])
    out, err = capsys.readouterr()
    assert code == 1 and "验证通过" in out, err
    assert err.startswith(
        "错误：您的成员角色无权调用此服务\n提示：参见 docs/PROTOCOL.md 中的授权表\n"
    )
    # In English the gateway's own words, which name the id.
    code = main(["--lang", "en", "--profile", str(site.platform), "confirm-sanction", UNKNOWN,
                 "--measure", "close-store"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"error: listing_id: no listing {UNKNOWN}")
    assert "网关" not in err


def test_a_code_the_cli_does_not_know_falls_back_to_the_gateways_words(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer gateway's code: the CLI shows the gateway's English message and advice."""
    known = dict(reasons.REASONS)
    del known["unknown-listing"]
    monkeypatch.setattr(reasons, "REASONS", known)
    args = ["--lang", "zh-CN", "--profile", str(site.platform)]
    code = main([*args, "confirm-sanction", UNKNOWN, "--measure", "close-store"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        f"错误：listing_id: no listing {UNKNOWN} is known to this gateway",
        "提示：submit the listing first, or wait for it to replicate",
    ]


def test_a_record_the_cli_refuses_before_sending_has_the_same_code(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """The core checks records on both sides: the local refusal carries the code the
    gateway would send, and is said in Chinese the same way."""
    code = main([
        "--lang", "zh-CN", "--profile", str(site.authority), "list-seller", "--uscc", USCC[0],
        "--list", "blacklist", "--conduct", "counterfeit", "--decision-ref", "X-1",
        "--listed-at", "2026-10-01", "--deadline", "2026-09-01",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[:2] == [
        "错误：整改期限不晚于列入日期",
        "提示：请给出晚于 --listed-at 的 --deadline，或省略以使用默认期限",
    ]


def test_lang_follows_the_environment(site: Site) -> None:
    """``LANG=zh_CN.UTF-8 alliance …`` in a real process: the refusal in Chinese."""
    env = {**os.environ, "LANG": "zh_CN.UTF-8"}
    env.pop("LC_ALL", None)
    env.pop("LC_MESSAGES", None)
    script = Path(sys.executable).parent / "alliance"
    done = subprocess.run(
        [str(script), "--profile", str(site.platform), "confirm-sanction", UNKNOWN,
         "--measure", "close-store"],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("错误：网关中没有该编号的名单记录\n"), done.stderr
