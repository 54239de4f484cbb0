"""The written report renders: one self-contained page (no scripts, no requests) that
headless Chromium draws with real CJK glyphs, CSV with localized headers, and a DOCX
holding the same tables as the page (and so the PDF printed from it)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from reporttest import html_tables

from gateway.core.fold import VerifiedRecord
from gateway.core.identifiers import _org_code_check, _uscc_check
from gateway.core.report import MonthData, canonical_json, compute_month, report_document
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.core.workdays import ReportMonth
from gateway.ops.report_names import report_locale
from gateway.ops.report_narrative import Block, Narrative
from gateway.ops.report_render import (
    file_hashes,
    render_cities_csv,
    render_csv,
    render_html,
    render_sanctions_csv,
    write_report,
)
from gateway.ops.report_view import ReportView, build_view

MONTH = ReportMonth(2026, 10)
GW = "spiffe://zj.alliance.test/gateway/gw"
AMR = "spiffe://zj.alliance.test/authority/zj-amr"
PLATFORMS = {
    f"spiffe://zj.alliance.test/platform/{n}": display
    for n, display in (
        ("taobao-zj", "淘宝（浙江）"),
        ("jd-zj", "京东（浙江）"),
        ("pdd-zj", "拼多多"),
    )
}
REGIONS = ("330106", "330203", "440305", "110108", "310000", "660000", "650102")
SECTIONS = ("一、整体情况", "二、取得的实效", "三、经验做法", "四、存在的问题")
NARRATIVE = Narrative(
    prepared_by="浙江省电子商务领域失信问题专项治理工作组",
    contact="张三 0571-00000000",
    overview=(),
    results=(Block("平台协同处置效率明显提升。"),),
    experience=(
        Block("建立省市县三级联动机制，每周调度整改进展。"),
        Block(items=("对逾期主体约谈负责人；", "通报行业协会。")),
    ),
    problems=(Block("部分平台确认惩戒措施不及时。"),),
)


def _uscc(rng: random.Random) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(8))
    first = f"913301{rng.randint(0, 99):02d}{body}{_org_code_check(body)}"
    return first + _uscc_check(first)


def _rid(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def synthetic_records(seed: int = 716) -> list[VerifiedRecord]:
    """A busy October: listings over several units, steps, sanctions, members."""
    rng = random.Random(seed)
    out: list[VerifiedRecord] = []
    for p, display in PLATFORMS.items():
        out.append(
            VerifiedRecord(
                _rid(p),
                GW,
                MemberRecord(
                    issuer=GW,
                    member_id=p,
                    role=Role.PLATFORM,
                    region_code="330100",
                    keys=(
                        MemberKey(
                            public_key=bytes(32), not_before=datetime(2026, 1, 1, tzinfo=UTC)
                        ),
                    ),
                    status=MemberStatus.ACTIVE,
                    issued_at=datetime(2026, 1, 1, tzinfo=UTC),
                    display_name=display,
                ),
            )
        )
    blacklist = [
        c for c in ConductType if ListKind.BLACKLIST in c.lists and c is not ConductType.OTHER
    ]
    scrutiny = [c for c in ConductType if c.lists == frozenset({ListKind.KEY_SCRUTINY})]
    for i in range(90):
        kind = ListKind.BLACKLIST if rng.random() < 0.8 else ListKind.KEY_SCRUTINY
        conduct = rng.choice(blacklist if kind is ListKind.BLACKLIST else scrutiny)
        listed = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(hours=rng.randint(0, 24 * 180))
        stores = (StoreRef(rng.choice(list(PLATFORMS)), f"s{i}"),) if rng.random() < 0.5 else ()
        if i % 10 == 3:  # a natural person, by keyed hash
            subject = Subject(person_hmac=hashlib.sha256(f"person-{i}".encode()).digest())
        else:
            subject = Subject(uscc=_uscc(rng), stores=stores, name=f"测试电子商务有限公司{i:02d}")
        listing = Listing(
            issuer=AMR,
            subject=subject,
            list=kind,
            conduct=conduct,
            region_code=rng.choice(REGIONS),
            decision_ref=f"D-{i}",
            listed_at=listed,
        )
        lid = _rid(f"listing-{i}")
        out.append(VerifiedRecord(lid, AMR, listing))
        deadline = listing.deadline
        fate = rng.random()
        if fate < 0.25:
            at = deadline - timedelta(days=rng.randint(1, 40))
            out.append(_step(f"c{i}", lid, LifecycleStep.CORRECTED, max(at, listed)))
        elif fate < 0.35:
            out.append(_step(f"c{i}", lid, LifecycleStep.CORRECTED, deadline + timedelta(days=9)))
        elif fate < 0.42:
            out.append(_step(f"r{i}", lid, LifecycleStep.REMOVED, listed + timedelta(days=40)))
        if fate >= 0.25 and deadline < MONTH.end:
            out.append(_step(f"e{i}", lid, LifecycleStep.ESCALATED, deadline, issuer=GW))
            for j, p in enumerate(list(PLATFORMS)):
                if rng.random() < 0.6:
                    measure = rng.choice(list(SanctionMeasure)[:-1])
                    out.append(
                        VerifiedRecord(
                            _rid(f"s{i}-{j}"),
                            p,
                            SanctionConfirmation(
                                issuer=p,
                                listing_id=lid,
                                measure=measure,
                                action=SanctionAction.APPLIED,
                                effective_at=deadline + timedelta(days=rng.randint(1, 6)),
                            ),
                        )
                    )
    return out


def _step(name: str, lid: str, s: LifecycleStep, at: datetime, issuer: str = AMR) -> VerifiedRecord:
    closing = s in (LifecycleStep.CORRECTED, LifecycleStep.REMOVED)
    return VerifiedRecord(
        _rid(name),
        issuer,
        StatusChange(
            issuer=issuer,
            listing_id=lid,
            step=s,
            effective_at=at,
            decision_ref="D" if closing else "",
            reason="R" if closing else "",
            decided_by="Court" if s is LifecycleStep.REMOVED else "",
        ),
    )


def month_data() -> MonthData:
    return compute_month(
        synthetic_records(), MONTH, grace=timedelta(days=7), trust_domain=GW.split("/")[2]
    )


def document(data: MonthData | None = None) -> dict[str, Any]:
    units = (data or month_data()).units
    return report_document(
        issuer=GW,
        log_origin="zj.alliance.test/alliance-log/v1",
        month=MONTH,
        unit=None,
        checkpoint_size=1234,
        checkpoint_root=hashlib.sha256(b"root").digest(),
        units=units,
        grace_days=7,
        due_date=date(2026, 11, 13),
        federation={
            "available": True,
            "observed_at": "2026-11-05T02:00:00+00:00",
            "peers": [
                {
                    "peer": "spiffe://gd.alliance.test/gateway/gw",
                    "origin": "gd.alliance.test/alliance-log/v1",
                    "entries_behind": 0,
                    "seconds_behind": 0,
                    "consecutive_failures": 0,
                    "last_success_at": "2026-11-05T01:59:58+00:00",
                    "forks_recorded": 0,
                },
                {
                    "peer": "spiffe://bj.alliance.test/gateway/gw",
                    "origin": "bj.alliance.test/alliance-log/v1",
                    "entries_behind": 412,
                    "seconds_behind": 3600,
                    "consecutive_failures": 7,
                    "last_success_at": None,
                    "forks_recorded": 0,
                },
            ],
        },
    )


def view(
    lang: str = "zh-CN", narrative: Narrative | None = NARRATIVE, **kw: Any
) -> tuple[ReportView, dict[str, Any], MonthData]:
    data = month_data()
    doc = document(data)
    return (
        build_view(
            doc,
            locale=report_locale(lang),
            ledger=data.ledger,
            members=data.members,
            narrative=narrative,
            generated_at=datetime(2026, 11, 5, 2, 0, tzinfo=UTC),
            record_id="ab" * 32,
            log_index=1234,
            **kw,
        ),
        doc,
        data,
    )


def view_tables(v: ReportView) -> list[list[list[str]]]:
    """The view's non-empty tables as header row + rows (+ total)."""
    return [
        [
            [c.label for c in t.columns],
            *[list(r) for r in t.rows],
            *([list(t.total)] if t.total else []),
        ]
        for t in v.all_tables()
        if t.rows
    ]


