"""Holiday calendars between two real federated gateways (ZJ and GD, mTLS, their own
logs): a calendar imported on one decides the due dates on both; the newest wins
whichever gateway signed it; a malformed file is refused by its bad date; and only a
configured gateway identity signs a calendar that counts anywhere."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from authz_support import (
    append_v1_member_record,
    code_of,
    eventually,
    federated_pair,
    has,
)
from gwtest import submit, write_config

from gateway import codec
from gateway.core import dsse
from gateway.core.calendar_record import days_of, parse_calendar_file
from gateway.core.crypto import SigningKey
from gateway.core.statements import PAYLOAD_TYPES, DayKind, HolidayCalendar
from gateway.core.workdays import ReportMonth, YearCalendar
from gateway.errors import ConfigError
from gateway.ops.cli import main as cli_main
from gateway.pb.alliance.v1 import compliance_pb2 as co
from gateway.pb.alliance.v1 import compliance_pb2_grpc
from gateway.service.calendars import import_calendar
from gateway.service.ledger import Accepted

DECEMBER = ReportMonth(2026, 12)
NEW_YEAR_2027 = frozenset({date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)})
SOURCE = "国务院办公厅关于2027年部分节假日安排的通知 (test copy)"


def calendar_csv(holidays: frozenset[date]) -> str:
    days = days_of(YearCalendar(2027, holidays))
    names = {DayKind.WORKDAY: "工作日", DayKind.WEEKEND: "休息日", DayKind.HOLIDAY: "节假日"}
    first = date(2027, 1, 1)
    rows = [f"{first + timedelta(days=i)},{names[k]}" for i, k in enumerate(days)]
    return "date,kind\n" + "\n".join(rows) + "\n"


def due_dates(*gateways: object) -> list[date]:
    return [gw.compliance.reports.schedule(DECEMBER).due_date for gw in gateways]  # type: ignore[attr-defined]


def test_a_calendar_imported_on_one_gateway_decides_due_dates_on_both(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with federated_pair(tmp_path, database_url) as pair:
        zj_gw, gd_gw = pair.zj_gw, pair.gd_gw
        # Neither ships 2027: December 2026's report has no due date yet.
        for gw in (zj_gw, gd_gw):
            with pytest.raises(ConfigError, match=r"no holiday schedule for 2027"):
                gw.compliance.reports.schedule(DECEMBER)
        config = write_config(tmp_path / "zj.toml", zj_gw.core.config)

        # A malformed file is refused by its bad date, and nothing is signed. (The log
        # itself may still grow meanwhile: GD's first records replicate in.)
        calendars = [PAYLOAD_TYPES[HolidayCalendar]]
        assert zj_gw.core.store.records_of_types(calendars) == []
        bad = tmp_path / "bad-2027.csv"
        bad.write_text(calendar_csv(NEW_YEAR_2027).replace("2027-02-15,工作日\n", ""), "utf-8")
        args = ["calendar", "import", "--config", str(config), "--source", SOURCE]
        assert cli_main([*args, str(bad)]) == 2
        assert "2027-02-15 missing: every date of 2027 needs a row" in capsys.readouterr().err
        wrong = tmp_path / "wrong-2027.csv"
        wrong.write_text(
            calendar_csv(NEW_YEAR_2027).replace("2027-01-09,休息日", "2027-01-09,工作日")
        )
        assert cli_main([*args, str(wrong)]) == 2
        assert "line 10: 2027-01-09 is a Saturday" in capsys.readouterr().err
        assert zj_gw.core.store.records_of_types(calendars) == []

        good = tmp_path / "cn-2027.csv"
        good.write_text(calendar_csv(NEW_YEAR_2027), encoding="utf-8")
        assert cli_main([*args, str(good)]) == 0
        out = capsys.readouterr().out
        assert (
            "calendar 2027 imported: 260 working days (0 make-up), 3 holidays, 102 weekend" in out
        )
        found = re.search(r"record ([0-9a-f]{64})", out)
        assert found is not None
        record_id = found.group(1)
        eventually(lambda: has(gd_gw, record_id), "GD replicates ZJ's calendar")
        # The last working day before 15 January 2027 is Thursday the 14th, on both.
        assert due_dates(zj_gw, gd_gw) == [date(2027, 1, 14)] * 2
        with pair.gd.platform.channel(pair.gd.port) as ch:
            schedule = compliance_pb2_grpc.ComplianceStub(ch).GetReportSchedule(
                co.GetReportScheduleRequest(month="2026-12"), timeout=5
            )
        assert schedule.due_date == "2027-01-14"

        # GD signs a corrected schedule later (14 January off): the newest calendar
        # decides, whichever configured gateway signed it, on both gateways.
        corrected = import_calendar(
            parse_calendar_file(
                calendar_csv(NEW_YEAR_2027 | {date(2027, 1, 14)}).encode(),
                name="cn-2027.csv",
                source=SOURCE + ", corrected",
            ),
            ledger=gd_gw.core.ledger,
            key=gd_gw.core.key,
            gateway_id=gd_gw.core.config.member_id,
            origin=gd_gw.core.config.log_origin,
            clock=lambda: datetime.now(UTC) + timedelta(seconds=1),
        )
        eventually(lambda: has(zj_gw, corrected.record_id), "ZJ replicates GD's calendar")
        assert due_dates(zj_gw, gd_gw) == [date(2027, 1, 13)] * 2

        assert cli_main(["calendar", "list", "--config", str(config)]) == 0
        listed = capsys.readouterr().out
        assert f"2027: record {corrected.record_id}" in listed
        assert f"signed by {gd_gw.core.config.member_id}" in listed
        assert "2026: shipped (State Council General Office" in listed


def _rogue_calendar(issuer: str) -> HolidayCalendar:
    days = days_of(YearCalendar(2027, NEW_YEAR_2027 | {date(2027, 1, 12), date(2027, 1, 13)}))
    return HolidayCalendar(issuer, 2027, days, "rogue", datetime.now(UTC) + timedelta(days=1))


def test_only_a_configured_gateway_signs_a_calendar_that_counts(
    tmp_path: Path, database_url: str
) -> None:
    """GD's log holds a gateway-role member record for gd/gateway/rogue and a calendar
    the rogue signed, newer than any other: ZJ refuses the batch holding it, so its due
    dates do not move; and no member can submit a calendar through Exchange."""
    with federated_pair(tmp_path, database_url) as pair:
        gd = pair.gd
        rogue_key = SigningKey.generate()
        rogue = f"spiffe://{gd.trust_domain}/gateway/rogue"
        append_v1_member_record(
            pair.gd_gw,
            gd,
            rogue,
            keys=[rogue_key.public_key().raw],
            issued_at=datetime.now(UTC) - timedelta(minutes=1),
        )
        statement = _rogue_calendar(rogue)
        payload_type, payload = codec.encode_statement(statement)
        env = dsse.sign(payload_type, payload, rogue_key)
        pair.gd_gw.core.ledger.append([Accepted(env, env.record_id, rogue, statement, gd.origin)])

        def refused() -> bool:
            (status,) = pair.zj_gw.replication.status()
            return "not a configured gateway" in status.last_error

        eventually(refused, "ZJ refuses the batch holding the rogue's calendar")
        assert not has(pair.zj_gw, env.record_id)
        with pytest.raises(ConfigError, match=r"no holiday schedule for 2027"):
            pair.zj_gw.compliance.reports.schedule(DECEMBER)

        # A platform cannot put a calendar into a log: not as itself (only a gateway
        # issues one) and not in its gateway's name (the signature is not the gateway's).
        shop = pair.zj.platform
        as_gateway = _rogue_calendar(pair.zj_gw.core.config.member_id)
        payload_type, payload = codec.encode_statement(as_gateway)
        forged = dsse.sign(payload_type, payload, shop.signing_key)
        with shop.channel(pair.zj.port) as ch:
            assert code_of(lambda: submit(ch, forged)) in (
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.INVALID_ARGUMENT,
            )
        assert not has(pair.zj_gw, forged.record_id)
