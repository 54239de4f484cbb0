"""The monthly report: compute at a checkpoint, sign as the gateway, append to the log.

The report is computed **only from the log entries below the checkpoint** it names,
by replaying them through ``gateway.core.report`` (the stored projections reflect the
whole log, later entries included, so they are not used). A monitor holding the log up
to that checkpoint recomputes the same numbers; the signed ``MonthlyReport`` carries the
checkpoint's size and root, so the monitor also proves it replayed the right entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from gateway import codec
from gateway.core.crypto import SigningKey
from gateway.core.fold import VerifiedRecord
from gateway.core.identifiers import REPORTING_UNITS, MemberId
from gateway.core.intake import DEFAULT_CLOCK_SKEW
from gateway.core.notes import NoteSigner
from gateway.core.report import MonthData, canonical_json, compute_month, report_document
from gateway.core.statements import MONTHLY_REPORT_TYPES, MonthlyReport, ReportFile
from gateway.core.workdays import ReportMonth, WorkCalendar
from gateway.errors import ConfigError, RecordError
from gateway.service.gateway_signing import sign_as_gateway
from gateway.service.ledger import Clock, Ledger, utc_now
from gateway.storage import SqlStore, StoredCheckpoint
from gateway.storage.compliance import ComplianceStore

__all__ = [
    "FEDERATION_NOT_AVAILABLE",
    "GeneratedReport",
    "ReportRef",
    "ReportService",
    "Schedule",
    "federation_health",
    "parse_unit",
    "replay",
]

logger = logging.getLogger(__name__)

_PAGE = 1000

FEDERATION_NOT_AVAILABLE: Mapping[str, Any] = MappingProxyType(
    {
        "available": False,
        "note": "federation health is not available: this gateway keeps no peer lag records",
    }
)

FederationHealth = Callable[[], Mapping[str, Any]]


# (document, the month's data, the canonical JSON content) -> the files published.
Publisher = Callable[[Mapping[str, Any], MonthData, bytes], Iterable[ReportFile]]


@dataclass(frozen=True)
class GeneratedReport:
    record_id: str
    log_index: int
    duplicate: bool
    statement: MonthlyReport
    document: dict[str, Any]
    # The same replay's ledger and member records (for the written report; not signed).
    data: MonthData


@dataclass(frozen=True)
class ReportRef:
    record_id: str
    log_index: int
    unit: str
    checkpoint_size: int


@dataclass(frozen=True)
class Schedule:
    month: ReportMonth
    due_date: date
    due_by: datetime
    reports: tuple[ReportRef, ...]


def replay(store: SqlStore, size: int) -> Iterator[VerifiedRecord]:
    """The log entries ``[0, size)`` as verified records (they were verified on append)."""
    start = 0
    while start < size:
        page = store.records_range(start, size, limit=_PAGE)
        if not page:
            break
        for record in page:
            statement = codec.decode_statement(
                record.payload_type, record.payload, record.disclosures
            )
            yield VerifiedRecord(record.record_id, record.signer, statement)
        start = page[-1].log_index + 1


def federation_health(store: SqlStore, clock: Clock = utc_now) -> FederationHealth:
    """Peer lag as the replication cursors record it (``peer_cursors``), for the report.

    Entries behind = the peer's newest verified checkpoint size minus our next index;
    seconds behind = time since our copy was last complete (0 when nothing is behind
    and the last pull succeeded, null when it never was complete).
    """

    def read() -> Mapping[str, Any]:
        now = clock()
        peers = []
        for c in store.peer_cursors():
            behind = max(0, c.checkpoint_size - c.next_index)
            if behind == 0 and c.consecutive_failures == 0:
                seconds: int | None = 0
            elif c.caught_up_at is not None:
                seconds = max(0, int((now - c.caught_up_at).total_seconds()))
            else:
                seconds = None
            peers.append(
                {
                    "peer": c.peer,
                    "origin": c.origin,
                    "entries_behind": behind,
                    "seconds_behind": seconds,
                    "consecutive_failures": c.consecutive_failures,
                    "last_success_at": (
                        None if c.last_success_at is None else c.last_success_at.isoformat()
                    ),
                    "forks_recorded": len(store.evidence(c.peer)),
                }
            )
        return {"available": True, "observed_at": now.isoformat(), "peers": peers}

    return read


def parse_unit(value: str | None) -> str | None:
    """``None``/empty: all units; a 2-digit unit or a 6-digit region code: that unit."""
    if not value:
        return None
    unit = value[:2] if len(value) == 6 and value.isdigit() else value
    if unit not in REPORTING_UNITS:
        raise RecordError(
            f"region: {value!r} is not a 2-digit reporting unit (11 … 65, 66 for the XPCC)"
        )
    return unit


class ReportService:
    def __init__(
        self,
        store: SqlStore,
        compliance: ComplianceStore,
        ledger: Ledger,
        key: SigningKey,
        note_signer: NoteSigner,
        *,
        gateway_id: str,
        origin: str,
        calendar: WorkCalendar,
        grace: timedelta,
        federation: FederationHealth | None = None,
        clock: Clock = utc_now,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        calendars: Callable[[], WorkCalendar] | None = None,
    ) -> None:
        self._clock_skew = clock_skew
        # The calendar in force when the log holds calendar records (CalendarBook.current);
        # ``calendar`` alone otherwise.
        self._calendars = calendars
        self._store = store
        self._compliance = compliance
        self._ledger = ledger
        self._key = key
        self._note_signer = note_signer
        self._gateway_id = gateway_id
        self._origin = origin
        self._calendar = calendar
        self._grace = grace
        self._federation = federation
        self._clock = clock

    @property
    def calendar(self) -> WorkCalendar:
        return self._calendar if self._calendars is None else self._calendars()

    def checkpoint(self) -> StoredCheckpoint:
        """Sign a checkpoint covering everything appended so far, and return it (or the
        newest one when nothing was appended since)."""
        signed = self._ledger.checkpoint(self._note_signer, self._origin)
        latest = signed or self._store.latest_checkpoint()
        assert latest is not None  # checkpoint() signs one unless a newer one exists
        return latest

    def compute(
        self, month: ReportMonth, unit: str | None, checkpoint: StoredCheckpoint
    ) -> dict[str, Any]:
        """The report document at ``checkpoint`` (nothing is signed or appended)."""
        return self.compute_month(month, unit, checkpoint)[0]

    def compute_month(
        self, month: ReportMonth, unit: str | None, checkpoint: StoredCheckpoint
    ) -> tuple[dict[str, Any], MonthData]:
        """The report document at ``checkpoint`` and, from the same replay, the month's
        ledger and member records (nothing is signed or appended)."""
        data = compute_month(
            replay(self._store, checkpoint.tree_size),
            month,
            grace=self._grace,
            trust_domain=MemberId.parse(self._gateway_id).trust_domain,
            unit=unit,
            calendar=self.calendar,
        )
        units = data.units
        document = report_document(
            issuer=self._gateway_id,
            log_origin=self._origin,
            month=month,
            unit=unit,
            checkpoint_size=checkpoint.tree_size,
            checkpoint_root=checkpoint.root_hash,
            units=units,
            grace_days=self._grace.days,
            due_date=self._due_date_or_none(month),
            federation=self._federation_health(),
        )
        return document, data

    def generate(
        self, month: ReportMonth, unit: str | None = None, *, publish: Publisher | None = None
    ) -> GeneratedReport:
        """Compute the report at a fresh checkpoint, sign it and append it to the log.

        ``publish`` renders the files the report is published as, from the document and
        the month's data, before anything is signed; the signed record names each by
        its SHA-256 (``MonthlyReport.files``). Without it the record names no file."""
        now = self._clock()
        if month.start > now + self._clock_skew:
            # A signed report is a statement of the gateway: never about a month to come.
            raise RecordError(
                f"month: {month} has not begun (the gateway's clock reads {now.isoformat()})",
                advice="report a month that has begun, normally the previous one",
            )
        checkpoint = self.checkpoint()
        document, data = self.compute_month(month, unit, checkpoint)
        content = canonical_json(document)
        files = tuple(publish(document, data, content)) if publish is not None else ()
        statement = MonthlyReport(
            issuer=self._gateway_id,
            month=str(month),
            unit=unit or "",
            checkpoint_size=checkpoint.tree_size,
            checkpoint_root=checkpoint.root_hash,
            content=content,
            files=files,
        )
        accepted = sign_as_gateway(
            statement, key=self._key, gateway_id=self._gateway_id, origin=self._origin
        )
        (result,) = self._ledger.append([accepted])
        logger.info(
            "monthly report %s (%s) at checkpoint %s: record %s, log index %s",
            month,
            unit or "all units",
            checkpoint.tree_size,
            result.record_id,
            result.log_index,
        )
        return GeneratedReport(
            result.record_id, result.log_index, result.duplicate, statement, document, data
        )

    def reports(self, month: ReportMonth | None = None) -> list[tuple[ReportRef, MonthlyReport]]:
        """Reports this gateway signed (for ``month``), in log order."""
        found = []
        rows = sorted(
            (index, record_id, payload_type, payload)
            for payload_type in MONTHLY_REPORT_TYPES
            for index, record_id, payload in self._compliance.records_of_type_after(
                payload_type, -1
            )
        )
        for index, record_id, payload_type, payload in rows:
            report = codec.decode_statement(payload_type, payload)
            assert isinstance(report, MonthlyReport)
            if report.issuer != self._gateway_id:
                continue
            if month is not None and report.month != str(month):
                continue
            ref = ReportRef(record_id, index, report.unit, report.checkpoint_size)
            found.append((ref, report))
        return found

    def schedule(self, month: ReportMonth | None = None) -> Schedule:
        """The period and due date of ``month``'s report (default: the next one due)."""
        calendar = self.calendar
        target = month if month is not None else calendar.next_due(self._clock())
        return Schedule(
            month=target,
            due_date=calendar.due_date(target),
            due_by=calendar.due_by(target),
            reports=tuple(ref for ref, _ in self.reports(target)),
        )

    def _due_date_or_none(self, month: ReportMonth) -> date | None:
        try:
            return self.calendar.due_date(month)
        except ConfigError as e:
            logger.warning("report %s states no due date: %s", month, e)
            return None

    def _federation_health(self) -> Mapping[str, Any]:
        if self._federation is None:
            return FEDERATION_NOT_AVAILABLE
        try:
            return self._federation()
        except Exception:
            logger.exception("federation health could not be read for the report")
            return {"available": False, "note": "federation health could not be read"}