def test_page_is_self_contained_and_escapes_what_it_shows() -> None:
    v, _, _ = view()
    page = render_html(v, report_locale("zh-CN"))
    lowered = page.lower()
    assert "<script" not in lowered
    for external in ("http://", "https://", "src=", "@import", "url("):
        assert external not in lowered
    assert '<html lang="zh-CN">' in page
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    assert "<h2>附件：本月失信主体台账</h2>" in page
    assert "2026年11月13日" in page and "2026年11月5日 10:00:00 中国标准时间" in page
    # Members by display name, never by SPIFFE id, in the tables.
    assert "淘宝（浙江）" in page and "spiffe://zj.alliance.test/platform/" not in page
    # The working group's text and record data are text, never markup.
    hostile = Narrative(
        prepared_by="<b>组</b>",
        contact="",
        overview=(),
        results=(),
        experience=(Block("<script>alert(1)</script>"),),
        problems=(Block(items=("<img src=x>",)),),
    )
    v2, _, _ = view(narrative=hostile)
    escaped = render_html(v2, report_locale("zh-CN"))
    assert "<script>" not in escaped and "&lt;script&gt;alert(1)&lt;/script&gt;" in escaped
    assert "<img" not in escaped and "&lt;b&gt;组&lt;/b&gt;" in escaped
    # The page tables are the view's tables.
    assert html_tables(page) == view_tables(v)


