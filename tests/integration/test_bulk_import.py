"""Importing lists people already keep: real files against a real gateway.

The two files of issue 21: a GBK-encoded CSV and an XLSX workbook, Chinese headers,
1,000 rows each with bad rows planted among them. The dry run's report names exactly
the planted rows; the real import stores every other row in one command.
"""

from __future__ import annotations

import contextlib
import csv
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from gwtest import USCC, Alliance, running_gateway
from openpyxl import Workbook
from test_client import make_uscc, write_profile

from clients import bulk
from clients.cli import main
from clients.client import AllianceClient
from clients.import_cli import ProgressDisplay
from clients.profile import load_profile
from clients.statements import BEIJING

INVALID_USCC = "91110108551385082R"  # check character should be Q
ROWS = 1000
HEADERS = (
    "序号",
    "统一社会信用代码",
    "主体名称",
    "身份证号",
    "列入名单",
    "失信行为",
    "决定文书号",
    "列入日期",
    "所属地区",
    "列入原因/摘要",
    "法律依据",
)


@dataclass
class Site:
    authority: Path
    platform: Path


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
        )


@pytest.fixture
def chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")


def _day(days_ago: int) -> date:
    return (datetime.now(BEIJING) - timedelta(days=days_ago)).date()


def _resident_id(n: int) -> str:
    """A valid resident ID number (GB 11643 check character) numbered ``n``."""
    body = f"330106199001{n % 28 + 1:02d}{n % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


GOOD_VALUES = (
    # (list, conduct): Chinese and English words both
    ("黑名单", "刷单炒信"),
    ("黑名单", "制假售假"),
    ("黑名单", "侵犯知识产权"),
    ("黑名单", "失信被执行人"),
    ("黑名单", "网络购物合同纠纷"),
    ("黑名单", "空包裹代发邮寄"),
    ("黑名单", "非法采集、滥用、泄漏和倒卖个人信息"),
    ("重点关注名单", "虚假宣传"),
    ("重点关注名单", "合同违约"),
    ("blacklist", "fake-transactions"),
    ("key-scrutiny", "false-advertising-penalty"),
)
REGIONS = ("浙江省", "330100", "浙江", "330106", "Zhejiang")

# Planted faults: column header -> (what the cell becomes, reason it is bad).
FAULTS: tuple[tuple[str, object], ...] = (
    ("统一社会信用代码", INVALID_USCC),  # wrong check character
    ("统一社会信用代码", "9133010071610585"),  # 16 characters
    ("失信行为", "刷单"),  # not a conduct name
    ("失信行为", "售假"),
    ("失信行为", "虚假宣传"),  # a key-scrutiny conduct on the blacklist
    ("决定文书号", ""),  # missing
    ("列入名单", ""),  # missing
    ("列入日期", "2026-13-01"),  # no such month
    ("列入日期", "上周"),
    ("列入日期", "2025年2月30日"),  # no such day
    ("列入日期", "2019-05-01"),  # older than the backdating window
    ("所属地区", "杭州市"),  # a city, not a code or a province
    ("所属地区", "990000"),  # no such province
)


@dataclass(frozen=True)
class Planted:
    rows: list[dict[str, object]]  # by header, in file order
    bad: dict[int, str]  # row index -> the header of its planted fault


def _make_rows(seed: int) -> Planted:
    rng = random.Random(seed)
    bad_indexes = sorted(rng.sample(range(ROWS), 65))
    bad = {i: FAULTS[k % len(FAULTS)][0] for k, i in enumerate(bad_indexes)}
    rows: list[dict[str, object]] = []
    for i in range(ROWS):
        list_word, conduct = GOOD_VALUES[i % len(GOOD_VALUES)]
        listed = _day(1 + i % 20)
        listed_text = (listed.isoformat(), f"{listed.year}/{listed.month}/{listed.day}")[i % 2]
        person = i % 50 == 7 and i not in bad
        row: dict[str, object] = {
            "序号": i + 1,
            "统一社会信用代码": "" if person else make_uscc(seed * 10_000 + i),
            "主体名称": "" if person else f"杭州第{i}贸易有限公司",
            "身份证号": _resident_id(i) if person else "",
            "列入名单": list_word,
            "失信行为": conduct,
            "决定文书号": f"浙市监〔2026〕{i}号",
            "列入日期": listed_text,
            "所属地区": REGIONS[i % len(REGIONS)],
            "列入原因/摘要": "组织刷单，虚构交易" if i % 3 else "",
            "法律依据": "《电子商务法》第十七条",
        }
        if i in bad:
            k = bad_indexes.index(i)
            header, value = FAULTS[k % len(FAULTS)]
            if value == "虚假宣传":
                row["列入名单"] = "黑名单"
            row[header] = value
        rows.append(row)
    return Planted(rows, bad)


