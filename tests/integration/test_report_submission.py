"""The monthly report's way from due to submitted, on a real gateway with a test clock:
the state gauges follow each step, a month past its due date without a submission is
overdue, and `report submit` records (signed, in the log) to whom, when and which file
hashes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from gwtest import Alliance, Clock, write_config, zhejiang

from gateway import codec
from gateway.core.report_state import ReportState
from gateway.core.statements import ReportSubmission
from gateway.core.workdays import ReportMonth
from gateway.ops.app import Gateway
from gateway.ops.cli import main as cli_main
from gateway.ops.config import Config

OCTOBER = ReportMonth(2026, 10)
CST = timezone(timedelta(hours=8))


@contextmanager
def gateway_at(config: Config, clock: Clock) -> Iterator[Gateway]:
    gateway = Gateway(config, clock=clock).start()
    try:
        yield gateway
    finally:
        gateway.stop(grace_s=1.0)


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def gauges(gw: Gateway, month: str) -> tuple[str, float | None]:
    """The month's state (the one series at 1) and its overdue flag."""
    gw.compliance.refresh_gauges()
    registry = gw.metrics.registry
    states = [
        s.label
        for s in ReportState
        if registry.get_sample_value("alliance_report_state", {"month": month, "state": s.label})
        == 1
    ]
    assert len(states) == 1, states
    overdue = registry.get_sample_value("alliance_report_submission_overdue", {"month": month})
    return states[0], overdue


def submissions(gw: Gateway) -> list[ReportSubmission]:
    store = gw.core.store
    found = []
    for r in store.records_range(0, store.log_size()):
        statement = codec.decode_statement(r.payload_type, r.payload, r.disclosures)
        if isinstance(statement, ReportSubmission):
            found.append(statement)
    return found


