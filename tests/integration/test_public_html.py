"""The public search page in headless Chromium against a running gateway: the search
form leads to the entity's page, which shows the listing, its dates, deciding body,
status and the server-side verification, in Chinese (and English with ?lang=en), at a
desktop and a phone width. Screenshots are kept with ``ALLIANCE_PUBLIC_ARTIFACTS=DIR``."""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gwtest import LISTED_AT, USCC, listing, running_gateway, submit, zhejiang

from gateway.core.statements import LifecycleStep, StatusChange, Subject

NAME = "杭州示例商贸有限公司"
WIDTHS = {"desktop": (1280, 1600), "phone": (390, 1600)}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
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
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class _Form(html.parser.HTMLParser):
    """The search form's action, its text input's name and the label pointing at it."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.inputs: dict[str, str] = {}
        self.labels: set[str] = set()
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang", "")
        if tag == "form":
            self.action = a.get("action", "")
        if tag == "input" and a.get("type") == "search":
            self.inputs[a.get("id", "")] = a.get("name", "")
        if tag == "label":
            self.labels.add(a.get("for", ""))


def _dom(browser: str, url: str, profile: Path) -> str:
    return _browser(browser, profile, "--dump-dom", url).stdout


def test_search_page_in_chromium(tmp_path: Path) -> None:
    from PIL import Image

    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not found (apt-get install -y chromium)")
    alliance = zhejiang(tmp_path)
    amr = alliance.members["zj-amr"]
    cfg = alliance.config(f"sqlite:///{tmp_path / 'gw.db'}", public_address="127.0.0.1:0")
    with running_gateway(cfg) as gw:
        # The authority's display name is the deciding body the page shows.
        gw.core.members.add(
            amr.member_id,
            amr.region,
            amr.signing_key.public_key().raw,
            possession=amr.possession(),
            display_name="浙江省市场监督管理局",
        )
        subject = Subject(uscc=USCC[0], name=NAME)
        with amr.channel(gw.port) as ch:
            shown = submit(ch, amr.sign(listing(amr, subject=subject))).record_id
            old = submit(ch, amr.sign(listing(amr, subject=subject, decision_ref="ZJ-1"))).record_id
            submit(
                ch,
                amr.sign(
                    StatusChange(
                        issuer=amr.member_id,
                        listing_id=old,
                        step=LifecycleStep.CORRECTED,
                        effective_at=datetime(2026, 11, 20, tzinfo=UTC),
                        decision_ref="ZJ-AMR-2026-0101",
                        reason="已完成整改并提交信用承诺",
                        decided_by="杭州市市场监督管理局",
                    )
                ),
            )
        assert gw.public_feed is not None
        assert gw.public_feed.wait_for_size(gw.core.ledger.size, timeout_s=10)
        base = f"http://127.0.0.1:{gw.public_port}"

        # The search page: a labelled GET form, the page's language, no script.
        home = _dom(browser, base + "/", tmp_path / "p0")
        form = _Form()
        form.feed(home)
        assert form.lang == "zh-CN" and form.action == "/search"
        assert form.inputs == {"q": "q"} and "q" in form.labels
        assert "<script" not in home
        assert "统一社会信用代码或企业名称" in home

        # Searching a credit code is GET /search?q=…; it lands on the entity's page.
        search = f"{base}/search?q={USCC[0].lower()}"
        with urllib.request.urlopen(search, timeout=10) as r:
            assert r.url == f"{base}/entity/{USCC[0]}"
        dom = _dom(browser, search, tmp_path / "p1")
        for text in (
            NAME,
            USCC[0],
            "黑名单",
            "刷单炒信",
            # 列入日期, in Beijing time (the fixture listings are dated midnight UTC)
            f"{LISTED_AT.year}年{LISTED_AT.month}月{LISTED_AT.day}日",
            "在列",
            "已移出",
            "已整改",
            "已完成整改并提交信用承诺",
            "2026年11月20日",
            "杭州市市场监督管理局",
            "浙江省市场监督管理局",
            "证明已核验",
            "本页每条记录均已在服务器端对照签名检查点核验",
            shown,
        ):
            assert text in dom, text
        assert "未通过核验" not in dom
        english = _dom(browser, search + "&lang=en", tmp_path / "p2")
        assert 'lang="en"' in english and "In force" in english and "Fake transactions" in english
        assert "Proof checked" in english

        # An unknown valid code, and a name search.
        assert "无公示记录" in _dom(browser, f"{base}/entity/{USCC[1]}", tmp_path / "p3")
        by_name = _dom(browser, f"{base}/search?q=示例商贸", tmp_path / "p4")
        assert f"/entity/{USCC[0]}" in by_name

        keep = os.environ.get("ALLIANCE_PUBLIC_ARTIFACTS")
        for label, (width, height) in WIDTHS.items():
            png = tmp_path / f"public-entity-{label}.png"
            _browser(
                browser,
                tmp_path / f"s-{label}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                search,
            )
            with Image.open(png) as image:
                assert image.size == (width, height)
                gray: Any = image.convert("L")
                # Text fills the page's column: dark ink on both halves of the width.
                left = gray.crop((0, 0, width // 2, height)).histogram()
                right = gray.crop((width // 2, 0, width, height)).histogram()
                assert sum(left[:128]) > 500 and sum(right[:128]) > 100, label
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(png, Path(keep) / png.name)
