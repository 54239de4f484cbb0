"""Reading list files (clients.tabular): encodings, headers, XLSX cells."""

from __future__ import annotations

import codecs
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from clients.import_messages import ImportFileError
from clients.tabular import Cells, count_rows, detect_encoding, open_table
from clients.vocabulary import COLUMNS, IGNORED_COLUMNS, NAMES, column_for
from gateway.core.statements import ConductType, ListKind

HEADER = "统一社会信用代码,主体名称,列入名单,失信行为,决定文书号,列入日期,所属地区"
ROW = "91330100716105852F,杭州某某贸易有限公司,黑名单,刷单炒信,浙市监〔2026〕42号,2026/10/1,浙江省"


def read(path: Path, fmt: str = "csv", **kw: str) -> tuple[dict[str, str], list[Cells]]:
    assert fmt in ("csv", "xlsx", "jsonl")
    with open_table(path, fmt, **kw) as table:  # type: ignore[arg-type]
        return table.labels, list(table.rows)


# --- encodings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (f"{HEADER}\n{ROW}\n".encode(), "utf-8-sig"),
        (codecs.BOM_UTF8 + f"{HEADER}\n{ROW}\n".encode(), "utf-8-sig"),
        (f"{HEADER}\n{ROW}\n".encode("gbk"), "gb18030"),
        # A character GBK lacks (U+4DB5, CJK extension A) is four bytes in GB18030.
        (f"{HEADER}\n{ROW.replace('某某', '䶵')}\n".encode("gb18030"), "gb18030"),
        (b"uscc\n91330100716105852F\n", "utf-8-sig"),  # ASCII: UTF-8
    ],
)
def test_the_encoding_is_detected(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(data)
    assert detect_encoding(path) == expected
    labels, (row,) = read(path)
    assert row.values is not None
    assert row.values.get("uscc") == "91330100716105852F"
    if data.startswith(b"uscc"):
        assert labels == {"uscc": "uscc"}
    else:
        assert labels["uscc"] == "统一社会信用代码"
        assert row.values["name"] in ("杭州某某贸易有限公司", "杭州䶵贸易有限公司")


def test_the_whole_file_decides_not_its_beginning(tmp_path: Path) -> None:
    """Past the first megabyte: a GBK row at the end, a character split by a read."""
    filler = ("uscc\n" + "91330100716105852F\n" * 80_000).encode()  # 1.5 MB of ASCII
    late = tmp_path / "late.csv"
    late.write_bytes(filler + "杭州\n".encode("gbk"))
    assert detect_encoding(late) == "gb18030"
    split = tmp_path / "split.csv"
    head = b"uscc\n" + b"x" * ((1 << 20) - 6) + b"\n"  # the next character straddles 1 MiB
    split.write_bytes(head + "杭州\n".encode())
    assert detect_encoding(split) == "utf-8-sig"
    with pytest.raises(ImportFileError, match=r"not UTF-8 text \(byte 1520005\)"):
        detect_encoding(late, "utf-8")


def test_the_encoding_can_be_named_and_a_wrong_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(f"{HEADER}\n{ROW}\n".encode("gbk"))
    assert detect_encoding(path, "gbk") == "gb18030"
    assert detect_encoding(path, "GB18030") == "gb18030"
    with pytest.raises(ImportFileError, match=r"gbk\.csv is not UTF-8 text \(byte \d+\)") as err:
        detect_encoding(path, "utf-8")
    assert "--encoding" in err.value.advice
    with pytest.raises(ImportFileError, match="'latin-1' is not one of"):
        detect_encoding(path, "latin-1")


def test_a_file_in_neither_encoding_is_refused_with_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(b"uscc\n" + b"\x80\xff\x80")  # no UTF-8, no GB18030 sequence
    with pytest.raises(ImportFileError, match=r"neither UTF-8 nor GB18030 text \(byte 5\)") as err:
        detect_encoding(path)
    text, advice = err.value.text("zh-CN")
    assert text == "junk.csv既不是UTF-8也不是GB18030编码的文本（第5字节）"
    assert advice is not None and "CSV UTF-8" in advice


def test_utf16_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "unicode.csv"
    path.write_bytes(f"{HEADER}\n".encode("utf-16"))
    with pytest.raises(ImportFileError, match="UTF-16") as err:
        detect_encoding(path)
    assert "CSV UTF-8" in err.value.advice


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"cannot open .*nope\.csv"):
        detect_encoding(tmp_path / "nope.csv")


