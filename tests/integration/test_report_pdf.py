"""The written report end to end: a real gateway (mTLS on port 0, a real database)
holds a month of listings across units and cities; ``alliance-gateway report`` signs
the counts and writes the PDF, DOCX, HTML, JSON and CSV, which are checked with
poppler (fonts, page size, text) and python-docx."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gwtest import Alliance, Clock, Member, listing, submit, write_config
from reporttest import html_tables

from gateway import codec
from gateway.core.identifiers import _org_code_check, _uscc_check
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    ListKind,
    MonthlyReport,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
    Subject,
)
from gateway.ops.app import Core, Gateway
from gateway.ops.cli import main as cli_main
from gateway.ops.config import Config

SECTIONS = ("一、整体情况", "二、取得的实效", "三、经验做法", "四、存在的问题")
PERSON = hashlib.sha256(b"a natural person").digest()
HANGZHOU = "9133010052601815XH"
SHENZHEN = "91440300708461136T"
XPCC = "91110000802100433B"
OLD = "913302001318609160"


def _individual_business() -> str:
    """A valid USCC of an individual business (registration 9, type 2) in Ningbo."""
    body = "33020312"
    first = f"92330203{body}{_org_code_check(body)}"
    return first + _uscc_check(first)


NINGBO = _individual_business()

NARRATIVE = """
month = "2026-10"
scope = "all"
prepared_by = "浙江省电子商务领域失信问题专项治理工作组"
contact = "张三 0571-00000000"
experience = '''
建立省市县三级联动机制，每周调度平台整改进展。

- 对逾期主体约谈负责人；
- 通报行业协会。
'''
problems = '''
部分平台确认惩戒措施不及时。
'''
"""


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@contextmanager
def gateway_at(config: Config, clock: Clock, names: list[tuple[Member, str]]) -> Iterator[Gateway]:
    gateway = Gateway(config, clock=clock)
    for m, display in names:
        gateway.core.members.add(
            m.member_id,
            m.region,
            m.signing_key.public_key().raw,
            possession=m.possession(),
            display_name=display,
        )
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop(grace_s=1.0)


def send(member: Member, gw: Gateway, statement: Any) -> str:
    with member.channel(gw.port) as ch:
        record_id: str = submit(ch, member.sign(statement)).record_id
    return record_id


def tool(*args: str) -> str:
    if shutil.which(args[0]) is None:
        pytest.fail(f"{args[0]} not found: apt-get install poppler-utils (.ci/run does)")
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


def monthly_reports(config: Config) -> list[MonthlyReport]:
    core = Core(config)
    try:
        found = []
        for r in core.store.records_range(0, core.store.log_size(), limit=100_000):
            statement = codec.decode_statement(r.payload_type, r.payload, r.disclosures)
            if isinstance(statement, MonthlyReport):
                found.append(statement)
        return found
    finally:
        core.close()


def test_written_report_from_a_real_gateway(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = a.member("authority", "zj-amr", region="330000")
    shop_a = a.member("platform", "shop-a")
    shop_b = a.member("platform", "shop-b")
    config = a.config(database_url)
    clock = Clock(utc(2026, 6, 1))
    names = [(amr, "浙江省市场监督管理局"), (shop_a, "淘宝（浙江）"), (shop_b, "京东（浙江）")]
    with gateway_at(config, clock, names) as gw:

        def add(uscc: str | None, region: str, listed: datetime, **kw: Any) -> str:
            clock.set(listed)  # a listing is submitted when it is made (the intake bounds)
            name = kw.pop("name", "")
            by = kw.pop("by", amr)
            subject = Subject(uscc=uscc, name=name) if uscc else Subject(person_hmac=PERSON)
            return send(
                by, gw, listing(by, subject=subject, region_code=region, listed_at=listed, **kw)
            )

        old = add(OLD, "330100", utc(2026, 7, 1), name="宁波某某网络科技有限公司")  # due 1 Oct
        fixed = add("91330100716105852F", "330100", utc(2026, 7, 10), name="阿里某某")
        add(HANGZHOU, "330106", utc(2026, 10, 10), name="杭州某某电子商务有限公司")
        add(
            NINGBO,
            "330203",
            utc(2026, 10, 12),
            name="宁波市海曙区张三服装店",
            conduct=ConductType.COUNTERFEIT,
        )
        add(
            SHENZHEN,
            "440305",
            utc(2026, 10, 13),
            name="深圳市某某科技有限公司",
            # A Guangdong seller: a platform reports it (the Zhejiang authority may not list it).
            by=shop_a,
            list=ListKind.KEY_SCRUTINY,
            conduct=ConductType.FALSE_ADVERTISING_PENALTY,
        )
        add(None, "110108", utc(2026, 10, 14), conduct=ConductType.EMPTY_PARCEL, by=shop_b)
        add(
            XPCC,
            "660000",
            utc(2026, 10, 15),
            name="兵团某某商贸有限公司",
            conduct=ConductType.JUDGMENT_DEFAULTER,
            by=shop_a,
        )
        clock.set(utc(2026, 11, 5))
        send(
            amr,
            gw,
            StatusChange(
                issuer=amr.member_id,
                listing_id=fixed,
                step=LifecycleStep.CORRECTED,
                effective_at=utc(2026, 10, 8),
                decision_ref="ZJ-AMR-2026-D",
                reason="已完成整改",
            ),
        )
        send(
            shop_a,
            gw,
            SanctionConfirmation(
                issuer=shop_a.member_id,
                listing_id=old,
                measure=SanctionMeasure.CLOSE_STORE,
                action=SanctionAction.APPLIED,
                effective_at=utc(2026, 10, 3),
            ),
        )
        gw.compliance.tick()  # escalates the listing overdue since 1 October
    path = tmp_path / "gateway.toml"
    write_config(path, config)
    narrative = tmp_path / "narrative.toml"
    narrative.write_text(NARRATIVE, encoding="utf-8")
    out = tmp_path / "out"
    args = ["report", "--config", str(path), "--month", "2026-10", "--out", str(out)]
    assert cli_main([*args, "--narrative", str(narrative)]) == 0
    printed = capsys.readouterr().out
    stem = out / "report-2026-10-all"
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(
        f"report-2026-10-all{s}"
        for s in (".json", ".csv", "-cities.csv", "-sanctions.csv", ".html", ".pdf", ".docx")
    )
    # Every file's SHA-256 is printed.
    for name in files:
        digest = hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert f"{out / name} sha256 {digest}" in printed
    assert "报送截止日 2026年11月13日" in printed

    # The JSON is the signed record's content, and holds counts only, no ledger.
    (signed,) = monthly_reports(config)
    content = stem.with_suffix(".json").read_bytes()
    assert signed.content == content
    document = json.loads(content)
    zj = next(u for u in document["units"] if u["unit"] == "33")
    assert set(zj["by_city"]) == {"330100", "330200"}
    for secret in (HANGZHOU, NINGBO, PERSON.hex(), "杭州某某", "张三"):
        assert secret not in content.decode()

    # The PDF: an embedded CJK font, A4 pages, the sections, names and ledger rows.
    pdf = str(stem.with_suffix(".pdf"))
    fonts = tool("pdffonts", pdf).splitlines()[2:]
    cjk = [line for line in fonts if "CJK" in line]
    assert cjk, fonts
    assert all(line.split()[-5] == "yes" for line in cjk), cjk  # the "emb" column
    sizes = re.findall(r"Page +\d+ size: .*", tool("pdfinfo", "-f", "1", "-l", "999", pdf))
    assert sizes and all(s.endswith("(A4)") for s in sizes), sizes
    text = tool("pdftotext", "-layout", pdf, "-")
    for expected in (
        *SECTIONS,
        "附件：本月失信主体台账",
        "浙江省",
        "广东省",
        "北京市",
        "新疆生产建设兵团",
        "杭州市",
        "宁波市",
        "深圳市",
        "北京市市辖区",
        "刷单炒信",
        "重点关注名单",
        "关闭店铺（淘宝（浙江））",
        "建立省市县三级联动机制",
        "部分平台确认惩戒措施不及时。",
        f"第 1 页，共 {len(sizes)} 页",
    ):
        assert expected in text, expected
    # Ledger rows: each listing of the month by credit code, persons masked.
    for uscc in (OLD, HANGZHOU, NINGBO, SHENZHEN, XPCC, "91330100716105852F"):
        assert uscc in text, uscc
    assert "自然人（已脱敏）" in text and "个体工商户（名称已脱敏）" in text
    assert "张三服装店" not in text and PERSON.hex()[:12] not in text
    assert "spiffe://" not in text.replace("\n", "")  # members by display name

    # The DOCX opens and holds the same tables as the page the PDF was printed from.
    import docx

    word = docx.Document(str(stem.with_suffix(".docx")))
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in word.tables[1:]]
    page = html_tables(stem.with_suffix(".html").read_text(encoding="utf-8"))
    assert tables == page
    ledger = tables[-1]
    assert ledger[0][0] == "序号" and len(ledger) == 1 + 7  # header + the month's 7 listings
    for uscc in (OLD, HANGZHOU, NINGBO, SHENZHEN, XPCC):
        assert any(uscc in row[1] for row in ledger[1:]), uscc