def test_natural_persons_are_masked_in_the_ledger() -> None:
    v, _, data = view()
    persons = [e for e in data.ledger if e.listing.subject and e.listing.subject.person_hmac]
    assert persons, "the synthetic month has natural persons in its ledger"
    ledger = next(t for t in v.all_tables() if t.key == "ledger")
    assert len(ledger.rows) == len(data.ledger)
    page = render_html(v, report_locale("zh-CN"))
    for e in persons:
        assert e.listing.subject is not None and e.listing.subject.person_hmac is not None
        assert e.listing.subject.person_hmac.hex() not in page
        row = next(r for r in ledger.rows if e.listing_id[:12] in r[1])
        assert row[1].startswith("自然人（已脱敏）")


def test_draft_is_marked_and_english_is_available() -> None:
    draft, _, _ = view(narrative=None)
    page = render_html(draft, report_locale("zh-CN"))
    assert (
        "草稿：未签名，未写入日志" in page and page.count("（草稿：工作组尚未填写本部分。）") == 2
    )
    en, _, _ = view("en")
    page = render_html(en, report_locale("en"))
    assert '<html lang="en">' in page and "<h2>I. Overall situation</h2>" in page
    assert "Close store" in page and "Nov 5, 2026" in page


def test_csv_files(tmp_path: Path) -> None:
    v, doc, data = view()
    zh = report_locale("zh-CN")
    summary = render_csv(doc, zh).splitlines()
    assert len(summary) == 33  # a header and the 32 reporting units
    assert summary[0].startswith("月份,单位代码,报送单位,新增列入,按期整改,")
    assert any(line.startswith("2026-10,33,浙江省,") for line in summary)
    cities = render_cities_csv(doc, zh).splitlines()
    assert cities[0].startswith("月份,单位代码,报送单位,地市代码,地市,新增列入")
    assert any(",330100,杭州市," in line for line in cities)
    sanctions = render_sanctions_csv(doc, zh, data.members).splitlines()
    assert (
        sanctions[0]
        == "月份,单位代码,报送单位,动作代码,动作,措施代码,惩戒措施,平台成员标识,平台,数量"
    )
    assert all(line.startswith("2026-10,") for line in sanctions[1:])
    assert any(
        ",APPLIED,已采取,PUBLIC_EXPOSURE,公开曝光,spiffe://zj.alliance.test/platform/" in line
        for line in sanctions
    )
    assert any(line.endswith(",淘宝（浙江）,1") for line in sanctions)
    en = render_sanctions_csv(doc, report_locale("en"), data.members).splitlines()
    assert en[0].startswith("Month,Unit code,Reporting unit,Action,")
    content = canonical_json(doc)
    paths = write_report(
        tmp_path,
        "r",
        content,
        doc,
        ["json", "csv", "html"],
        view=v,
        locale=zh,
        members=data.members,
    )
    assert (tmp_path / "r.json").read_bytes() == content
    assert {p.name for p in paths} == {
        "r.json",
        "r.csv",
        "r-cities.csv",
        "r-sanctions.csv",
        "r.html",
    }
    # Spreadsheet programs need the byte-order mark to read UTF-8.
    assert (tmp_path / "r.csv").read_bytes().startswith(b"\xef\xbb\xbf\xe6\x9c\x88")
    hashes = file_hashes(paths)
    assert hashes["r.json"] == hashlib.sha256(content).hexdigest()
    assert set(hashes) == {p.name for p in paths}