def _write_gbk_csv(path: Path, planted: Planted) -> dict[int, str]:
    """The rows as Excel saves CSV on Chinese Windows; returns line -> faulty header."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in planted.rows:
        writer.writerow([row[h] for h in HEADERS])
    path.write_bytes(text.getvalue().encode("gbk"))
    return {i + 2: header for i, header in planted.bad.items()}


def _write_xlsx(path: Path, planted: Planted) -> dict[int, str]:
    """The rows in a workbook under a title row, dates as date cells; line -> header."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "失信名单"
    sheet.append(["浙江省电子商务领域失信主体名单"])
    sheet.append(HEADERS)
    for row in planted.rows:
        cells = [row[h] for h in HEADERS]
        listed = row["列入日期"]
        if isinstance(listed, str) and len(listed) == 10 and listed[4] == "-":
            with contextlib.suppress(ValueError):  # a bad date stays text
                cells[HEADERS.index("列入日期")] = datetime.fromisoformat(listed)
        sheet.append(cells)
    # A code typed as a number: Excel keeps 15 digits of it.
    first_good = next(
        i for i in range(ROWS) if i not in planted.bad and planted.rows[i]["统一社会信用代码"]
    )
    sheet.cell(
        row=first_good + 3, column=HEADERS.index("统一社会信用代码") + 1
    ).value = 9.1330100716106e16
    book.save(path)
    lines = {i + 3: header for i, header in planted.bad.items()}
    lines[first_good + 3] = "统一社会信用代码"
    return lines