# --- headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("统一社会信用代码", "uscc"),
        ("*统一社会信用代码", "uscc"),
        (" 统一社会信用代码 ", "uscc"),
        ("主体名称", "name"),
        ("列入名单", "list"),
        ("失信行为", "conduct"),
        ("决定文书号", "decision_ref"),
        ("列入日期", "listed_at"),
        ("所属地区", "region"),
        ("身份证号", "resident_id"),
        ("店铺", "stores"),
        ("列入原因/摘要", "summary"),
        ("列入原因\uff0f摘要", "summary"),  # full-width slash
        ("法律依据", "legal_basis"),
        ("USCC", "uscc"),
        ("Listed_At", "listed_at"),
        ("\uff55\uff53\uff43\uff43", "uscc"),  # full-width letters
        ("序号", ""),  # ignored
        ("统一社会信用代号", None),  # a typo is not guessed
    ],
)
def test_headers_map_to_fields(header: str, field: str | None) -> None:
    assert column_for(header) == field


def test_a_title_row_and_a_number_column_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "titled.csv"
    path.write_text(
        "浙江省电子商务领域失信主体名单（2026年第4批）,,,,,,,\n"
        ",,,,,,,\n"
        f"序号,{HEADER}\n"
        f"1,{ROW}\n"
        ",,,,,,,\n"
        f"2,{ROW}\n",
        encoding="utf-8",
    )
    labels, rows = read(path)
    assert [r.line for r in rows] == [4, 6]
    assert rows[0].values is not None and "序号" not in rows[0].values
    assert set(rows[0].values) == {"uscc", "name", "list", "conduct", "decision_ref"} | {
        "listed_at",
        "region",
    }
    assert labels["listed_at"] == "列入日期"


def test_a_value_under_no_header_is_a_problem_of_its_row(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    path.write_text(f"{HEADER},\n{ROW},\n{ROW},stray\n{ROW},,\n{ROW},,oops\n", encoding="utf-8")
    _, rows = read(path)
    assert [r.problem.key if r.problem else None for r in rows] == [
        None,
        "headerless",
        None,
        "cells",
    ]


# --- XLSX ----------------------------------------------------------------------------


def test_xlsx_cells_keep_their_types_and_rows_their_numbers(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "名单"
    sheet.append(["浙江省电商失信名单"])
    sheet.append(HEADER.split(","))
    sheet.append([*ROW.split(",")[:5], datetime(2026, 10, 1), 330100])
    sheet.append([])
    sheet.append([91330100716105852, "A", "黑名单", "刷单炒信", "D", "2026-10-01"])
    other = book.create_sheet("第二页")
    other.append(["uscc"])
    other.append(["91440300708461136T"])
    path = tmp_path / "list.xlsx"
    book.save(path)

    labels, rows = read(path, "xlsx")
    assert labels["uscc"] == "统一社会信用代码"
    assert [r.line for r in rows] == [3, 5]
    assert rows[0].values is not None and rows[1].values is not None
    assert rows[0].values["listed_at"] == datetime(2026, 10, 1)
    assert rows[0].values["region"] == 330100
    # The number as a spreadsheet keeps it, 15 digits: why importing refuses it.
    assert rows[1].values["uscc"] == float(91330100716105852) != 91330100716105852
    assert rows[1].values["region"] is None  # a short row is padded
    _, (row,) = read(path, "xlsx", sheet="第二页")
    assert row.values == {"uscc": "91440300708461136T"}
    assert count_rows(path, "xlsx") == 2

    with pytest.raises(ImportFileError, match=r"list\.xlsx has no sheet 'Sheet9'") as err:
        read(path, "xlsx", sheet="Sheet9")
    assert "名单, 第二页" in err.value.advice


def test_a_file_that_is_no_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text(f"{HEADER}\n{ROW}\n")
    with pytest.raises(ImportFileError, match=r"fake\.xlsx cannot be read as an XLSX workbook"):
        read(path, "xlsx")


def test_the_operations_guide_lists_every_word() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    section = guide[guide.index("## 10. Importing existing lists") :]
    words = [w for headers in COLUMNS.values() for w in headers] + list(IGNORED_COLUMNS)
    for cls in (ListKind, ConductType):
        words += [w for names in NAMES[cls].values() for w in names if "(" not in w]
    missing = [w for w in words if w not in section]
    assert not missing, f"docs/OPERATIONS.md §10 does not list {missing}"
