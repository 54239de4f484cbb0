"""Official names: every enum member and unit named in both languages; city names from
the bundled GB/T 2260 data, which regenerates from its named, versioned source."""

from __future__ import annotations

import enum
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.core.identifiers import REPORTING_UNITS
from gateway.core.statements import (
    ConductType,
    GovernmentMeasureKind,
    LifecycleStep,
    ListKind,
    MemberStatus,
    SanctionAction,
    SanctionMeasure,
)
from gateway.ops.report_names import Names, gb2260_source, name_tables, report_locale

ROOT = Path(__file__).resolve().parents[2]

TABLES: dict[str, type[enum.Enum]] = {
    "lists": ListKind,
    "conducts": ConductType,
    "measures": SanctionMeasure,
    "actions": SanctionAction,
    "steps": LifecycleStep,
    "member_statuses": MemberStatus,
    "government_measures": GovernmentMeasureKind,
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_enum_member_has_both_names(table: str) -> None:
    names = name_tables()[table]
    assert set(names) == {m.name for m in TABLES[table]}
    for key, entry in names.items():
        assert entry["zh"] and entry["en"], key
        assert set(entry) == {"zh", "en"}


def test_units_are_the_32_reporting_units() -> None:
    units = name_tables()["units"]
    assert set(units) == set(REPORTING_UNITS)
    for code, entry in units.items():
        assert entry["en"] == REPORTING_UNITS[code]
    assert units["66"]["zh"] == "新疆生产建设兵团"
    # The 31 provincial names agree with the GB/T 2260 data's xx0000 rows.
    rows = _tsv()
    for code, entry in units.items():
        if code != "66":
            assert rows[code + "0000"] == entry["zh"], code


def _tsv() -> dict[str, str]:
    text = (ROOT / "gateway" / "ops" / "report_data" / "gb2260.tsv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "code\tname\tstatus"
    return {line.split("\t")[0]: line.split("\t")[1] for line in lines[1:]}


def test_official_chinese_names() -> None:
    zh = Names(report_locale("zh-CN"))
    assert zh.unit("33") == "浙江省" and zh.unit("45") == "广西壮族自治区"
    assert zh.list_kind("BLACKLIST") == "黑名单"
    assert zh.list_kind("KEY_SCRUTINY") == "重点关注名单"
    assert zh.conduct("FAKE_TRANSACTIONS") == "刷单炒信"
    assert zh.measure("CLOSE_STORE") == "关闭店铺"
    assert zh.measure("OTHER", "暂停直播权限") == "其他惩戒措施：暂停直播权限"
    assert zh.step("CORRECTED") == "已整改"
    en = Names(report_locale("en"))
    assert en.unit("33") == "Zhejiang" and en.measure("CLOSE_STORE") == "Close store"
    assert en.conduct("OTHER", "x") == "Other conduct: x"


def test_city_names() -> None:
    zh = Names(report_locale("zh-CN"))
    assert zh.city("330100") == "杭州市"
    assert zh.city("440300") == "深圳市"
    assert zh.city("330000") == "浙江省（本级）"
    assert zh.city("660000") == "新疆生产建设兵团（本级）"
    assert zh.city("110100") == "北京市市辖区"  # a municipality's generic row
    assert zh.city("659000") == "新疆维吾尔自治区自治区直辖县级行政单位"
    assert zh.city("341400") == "巢湖市（原代码）"  # abolished in 2011
    assert zh.city("339900") == "代码 339900（GB/T 2260 数据未收录）"
    en = Names(report_locale("en"))
    assert en.city("330100") == "杭州市"  # the data has Chinese names only
    assert en.city("330000") == "Zhejiang (provincial level)"
    assert gb2260_source() == "python-stdnum 2.2"


def test_bundled_gb2260_data_regenerates_from_its_source() -> None:
    pytest.importorskip("stdnum", reason="python-stdnum (a dev dependency) is not installed")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_gb2260.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
