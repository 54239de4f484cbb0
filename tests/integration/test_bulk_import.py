"""Importing lists people already keep: real files against a real gateway."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gwtest import USCC, Alliance, running_gateway
from test_client import write_profile

from clients import bulk
from clients.client import AllianceClient
from clients.profile import load_profile

INVALID_USCC = "91110108551385082R"  # check character should be Q


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


def test_progress_counts_a_row_refused_by_the_file_once(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text(
        "uscc,list,conduct,decision_ref,listed_at\n"
        f"{USCC[0]},blacklist,counterfeit,D-1,2026-12-01\n"
        f"{INVALID_USCC},blacklist,counterfeit,D-2,2026-12-01\n"
    )
    seen: list[bulk.Progress] = []
    with AllianceClient(load_profile(site.authority)) as client:
        report = bulk.submit_file(client, path, on_progress=seen.append)
    assert (report.total, report.stored, len(report.rejected)) == (2, 1, 1)
    assert seen, "no progress was reported"
    assert all(p.done <= p.total for p in seen), seen
    last = seen[-1]
    assert (last.done, last.total, last.stored, last.duplicates, last.rejected) == (2, 2, 1, 0, 1)