def test_submitting_moves_the_state_and_clears_overdue(
    alliance: Alliance,
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = alliance.config(database_url)
    path = write_config(tmp_path / "gateway.toml", config)
    # October 2026's report is due Friday 13 November, late from the 14th, 00:00 Beijing.
    clock = Clock(datetime(2026, 11, 2, tzinfo=CST))
    with gateway_at(config, clock) as gw:
        assert gauges(gw, "2026-10") == ("due", 0)
        assert gauges(gw, "2026-09")[0] == "due"  # the two latest ended months

        out = tmp_path / "out"
        draft = ["report", "--config", str(path), "--month", "2026-10", "--draft"]
        assert cli_main([*draft, "--out", str(out), "--format", "json"]) == 0
        capsys.readouterr()
        assert gauges(gw, "2026-10") == ("drafted", 0)

        report = gw.compliance.reports.generate(OCTOBER)
        assert gauges(gw, "2026-10") == ("finalised", 0)

        # The last moment before the due time: not overdue; from it on, overdue.
        clock.set(datetime(2026, 11, 13, 23, 59, 59, tzinfo=CST))
        assert gauges(gw, "2026-10") == ("finalised", 0)
        clock.set(datetime(2026, 11, 14, tzinfo=CST))
        assert gauges(gw, "2026-10") == ("finalised", 1)
        assert gauges(gw, "2026-09") == ("due", 1)

        pdf, data = tmp_path / "report-2026-10-all.pdf", tmp_path / "report-2026-10-all.json"
        pdf.write_bytes(b"%PDF-1.7 the written report")
        data.write_bytes(report.statement.content)
        submit = [
            "report",
            "submit",
            "--config",
            str(path),
            "--month",
            "2026-10",
            "--to",
            "国家发展改革委财金司",
            "--at",
            "2026-11-14T09:30:00+08:00",
        ]
        assert cli_main([*submit, "--file", str(pdf), "--file", str(data)]) == 0
        printed = capsys.readouterr().out
        assert "report 2026-10 (all units) submitted to 国家发展改革委财金司" in printed
        for f in (pdf, data):
            assert f"{f.name} sha256 {hashlib.sha256(f.read_bytes()).hexdigest()}" in printed
        assert gauges(gw, "2026-10") == ("submitted", 0)
        assert gauges(gw, "2026-09") == ("due", 1)  # still owed

        (recorded,) = submissions(gw)
        assert recorded.issuer == alliance.gateway_id
        assert (recorded.month, recorded.unit, recorded.report_id) == (
            "2026-10",
            "",
            report.record_id,
        )
        assert recorded.recipient == "国家发展改革委财金司"
        assert recorded.submitted_at == datetime(2026, 11, 14, 1, 30, tzinfo=UTC)
        assert [(f.name, f.sha256) for f in recorded.files] == [
            (pdf.name, hashlib.sha256(pdf.read_bytes()).digest()),
            (data.name, hashlib.sha256(data.read_bytes()).digest()),
        ]

        # `schedule` shows the same states, and the months' due dates.
        schedule = ["schedule", "--config", str(path), "--months", "2", "--until", "2026-10"]
        assert cli_main(schedule) == 0
        shown = capsys.readouterr().out
        assert re.search(r"^report 2026-10: due 2026-11-13, submitted$", shown, re.MULTILINE)
        assert re.search(
            r"^report 2026-09: due 2026-10-\d\d, due, "
            r"OVERDUE \(late since 2026-10-\d\dT00:00\+08:00",
            shown,
            re.MULTILINE,
        )


def test_submission_refusals(
    alliance: Alliance,
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = alliance.config(database_url)
    path = write_config(tmp_path / "gateway.toml", config)
    sent = tmp_path / "report.pdf"
    sent.write_bytes(b"%PDF")
    base = ["report", "submit", "--config", str(path), "--to", "NDRC", "--file", str(sent)]
    with gateway_at(config, Clock(datetime(2026, 11, 2, tzinfo=CST))) as gw:
        size = gw.core.store.log_size()
        # Nothing to submit before the report is finalised.
        assert cli_main([*base, "--month", "2026-10"]) == 2
        err = capsys.readouterr().err
        assert "no signed report of 2026-10 (all units)" in err
        assert "hint: finalise it first: `alliance-gateway report --month 2026-10" in err
        gw.compliance.reports.generate(OCTOBER)
        cases = [
            (["--month", "2026-10", "--unit", "33"], "no signed report of 2026-10 (33)"),
            (["--month", "2026-10", "--at", "2999-01-01T00:00+08:00"], "is in the future"),
            (["--month", "2026-10", "--at", "2026-10-31T23:00+08:00"], "before 2026-10 ended"),
            (["--month", "2026-10", "--at", "2026-11-14T09:00"], "has no time zone"),
            (["--month", "2026-10", "--file", str(tmp_path / "nope.pdf")], "cannot read it"),
            (["--month", "2026-10", "--file", str(sent)], "a file name is listed twice"),
            (["--month", "2026-10", "--unit", "99"], "not a 2-digit reporting unit"),
            (["--month", "2026-13"], "month: 13 is not 1 to 12"),
        ]
        grown = gw.core.store.log_size()
        for extra, message in cases:
            assert cli_main([*base, *extra]) == 2, extra
            assert message in capsys.readouterr().err, extra
        blank = ["report", "submit", "--config", str(path), "--month", "2026-10"]
        assert cli_main([*blank, "--to", " ", "--file", str(sent)]) == 2
        assert "report_submission.recipient: must not be empty" in capsys.readouterr().err
        assert gw.core.store.log_size() == grown == size + 1  # only the report was signed
        assert submissions(gw) == []


def test_schedule_warns_sixty_days_before_a_year_without_calendar(
    alliance: Alliance,
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_config(tmp_path / "gateway.toml", alliance.config(database_url))
    schedule = ["schedule", "--config", str(path)]
    # 1 January 2027 is 61 days after 1 November 2026, 60 after the 2nd.
    assert cli_main([*schedule, "--as-of", "2026-11-01"]) == 0
    quiet = capsys.readouterr()
    assert "warning" not in quiet.err
    assert "report 2026-10: due 2026-11-13, due" in quiet.out
    assert cli_main([*schedule, "--as-of", "2026-11-02"]) == 0
    warned = capsys.readouterr().err
    assert (
        "warning: no holiday calendar for 2027: report due dates from 2027-01-01 (in 60 days)"
        in (warned)
    )
    assert "alliance-gateway calendar import FILE" in warned

    # Once 2027 is imported, the warning is gone and January's due dates are known.
    calendar = tmp_path / "cn-2027.toml"
    calendar.write_text(
        'year = 2027\nsource = "test schedule"\n'
        '[[holidays]]\nname = "元旦"\nfirst = 2027-01-01\nlast = 2027-01-03\n',
        encoding="utf-8",
    )
    assert cli_main(["calendar", "import", str(calendar), "--config", str(path)]) == 0
    capsys.readouterr()
    assert cli_main([*schedule, "--as-of", "2027-01-20", "--months", "1"]) == 0
    done = capsys.readouterr()
    assert "warning" not in done.err
    assert "report 2026-12: due 2027-01-14, due, OVERDUE" in done.out
    assert cli_main([*schedule, "--as-of", "2027-13-01"]) == 2
    assert "--as-of: '2027-13-01' is not a date" in capsys.readouterr().err
