"""The ``alliance`` CLI in-process against a real gateway (plus one console-script run)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from gwtest import LISTED_AT, USCC, Alliance, running_gateway
from test_client import _free_port, write_profile

from clients.cli import main
from clients.statements import BEIJING
from gateway.core.statements import add_months

INVALID_USCC = "91110108551385082R"  # check character should be Q


@dataclass
class Site:
    authority: Path
    platform: Path
    address: str


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = alliance.member("authority", "zj-amr", region="330000")
    shop = alliance.member("platform", "shop-a")
    config = alliance.config(database_url)
    with running_gateway(config, register=(amr, shop)) as gw:
        address = f"127.0.0.1:{gw.port}"
        yield Site(
            write_profile(alliance, amr, address, config.log_origin),
            write_profile(alliance, shop, address, config.log_origin),
            address,
        )


def run(capsys: pytest.CaptureFixture[str], profile: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--profile", str(profile), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _record_id(out: str) -> str:
    match = re.search(r"record id: ([0-9a-f]{64})", out)
    assert match, out
    return match.group(1)


def _row(out: str, subject: str) -> str:
    rows = [line for line in out.splitlines() if line.startswith(subject)]
    assert len(rows) == 1, out
    return rows[0]


# The dates of the walk-through: a listing of the fixture day (a month before the run,
# so its deadline lies ahead of the gateway's wall clock whatever the date of the run),
# its default deadline three months on, and a sanction the next day (Beijing dates).
LISTED_DAY = LISTED_AT.date()
DEADLINE_DAY = add_months(LISTED_AT, 3).date()
SANCTION_DAY = LISTED_DAY + timedelta(days=1)


def test_list_check_sanction_and_remove(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        site.authority,
        "list-seller",
        "--uscc",
        USCC[0],
        "--list",
        "blacklist",
        "--conduct",
        "fake-transactions",
        "--decision-ref",
        "ZJ-AMR-2026-0042",
        "--listed-at",
        f"{LISTED_DAY}T09:30:00+08:00",
        "--name",
        "Hangzhou Example Trading Co.",
        "--store",
        "spiffe://zj.alliance.test/platform/shop-a:store-17",
    )
    assert code == 0, err
    listing_id = _record_id(out)
    assert "log index:" in out

    code, out, err = run(capsys, site.platform, "check", USCC[0], USCC[1])
    assert code == 0, err
    assert re.search(
        rf"\blisted\s+blacklist\s+fake-transactions\s+{LISTED_DAY}\s+{DEADLINE_DAY}",
        _row(out, USCC[0]),
    )
    assert "not listed" in _row(out, USCC[1])

    code, out, err = run(
        capsys, site.platform, "confirm-sanction", listing_id, "--measure", "close-store",
        "--store-id", "store-17", "--effective-at", str(SANCTION_DAY),
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, site.platform, "check", USCC[0])
    assert f"close-store (shop-a, {SANCTION_DAY})" in _row(out, USCC[0])

    # The seller objects through the authority, with its evidence (only its digest travels).
    evidence = site.authority.parent / "evidence.pdf"
    evidence.write_bytes(b"%PDF-1.7 shipping records")
    code, out, err = run(
        capsys, site.authority, "step", listing_id, "disputed", "--reason", "orders were real",
        "--document", str(evidence),
    )  # fmt: skip
    assert code == 0, err
    stored = _record_id(out)
    code, out, _ = run(capsys, site.platform, "check", USCC[0])
    assert "disputed" in _row(out, USCC[0])
    code, _, err = run(
        capsys, site.authority, "step", listing_id, "disputed", "--reason", "again",
        "--document", str(evidence.parent / "missing.pdf"),
    )  # fmt: skip
    assert code == 2 and err.startswith("error: --document: cannot read")
    assert stored

    code, out, err = run(
        capsys, site.authority, "step", listing_id, "removed", "--decision-ref", "ZJ-COURT-9",
        "--reason", "judgment annulled", "--decided-by", "Hangzhou Intermediate Court",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, site.platform, "check", USCC[0])
    row = _row(out, USCC[0])
    assert "not listed" in row and "removed" in row

    code, out, _ = run(capsys, site.platform, "listings", "--json")
    (state,) = [json.loads(line) for line in out.splitlines()]
    assert state["listing_id"] == listing_id and state["step"] == "removed"
    assert not state["in_force"] and state["sanctions"][0]["measure"] == "close-store"
    code, out, _ = run(capsys, site.platform, "listings", "--in-force")
    assert code == 0 and out.strip().endswith("0 listings")

    code, out, _ = run(capsys, site.platform, "watch", "--from", "0", "--limit", "7")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 7
    assert "member" in lines[0] and "listing  91330100716105852F" in lines[3]
    assert lines[5].split("\t")[2].startswith("step     disputed")
    assert lines[6].split("\t")[2].startswith("step     removed")


def test_bad_input_exits_2_with_a_hint(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--list", "blacklist", "--conduct", "counterfeit", "--decision-ref", "X-1"]
    code, _, err = run(capsys, site.authority, "list-seller", "--uscc", INVALID_USCC, *args)
    assert code == 2
    assert err.startswith("error: uscc: check character is R, expected Q")
    assert "\nhint: " in err and "Traceback" not in err

    code, _, err = run(capsys, site.authority, "list-seller", "--uscc", USCC[0], "--list", "grey")
    assert code == 2 and err.startswith("error: ") and "hint: " in err

    code, _, err = run(
        capsys,
        site.authority,
        "list-seller",
        "--uscc",
        USCC[0],
        *args,
        "--listed-at",
        "2026-10-01T08:00",
    )
    assert code == 2 and "listed_at" in err and "offset" in err

    code, _, err = run(capsys, site.authority, "step", "ab" * 32, "removed")
    assert code == 2 and "decision_ref" in err

    assert main(["--profile", str(site.authority.parent / "nope.toml"), "check", USCC[0]]) == 2
    assert "file not found" in capsys.readouterr().err


def test_refusal_exits_1(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, site.platform, "confirm-sanction", "ab" * 32, "--measure", "close-store"
    )
    assert code == 1
    assert (
        err.startswith("error: listing_id: no listing") and "hint: submit the listing first" in err
    )


def test_unreachable_gateway_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    shop = alliance.member("platform", "shop-a")
    profile = write_profile(alliance, shop, f"127.0.0.1:{_free_port()}", "zj.alliance.test/log")
    code, _, err = run(capsys, profile, "--retries", "1", "check", USCC[0])
    assert code == 1
    assert err.startswith("error: cannot reach the gateway at 127.0.0.1:")
    assert "hint: is the gateway running? check the 'gateway' address in your profile" in err


def test_submit_file_csv_and_jsonl(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed, effective = _days_ago(3), _days_ago(2)
    csv_file = tmp_path / "listings.csv"
    csv_file.write_text(
        "type,uscc,name,list,conduct,decision_ref,listed_at,stores\n"
        f"listing,{USCC[0]},A Co.,blacklist,counterfeit,D-1,{listed},\n"
        f"listing,{INVALID_USCC},,blacklist,counterfeit,D-2,{listed},\n"
        f"listing,{USCC[1]},,key-scrutiny,false-advertising-penalty,D-3,{listed}T10:00:00+08:00,"
        "spiffe://zj.alliance.test/platform/shop-a:s1 spiffe://zj.alliance.test/platform/shop-a:s2\n"
    )
    code, out, err = run(capsys, site.authority, "submit-file", "--lang", "en", str(csv_file))
    assert code == 1
    assert "3 row(s): 2 stored, 0 duplicate(s), 1 refused" in out
    assert f"line 3, uscc: '{INVALID_USCC}' is not a valid Unified Social Credit Code" in out
    assert err == ""  # no progress display: stderr is not a terminal

    code, out, _ = run(capsys, site.authority, "submit-file", "--lang", "en", str(csv_file))
    assert "3 row(s): 0 stored, 2 duplicate(s), 1 refused" in out

    code, out, _ = run(capsys, site.platform, "listings", "--json")
    listing_id = json.loads(out.splitlines()[0])["listing_id"]
    jsonl = tmp_path / "sanctions.jsonl"
    rows = [
        _sanction_row(listing_id, "close-store", effective),
        _sanction_row(listing_id, "teleport", effective),
        _sanction_row("cd" * 32, "public-exposure", effective),
        {**_sanction_row(listing_id, "lower-credit-rating", _days_ago(1)), "action": "applied"},
    ]
    jsonl.write_text(
        "\n".join(
            [json.dumps(r) for r in rows[:2]]
            + ["", "{not json"]
            + [json.dumps(r) for r in rows[2:]]
        )
        + "\n"
    )
    code, out, _ = run(capsys, site.platform, "submit-file", "--lang", "en", str(jsonl))
    assert code == 1
    assert "5 row(s): 2 stored, 0 duplicate(s), 3 refused" in out
    assert "line 2, measure: 'teleport' is not one of" in out
    assert "line 4: not valid JSON" in out
    assert re.search(
        r"line 5: the gateway refused it \(NOT_FOUND\): listing_id: no listing c+d+", out
    )

    code, out, _ = run(capsys, site.platform, "check", USCC[0])
    assert f"close-store (shop-a, {effective}); lower-credit-rating (shop-a, {_days_ago(1)})" in out


def _days_ago(days: int) -> str:
    """A date the gateway's backdating window accepts, as a Beijing calendar day."""
    return (datetime.now(BEIJING) - timedelta(days=days)).date().isoformat()


