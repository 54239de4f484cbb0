"""The working group's narrative file: parsed into paragraphs and lists, and refused
with a clear error when it is for another report, unfinished or malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import RecordError
from gateway.ops.report_narrative import (
    MAX_NARRATIVE_BYTES,
    Block,
    load_narrative,
    narrative_template,
)

GOOD = """
month = "2026-10"
scope = "33"
prepared_by = "浙江省电子商务领域失信问题专项治理工作组"
contact = "张三 0571-00000000"
overview = ""
experience = '''
建立省市县三级联动机制。

- 每周调度平台整改进展；
- 对逾期主体约谈负责人，
  并通报行业协会。
'''
problems = '''
部分平台确认惩戒措施不及时。
'''
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "narrative.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_parses_paragraphs_and_lists(tmp_path: Path) -> None:
    n = load_narrative(write(tmp_path, GOOD), month="2026-10", scope="33")
    assert n.prepared_by == "浙江省电子商务领域失信问题专项治理工作组"
    assert n.contact == "张三 0571-00000000"
    assert n.overview == () and n.results == ()
    assert n.experience == (
        Block(text="建立省市县三级联动机制。"),
        Block(items=("每周调度平台整改进展；", "对逾期主体约谈负责人，并通报行业协会。")),
    )
    assert n.problems == (Block(text="部分平台确认惩戒措施不及时。"),)


def test_the_template_is_refused_until_written(tmp_path: Path) -> None:
    template = narrative_template("2026-10", "33")
    assert 'month = "2026-10"' in template and 'scope = "33"' in template
    with pytest.raises(RecordError, match="placeholder") as err:
        load_narrative(write(tmp_path, template), month="2026-10", scope="33")
    assert "--draft" in err.value.advice


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('month = "2026-10"', 'month = "2026-09"'), "for month '2026-09'"),
        (('scope = "33"', 'scope = "all"'), "for scope 'all'"),
        (('scope = "33"\n', ""), "for scope None"),
        (("部分平台确认惩戒措施不及时。", "   "), "problems is empty"),
        (("建立省市县三级联动机制。", "（在此填写经验做法）"), "experience is empty or"),
        (('prepared_by = "浙江省电子商务领域失信问题专项治理工作组"', ""), "prepared_by"),
        (('contact = "张三 0571-00000000"', "contact = 3"), "contact must be a string"),
        (('overview = ""', 'summary = "x"'), "unknown keys summary"),
        (('month = "2026-10"', "month = "), "not UTF-8 TOML"),
    ],
)
def test_rejections(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(RecordError, match=message.replace("(", r"\(")):
        load_narrative(write(tmp_path, GOOD.replace(old, new, 1)), month="2026-10", scope="33")


def test_unreadable_or_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="cannot read"):
        load_narrative(tmp_path / "missing.toml", month="2026-10", scope="33")
    big = write(tmp_path, GOOD + "#" * MAX_NARRATIVE_BYTES)
    with pytest.raises(RecordError, match="larger than"):
        load_narrative(big, month="2026-10", scope="33")
    (tmp_path / "latin1.toml").write_bytes(GOOD.replace("张三", "x").encode() + b"\xff")
    with pytest.raises(RecordError, match="not UTF-8"):
        load_narrative(tmp_path / "latin1.toml", month="2026-10", scope="33")
