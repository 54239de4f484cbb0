"""Monthly-report refusals found by mutation testing (docs/TESTING.md): a gateway's signed
report is checked field by field before it is logged or accepted from a peer, and each
refusal names the field at fault, whole."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.statements import MonthlyReport, ReportFile
from gateway.errors import RecordError

GW = "spiffe://zj.alliance.example/gateway/hz"


def _report(**kw: Any) -> MonthlyReport:
    fields: dict[str, Any] = {
        "issuer": GW,
        "month": "2026-10",
        "unit": "33",
        "checkpoint_size": 42,
        "checkpoint_root": bytes(32),
        "content": b"{}",
    }
    fields.update(kw)
    return MonthlyReport(**fields)


def _file(name: str) -> ReportFile:
    return ReportFile(name=name, media_type="application/pdf", sha256=bytes(32))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"issuer": "https://gw"},
            "monthly_report.issuer: must start with spiffe://, got 'https://gw'",
        ),
        (
            {"issuer": "spiffe://zj.alliance.example/platform/p"},
            "monthly_report.issuer: must be a gateway member id",
        ),
        ({"month": "2026/10"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "2026-1"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": 202610}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "2026-1a"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "20x6-10"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "2026-\uff11\uff10"}, "monthly_report.month: must be YYYY-MM"),
        ({"month": "2026-00"}, "monthly_report.month: 2026-00 is not a calendar month"),
        ({"month": "2026-13"}, "monthly_report.month: 2026-13 is not a calendar month"),
        ({"month": "0000-10"}, "monthly_report.month: 0000-10 is not a calendar month"),
        (
            {"unit": "99"},
            "monthly_report.unit: must be empty (all units) or a 2-digit reporting unit",
        ),
        (
            {"unit": 33},
            "monthly_report.unit: must be empty (all units) or a 2-digit reporting unit",
        ),
        (
            {"checkpoint_size": -1},
            "monthly_report.checkpoint_size: must be a tree size (0 or more)",
        ),
        (
            {"checkpoint_size": 2**63},
            "monthly_report.checkpoint_size: must be a tree size (0 or more)",
        ),
        (
            {"checkpoint_size": True},
            "monthly_report.checkpoint_size: must be a tree size (0 or more)",
        ),
        (
            {"checkpoint_size": 42.0},
            "monthly_report.checkpoint_size: must be a tree size (0 or more)",
        ),
        (
            {"checkpoint_root": bytes(31)},
            "monthly_report.checkpoint_root: must be 32 bytes (SHA-256)",
        ),
        (
            {"checkpoint_root": "0" * 32},
            "monthly_report.checkpoint_root: must be 32 bytes (SHA-256)",
        ),
        (
            {"content_type": "text/html"},
            "monthly_report.content_type: must be 'application/json'",
        ),
        ({"content": b""}, "monthly_report.content: must not be empty"),
        ({"content": "{}"}, "monthly_report.content: must not be empty"),
        (
            {"content": b"{" + b" " * (1024 * 1024 - 2) + b"}!"},
            "monthly_report.content: at most 1048576 bytes",
        ),
        ({"content": b"[]"}, "monthly_report.content: must be a JSON object"),
        (
            {"files": [_file("a.pdf")]},
            "monthly_report.files: must be a tuple of ReportFile",
        ),
        (
            {"files": ("a.pdf",)},
            "monthly_report.files: must be a tuple of ReportFile",
        ),
        (
            {"files": tuple(_file(f"{i}.pdf") for i in range(17))},
            "monthly_report.files: at most 16 files",
        ),
        (
            {"files": (_file("a.pdf"), _file("b.pdf"), _file("a.pdf"))},
            "monthly_report.files: a file name appears twice",
        ),
    ],
)
def test_a_malformed_monthly_report_is_refused_by_field(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError) as caught:
        _report(**kw)
    assert str(caught.value) == message


def test_a_report_at_every_limit_is_accepted() -> None:
    """What one gateway signs at a limit, its peers must accept: a report at the largest
    tree size, exactly 1 MiB of content, 16 files, the first and last month of a year,
    year 0001, and no unit (all units)."""
    content = b"{" + b" " * (1024 * 1024 - 2) + b"}"
    files = tuple(_file(f"{i}.pdf") for i in range(16))
    report = _report(checkpoint_size=2**63 - 1, content=content, files=files, unit="")
    assert (report.checkpoint_size, len(report.content), len(report.files)) == (
        2**63 - 1,
        1024 * 1024,
        16,
    )
    for month in ("2026-01", "2026-12", "0001-06"):
        assert _report(month=month, checkpoint_size=0).month == month


def test_report_content_that_is_not_utf8_json_is_refused_naming_the_error() -> None:
    with pytest.raises(RecordError) as caught:
        _report(content=b"\xff{}")
    assert str(caught.value).startswith("monthly_report.content: not UTF-8 JSON: ")
    with pytest.raises(RecordError) as caught:
        _report(content=b"{")
    assert str(caught.value).startswith(
        "monthly_report.content: not UTF-8 JSON: Expecting property name"
    )
