"""Holiday calendars in the log: import one (sign it as the gateway, append it), and
the working-day calendar in force (the shipped schedules, each year replaced by the
deciding calendar record: ``gateway.core.calendar_record``).

Calendar records replicate like every record; a peer's arrive through replication and
count from the moment they are appended, here as on the peer.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from gateway import codec
from gateway.core.calendar_record import CalendarFile, merge_calendars, newest_per_year
from gateway.core.crypto import SigningKey
from gateway.core.statements import PAYLOAD_TYPES, HolidayCalendar
from gateway.core.workdays import WorkCalendar
from gateway.service.gateway_signing import sign_as_gateway
from gateway.service.ledger import Clock, Ledger, utc_now
from gateway.service.new_records import NewRecords, RecordsOfType

__all__ = [
    "CALENDAR_TYPE",
    "CalendarBook",
    "ImportedCalendar",
    "SignedCalendar",
    "import_calendar",
]

logger = logging.getLogger(__name__)

CALENDAR_TYPE = PAYLOAD_TYPES[HolidayCalendar]


@dataclass(frozen=True)
class ImportedCalendar:
    record_id: str
    log_index: int
    duplicate: bool
    statement: HolidayCalendar


@dataclass(frozen=True)
class SignedCalendar:
    record_id: str
    log_index: int
    statement: HolidayCalendar


def import_calendar(
    parsed: CalendarFile,
    *,
    ledger: Ledger,
    key: SigningKey,
    gateway_id: str,
    origin: str,
    clock: Clock = utc_now,
) -> ImportedCalendar:
    """Sign ``parsed`` as this gateway's calendar of its year and append it."""
    statement = HolidayCalendar(
        issuer=gateway_id,
        year=parsed.year,
        days=parsed.days,
        source=parsed.source,
        issued_at=clock(),
    )
    accepted = sign_as_gateway(statement, key=key, gateway_id=gateway_id, origin=origin)
    (result,) = ledger.append([accepted])
    logger.info(
        "holiday calendar %s imported (%s): record %s, log index %s",
        parsed.year,
        parsed.source,
        result.record_id,
        result.log_index,
    )
    return ImportedCalendar(result.record_id, result.log_index, result.duplicate, statement)


class CalendarBook:
    """The working-day calendar in force, kept up to date with the log.

    Each call reads only the calendar records appended since the previous one (the
    log index is the cursor), so it is cheap to ask on every report and gauge refresh.
    """

    def __init__(self, records: RecordsOfType, shipped: WorkCalendar) -> None:
        self._new = NewRecords(records, (CALENDAR_TYPE,))
        self._shipped = shipped
        self._lock = threading.Lock()
        self._signed: list[SignedCalendar] = []
        self._current = shipped

    def refresh(self) -> None:
        with self._lock:
            # Taken one at a time: a record that cannot be read stops the fold there, and
            # the next refresh reads it again instead of skipping what followed it.
            before = len(self._signed)
            for _, index, record_id, payload in self._new.read():
                statement = codec.decode_statement(CALENDAR_TYPE, payload)
                assert isinstance(statement, HolidayCalendar)
                self._signed.append(SignedCalendar(record_id, index, statement))
            if len(self._signed) == before:
                return
            deciding = newest_per_year((s.record_id, s.statement) for s in self._signed)
            self._current = merge_calendars(self._shipped, (s for _, s in deciding.values()))

    def current(self) -> WorkCalendar:
        self.refresh()
        return self._current

    def signed(self) -> list[SignedCalendar]:
        """Every calendar record in the log, in log order."""
        self.refresh()
        with self._lock:
            return list(self._signed)

    def deciding(self) -> dict[int, SignedCalendar]:
        """The record that decides each year it covers."""
        signed = self.signed()
        by_id = {s.record_id: s for s in signed}
        chosen = newest_per_year((s.record_id, s.statement) for s in signed)
        return {year: by_id[record_id] for year, (record_id, _) in chosen.items()}

    @property
    def shipped(self) -> WorkCalendar:
        return self._shipped