def _report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _cli(capsys: pytest.CaptureFixture[str], profile: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--profile", str(profile), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _stored(profile: Path) -> int:
    with AllianceClient(load_profile(profile)) as client:
        return sum(1 for _ in client.list_listings())


@pytest.mark.parametrize("kind", ["gbk-csv", "xlsx"])
def test_a_thousand_row_list_imports_in_one_command(
    site: Site,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    chinese: None,
    kind: str,
) -> None:
    planted = _make_rows(seed=21 if kind == "gbk-csv" else 22)
    if kind == "gbk-csv":
        path = tmp_path / "名单.csv"
        bad = _write_gbk_csv(path, planted)
        assert path.read_bytes().decode("gbk")  # really GBK
    else:
        path = tmp_path / "名单.xlsx"
        bad = _write_xlsx(path, planted)
    good = ROWS - len(bad)
    report = tmp_path / "report.csv"

    # The dry run names every planted row, and only those, and submits nothing.
    code, out, _ = _cli(
        capsys, site.authority, "submit-file", "--dry-run", "--report", str(report), str(path)
    )
    assert code == 1
    assert (
        out.splitlines()[0]
        == f"共{ROWS}行：{good}行有效，{len(bad)}行有问题；试运行，未提交任何记录"
    )
    entries = _report(report)
    assert list(entries[0]) == ["行号", "列", "原因"]
    assert {int(e["行号"]) for e in entries} == set(bad)
    by_line: dict[int, set[str]] = {}
    for e in entries:
        by_line.setdefault(int(e["行号"]), set()).add(e["列"])
    assert by_line == {line: {header} for line, header in bad.items()}
    assert all(e["原因"] and "Traceback" not in e["原因"] for e in entries)
    old = [e for e in entries if "回溯期限" in e["原因"]]
    assert old and all("--historical" in e["原因"] for e in old)
    assert _stored(site.authority) == 0

    # The real import: one command stores every good row.
    code, out, err = _cli(capsys, site.authority, "submit-file", "--report", str(report), str(path))
    assert code == 1
    assert out.splitlines()[0] == f"共{ROWS}行：新存入{good}行，重复0行，被拒绝{len(bad)}行"
    assert {int(e["行号"]) for e in _report(report)} == set(bad)
    assert err == ""
    assert _stored(site.authority) == good

    # Again: duplicates, nothing new.
    code, out, _ = _cli(capsys, site.authority, "submit-file", "--lang", "en", str(path))
    assert out.splitlines()[0] == (
        f"{ROWS} row(s): 0 stored, {good} duplicate(s), {len(bad)} refused"
    )
    assert _stored(site.authority) == good


def test_progress_counts_a_row_refused_by_the_file_once(site: Site, tmp_path: Path) -> None:
    day = _day(2).isoformat()
    path = tmp_path / "two.csv"
    path.write_text(
        "uscc,list,conduct,decision_ref,listed_at\n"
        f"{USCC[0]},blacklist,counterfeit,D-1,{day}\n"
        f"{INVALID_USCC},blacklist,counterfeit,D-2,{day}\n"
    )
    seen: list[bulk.Progress] = []
    with AllianceClient(load_profile(site.authority)) as client:
        report = bulk.submit_file(client, path, on_progress=seen.append)
    assert (report.total, report.stored, report.refused) == (2, 1, 1)
    assert seen, "no progress was reported"
    assert all(p.done <= p.total for p in seen), seen
    last = seen[-1]
    assert (last.done, last.total, last.stored, last.duplicates, last.rejected) == (2, 2, 1, 0, 1)


def test_a_row_with_several_problems_counts_as_one_refused_row(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "three.csv"
    path.write_text(
        "统一社会信用代码,列入名单,失信行为,决定文书号,列入日期\n"
        f"{INVALID_USCC},灰名单,刷单,,昨天\n"
        f"{USCC[0]},黑名单,刷单炒信,D-1,{_day(1)}\n"
    )
    seen: list[bulk.Progress] = []
    with AllianceClient(load_profile(site.authority)) as client:
        report = bulk.submit_file(client, path, on_progress=seen.append)
    assert len(report.rejected) == 5 and report.refused == 1
    assert (seen[-1].done, seen[-1].rejected, seen[-1].stored) == (2, 1, 1)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_display_shows_each_count_and_only_on_a_terminal() -> None:
    steps = [
        bulk.Progress(1, 3, 1, 0, 0),
        bulk.Progress(2, 3, 1, 1, 0),
        bulk.Progress(3, 3, 1, 1, 1),
    ]
    screen = _Terminal()
    with ProgressDisplay(screen, "en") as display:
        for p in steps:
            display.update(p)
    shown = screen.getvalue()
    assert "3/3" in shown and "stored 1  dup 1  refused 1" in shown
    assert "150%" not in shown and "4/3" not in shown
    chinese = _Terminal()
    with ProgressDisplay(chinese, "zh-CN") as display:
        display.update(steps[-1])
    assert "存入 1  重复 1  拒绝 1" in chinese.getvalue()
    pipe = io.StringIO()
    with ProgressDisplay(pipe, "en") as display:
        for p in steps:
            display.update(p)
    assert pipe.getvalue() == ""


def test_historical_import(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.csv"
    path.write_text(
        "统一社会信用代码,列入名单,失信行为,决定文书号,列入日期\n"
        f"{USCC[1]},黑名单,制假售假,浙市监〔2019〕7号,2019年5月1日\n"
        f"{USCC[2]},黑名单,制假售假,浙市监〔2026〕8号,{_day(1)}\n"
    )
    code, out, _ = _cli(
        capsys, site.authority, "submit-file", "--lang", "en", "--dry-run", str(path)
    )
    assert code == 1
    assert "line 2, 列入日期: listed on 2019-05-01, more than 30 days ago" in out
    assert "--historical" in out and "line 3" not in out
    code, out, _ = _cli(
        capsys,
        site.authority,
        "submit-file",
        "--lang",
        "en",
        "--window-days",
        "3650",
        "--dry-run",
        str(path),
    )
    assert code == 0, out
    code, out, err = _cli(
        capsys, site.authority, "submit-file", "--lang", "en", "--historical", str(path)
    )
    assert code == 0, out
    assert "2 row(s): 2 stored, 0 duplicate(s), 0 refused" in out
    assert "2 listing(s) were imported as historical" in err  # and what v1 cannot say
    with AllianceClient(load_profile(site.authority)) as client:
        years = sorted(s.listing.listed_at.year for s in client.list_listings())
    assert years == [2019, _day(1).year]


def test_file_level_errors_are_in_the_users_language(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str], chinese: None
) -> None:
    path = tmp_path / "typo.csv"
    path.write_bytes("统一社会信用代号,列入名单\n".encode("gbk"))
    code, _, err = _cli(capsys, site.authority, "submit-file", "--dry-run", str(path))
    assert code == 2
    assert err.startswith("错误：第1行：无法识别的列“统一社会信用代号”\n提示：列名可用字段名")
    code, _, err = _cli(capsys, site.authority, "submit-file", "--encoding", "utf-8", str(path))
    assert code == 2 and "typo.csv不是UTF-8编码的文本" in err
    code, _, err = _cli(capsys, site.authority, "submit-file", "--window-days", "-1", str(path))
    assert code == 2 and "--window-days" in err
