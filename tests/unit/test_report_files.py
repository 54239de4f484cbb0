"""MonthlyReport.files (monthly-report.v2): the rules of a ReportFile, v1 and v2 payloads,
and the worked example of docs/PROTOCOL.md §7.4."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.codec import decode_statement, encode_statement
from gateway.core.statements import (
    MONTHLY_REPORT_V1,
    MONTHLY_REPORT_V2,
    PAYLOAD_TYPES,
    MonthlyReport,
    ReportFile,
)
from gateway.errors import RecordError

ROOT = Path(__file__).resolve().parents[2]
GW = "spiffe://zj.alliance.example/gateway/hz"
PDF = hashlib.sha256(b"%PDF-1.7\n").digest()


def _file(**kw: Any) -> ReportFile:
    values: dict[str, Any] = {
        "name": "report-2026-10-33.pdf",
        "media_type": "application/pdf",
        "sha256": PDF,
    }
    values.update(kw)
    return ReportFile(**values)


def _report(*files: ReportFile) -> MonthlyReport:
    return MonthlyReport(
        issuer=GW,
        month="2026-10",
        unit="33",
        checkpoint_size=42,
        checkpoint_root=bytes(32),
        content=b"{}",
        files=files,
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": ""}, r"files\.name: must not be empty"),
        ({"name": "out/report.pdf"}, "must be a file name, not a path"),
        ({"name": "..\\report.pdf"}, "must be a file name, not a path"),
        ({"name": ".."}, "must be a file name, not a path"),
        ({"name": "a\x1b[31m.pdf"}, "control characters"),
        ({"name": "x" * 256}, "at most 255 characters"),
        ({"media_type": "PDF"}, "is not a media type"),
        ({"media_type": "application/pdf; charset=x"}, "is not a media type"),
        ({"sha256": PDF[:31]}, r"sha256: must be 32 bytes"),
        ({"sha256": PDF.hex()}, r"sha256: must be 32 bytes"),
    ],
)
def test_a_report_file_breaking_a_rule_is_refused(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        _file(**kw)


def test_the_files_of_a_report() -> None:
    with pytest.raises(RecordError, match="a file name appears twice"):
        _report(_file(), _file(sha256=bytes(32)))
    many = [_file(name=f"f{i}.pdf") for i in range(17)]
    with pytest.raises(RecordError, match="at most 16 files"):
        _report(*many)
    with pytest.raises(RecordError, match="must be a tuple of ReportFile"):
        MonthlyReport(GW, "2026-10", "33", 42, bytes(32), b"{}", files=[_file()])  # type: ignore[arg-type]
    assert _report(*many[:16]).files == tuple(many[:16])


def test_v2_round_trips_and_v1_still_verifies() -> None:
    assert PAYLOAD_TYPES[MonthlyReport] == MONTHLY_REPORT_V2
    report = _report(_file(), _file(name="report-2026-10-33.json", media_type="application/json"))
    payload_type, payload = encode_statement(report)
    assert payload_type == MONTHLY_REPORT_V2
    assert decode_statement(payload_type, payload) == report
    # A report signed before files were named: v1, no field 8; it decodes as before.
    old = _report()
    v1_type, v1_payload = encode_statement(old, MONTHLY_REPORT_V1)
    assert decode_statement(v1_type, v1_payload) == old
    assert encode_statement(old)[1] == v1_payload  # no files: the same bytes in v2
    # v1 carries no files: neither encoded nor accepted.
    with pytest.raises(RecordError, match=r"monthly-report\.v1 carries no files"):
        encode_statement(report, MONTHLY_REPORT_V1)
    with pytest.raises(RecordError, match=r"unknown field 8 \(files is not part of this payload"):
        decode_statement(MONTHLY_REPORT_V1, payload)
    # A v2 payload with a field ReportFile does not define is refused too.
    # (field 8 again, holding a ReportFile with field 4 = 1)
    tampered = payload + bytes([0x42, 0x02, 0x20, 0x01])
    with pytest.raises(RecordError, match=r"monthly_report\.files: unknown fields"):
        decode_statement(MONTHLY_REPORT_V2, tampered)


def test_protocol_worked_example() -> None:
    """docs/PROTOCOL.md §7.4: the v2 payload of the example, byte for byte."""
    doc = (ROOT / "docs" / "PROTOCOL.md").read_text("utf-8")
    start = doc.index("Worked example (tests/unit/test_report_files.py recomputes it)")
    begin = doc.index("```\n", start) + 4
    block = doc[begin : doc.index("\n```", begin)]
    expected = bytes.fromhex(re.sub(r"\s", "", block))
    assert hashlib.sha256(b"%PDF-1.7\n").hexdigest() in doc[start : start + 1200]
    payload_type, payload = encode_statement(_report(_file()))
    assert payload_type == MONTHLY_REPORT_V2 and payload == expected and len(payload) == 188