def _sanction_row(listing_id: str, measure: str, day: str) -> dict[str, str]:
    return {"type": "sanction", "listing_id": listing_id, "measure": measure, "effective_at": day}


def test_console_script_smoke(site: Site) -> None:
    script = Path(sys.executable).parent / "alliance"
    done = subprocess.run(
        [str(script), "--profile", str(site.platform), "check", USCC[2]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "not listed" in _row(done.stdout, USCC[2])


@pytest.mark.parametrize(
    "command",
    [
        ("listings", "--json"),
        ("listings",),
        ("check", USCC[0], "--json"),
        ("watch", "--limit", "2"),
        ("compliance", "show", "{listing}", "--json"),
        ("compliance", "outstanding"),
        ("compliance", "schedule"),
        ("version",),
    ],
    ids=" ".join,
)
def test_a_reader_that_left_ends_the_command_quietly(
    site: Site, command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """``alliance listings --json | head``: the reader closes the pipe before the command
    writes; the command stops with 141 (as if SIGPIPE ended it), no traceback."""
    listed = ("--list", "blacklist", "--conduct", "counterfeit", "--decision-ref", "X-1")
    code, out, err = run(capsys, site.authority, "list-seller", "--uscc", USCC[0], *listed)
    assert code == 0, err
    command = tuple(c.format(listing=_record_id(out)) for c in command)
    code, out, err = _in_subprocess(site.platform, *command)
    assert code == 0 and out, err  # the same command with a reader writes something
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "alliance"),
                "--profile",
                str(site.platform),
                *command,
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_head_of_a_long_output(site: Site) -> None:
    """A real ``| head -n 1`` on more output than a pipe holds."""
    script = Path(sys.executable).parent / "alliance"
    codes = " ".join(USCC[:1] * 4000)  # one table row each: ~400 kB, more than a pipe holds
    done = subprocess.run(
        ["/bin/sh", "-c", f'"{script}" --profile "{site.platform}" check {codes} | head -n 1'],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.split() == [
        "SUBJECT", "STATUS", "LIST", "CONDUCT", "SINCE", "DEADLINE", "STEP", "OVERDUE", "SANCTIONS",
    ], done.stderr  # fmt: skip
    assert done.stderr == "", done.stderr


def _in_subprocess(profile: Path, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "alliance"), "--profile", str(profile), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_tables_and_times_in_chinese(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """``--lang zh-CN``: Chinese headers, official names, units by name, due times in
    Beijing time with the offset; JSON output unchanged (RFC 3339 UTC, enum words)."""
    listed = ("--list", "key-scrutiny", "--conduct", "false-advertising-penalty")
    code, out, err = run(
        capsys, site.authority, "--lang", "zh-CN", "list-seller", "--uscc", USCC[0], *listed,
        "--decision-ref", "ZJ-AMR-2026-7", "--listed-at", _days_ago(1),
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("名单记录已保存\n记录编号：")
    listing_id = re.search(r"记录编号：([0-9a-f]{64})", out)
    assert listing_id is not None
    code, out, err = run(capsys, site.platform, "--lang", "zh-CN", "check", USCC[0])
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == [
        "主体", "状态", "名单", "失信行为", "列入日期", "整改期限", "环节", "逾期", "惩戒措施",
    ]  # fmt: skip
    assert row.split()[1:4] == ["已列入", "重点关注名单", "因虚假宣传被行政处罚"]
    code, out, _ = run(capsys, site.platform, "--lang", "zh-CN", "listings")
    assert "330000 浙江省" in out and out.rstrip().endswith("共 1 条名单记录")
    # A month whose due date the bundled calendar knows (2026: the State Council's
    # schedule of a later year is imported when it is published, not bundled).
    code, out, _ = run(
        capsys, site.platform, "--lang", "zh-CN", "compliance", "schedule", "--month", "2026-10"
    )  # fmt: skip
    assert code == 0 and re.search(r"起为逾期）", out)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d \+08:00", out)
    code, out, _ = run(capsys, site.platform, "--lang", "zh-CN", "listings", "--json")
    (state,) = [json.loads(line) for line in out.splitlines()]
    assert state["list"] == "key-scrutiny" and state["listed_at"].endswith("+00:00")