def test_docx_holds_the_same_tables_as_the_page(tmp_path: Path) -> None:
    import docx

    v, doc, data = view()
    paths = write_report(
        tmp_path,
        "r",
        canonical_json(doc),
        doc,
        ["docx", "html"],
        view=v,
        locale=report_locale("zh-CN"),
        members=data.members,
    )
    document_ = docx.Document(str(paths[0]))
    tables = [
        [[cell.text for cell in row.cells] for row in t.rows] for t in document_.tables[1:]
    ]  # the first table is the header's label/value block
    assert tables == view_tables(v)
    assert tables == html_tables((tmp_path / "r.html").read_text(encoding="utf-8"))
    text = "\n".join(p.text for p in document_.paragraphs)
    for title in SECTIONS:
        assert title in text
    assert "建立省市县三级联动机制，每周调度整改进展。" in text
    sizes = [
        (round(s.page_width.mm), round(s.page_height.mm))
        for s in document_.sections
        if s.page_width is not None and s.page_height is not None
    ]
    assert sizes == [(210, 297), (297, 210)]  # A4; the ledger in landscape
    footer = document_.sections[0].footer.paragraphs[0]._p.xml
    assert "PAGE" in footer and "fldChar" in footer


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _screenshot(browser: str, page: Path, png: Path, profile: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={png}",
            "--window-size=1000,1400",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert png.is_file()
    return done.stderr


def _no_cjk_fonts(folder: Path) -> dict[str, str]:
    """An environment whose fontconfig rejects every font covering Chinese."""
    listed = subprocess.run(
        ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=True
    ).stdout
    files = sorted({line.split(":")[0].strip() for line in listed.splitlines() if line.strip()})
    assert files, "no CJK font installed (apt-get install fonts-noto-cjk)"
    globs = "".join(f"<glob>{f}</glob>" for f in files)
    config = folder / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        "<include>/etc/fonts/fonts.conf</include>"
        f"<selectfont><rejectfont>{globs}</rejectfont></selectfont>"
        f"<cachedir>{folder / 'cache'}</cachedir></fontconfig>",
        encoding="utf-8",
    )
    hidden = {**os.environ, "FONTCONFIG_FILE": str(config)}
    check = subprocess.run(
        ["fc-list", ":lang=zh"], capture_output=True, text=True, check=True, env=hidden
    )
    assert check.stdout.strip() == "", "the CJK fonts are still visible"
    return hidden


def test_chromium_draws_real_cjk_glyphs(tmp_path: Path) -> None:
    """A screenshot with the CJK fonts differs measurably from one with them hidden:
    the Chinese text is drawn as glyphs, not as boxes (tofu) passing for text."""
    from PIL import Image, ImageChops

    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not found (apt-get install -y chromium)")
    v, _, _ = view()
    page = tmp_path / "report.html"
    page.write_text(render_html(v, report_locale("zh-CN")), encoding="utf-8")
    real, tofu = tmp_path / "report.png", tmp_path / "report-no-cjk-fonts.png"
    stderr = _screenshot(browser, page, real, tmp_path / "p1", dict(os.environ))
    assert [line for line in stderr.splitlines() if "CONSOLE" in line] == []
    _screenshot(browser, page, tofu, tmp_path / "p2", _no_cjk_fonts(tmp_path))
    with Image.open(real) as a, Image.open(tofu) as b:
        assert a.size == b.size == (1000, 1400)
        diff = ImageChops.difference(a.convert("L"), b.convert("L")).point(
            lambda x: 255 if x > 48 else 0
        )
        changed = diff.histogram()[255] / (a.size[0] * a.size[1])
        # The dark ink of the page: text set with glyphs has far more of it than boxes.
        ink_real = sum(a.convert("L").histogram()[:128])
        ink_tofu = sum(b.convert("L").histogram()[:128])
    print(f"pixels changed {changed:.2%}, ink {ink_real} with CJK fonts, {ink_tofu} without")
    assert changed > 0.03, f"only {changed:.2%} of the pixels differ"
    assert ink_real > 1.1 * ink_tofu, (ink_real, ink_tofu)
    keep = os.environ.get("ALLIANCE_REPORT_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(real, Path(keep) / "report-screenshot.png")
        shutil.copy(tofu, Path(keep) / "report-screenshot-no-cjk-fonts.png")


def test_pdf_engine_fetches_nothing(tmp_path: Path) -> None:
    """Even a page that names a local image gets no image: the engine fetches nothing."""
    from PIL import Image

    from gateway.ops.report_render import render_pdf

    picture = tmp_path / "p.png"
    Image.new("RGB", (40, 40), (200, 0, 0)).save(picture)
    page = f'<html><body><p>x</p><img src="{picture.as_uri()}"></body></html>'
    pdf = tmp_path / "p.pdf"
    pdf.write_bytes(render_pdf(page))
    listed = subprocess.run(
        ["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(listed) == 2, listed  # the header lines only: no image was fetched
