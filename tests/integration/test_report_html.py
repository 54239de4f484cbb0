"""The HTML report renders in headless Chromium: no scripts, no requests, readable."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.fold import VerifiedRecord
from gateway.core.identifiers import _org_code_check, _uscc_check
from gateway.core.report import canonical_json, compute_units, report_document
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
from gateway.ops.report_render import render_csv, render_html, render_sanctions_csv, write_report

MONTH = ReportMonth(2026, 10)
GW = "spiffe://zj.alliance.test/gateway/gw"
AMR = "spiffe://zj.alliance.test/authority/zj-amr"
PLATFORMS = [f"spiffe://zj.alliance.test/platform/{n}" for n in ("taobao-zj", "jd-zj", "pdd-zj")]
REGIONS = ("330100", "330200", "440300", "110000", "310000", "660000", "650100")
HEADINGS = (
    "Summary",
    "Charts",
    "By reporting unit",
    "New listings by list and conduct",
    "Sanctions confirmed",
    "Outstanding sanctions",
    "Federation health",
    "Verification",
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
    for p in PLATFORMS:
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
        stores = (StoreRef(rng.choice(PLATFORMS), f"s{i}"),) if rng.random() < 0.5 else ()
        listing = Listing(
            issuer=AMR,
            subject=Subject(uscc=_uscc(rng), stores=stores),
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
            for j, p in enumerate(PLATFORMS):
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


def document() -> dict[str, Any]:
    units = compute_units(synthetic_records(), MONTH, grace=timedelta(days=7))
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


def test_page_is_self_contained() -> None:
    html = render_html(document(), record_id="ab" * 32, log_index=1234)
    lowered = html.lower()
    assert "<script" not in lowered
    for external in ("http://", "https://", "src=", "@import", "url("):
        # The SVG namespace is an identifier, not a request.
        assert external not in lowered.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in html
    assert "<svg" in html and "2026-11-13" in html
    escaped = render_html({**document(), "issuer": "<b>x</b>"})
    assert "<b>x</b>" not in escaped and "&lt;b&gt;x&lt;/b&gt;" in escaped


def test_csv_files(tmp_path: Path) -> None:
    doc = document()
    summary = render_csv(doc).splitlines()
    assert len(summary) == 33  # a header and the 32 reporting units
    sanctions = render_sanctions_csv(doc).splitlines()
    assert sanctions[0] == "month,unit,action,measure,platform,count"
    assert all(line.startswith("2026-10,") for line in sanctions[1:])
    content = canonical_json(doc)
    paths = write_report(tmp_path, "r", content, doc, ["json", "csv", "html"])
    assert (tmp_path / "r.json").read_bytes() == content
    assert {p.name for p in paths} == {"r.json", "r.csv", "r-sanctions.csv", "r.html"}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not found (apt-get install -y chromium)")
    page = tmp_path / "report.html"
    page.write_text(render_html(document(), record_id="ab" * 32, log_index=1234), encoding="utf-8")
    png = tmp_path / "report.png"
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = subprocess.run(
        [
            *common,
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={png}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.is_file()
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 1600)
    assert len(data) > 50_000, "the screenshot is nearly blank"
    console = [line for line in shot.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console

    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in dom.stdout
    assert "Monthly report 2026-10" in dom.stdout
    assert dom.stdout.count("<svg") == 4
    keep = Path("/tmp/alliance-report-screenshot.png")
    keep.write_bytes(data)
