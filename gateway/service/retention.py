"""Retention: the gateway erases its trust domain's redactable records a set number of
days after the listing they belong to closed (issue 18 item 6; docs/OPERATIONS.md §9c).

Run from the ticker beside the retirement. Erased are the disclosures of listing.v2,
status-change.v2, sanction-confirmation.v2 and government-measure.v2 records

- issued by a member of this gateway's trust domain (the policy lets the gateway of the
  issuer's trust domain erase them; peers erase their own and the erasure replicates),
- belonging to a listing that closed (CORRECTED, REMOVED, WITHDRAWN, RETIRED; a listing
  in force is never erased by retention) at least ``days[kind]`` days ago,
- still holding disclosures.

The gateway signs an Erasure record naming them (basis RETENTION_ENDED, a fixed legal
basis naming the setting), which every gateway holding them applies.

**Deterministic.** Retention is judged at the start of the current day in China
Standard Time (``retention_day``: the calendar of the protocol's deadlines) and that
instant is the erasure's ``effective_at`` — never before any named record's retention
ended. Within a day every run, every replica sharing the database and every restart
finds the same records in the same order, cuts them into the same batches and signs the
same bytes (an erasure.v1 has no salts), so the ledger appends each erasure once. A
record of ours that arrives during a pass (late, in the middle of the order) may shift
the batches after it: some records are then named twice, which changes nothing.

**Bounded.** A record names its listing inside its payload: each redactable record of
our trust domain is read once, in log order, at most ``index_batch`` a tick, and linked
to its listing in ``retention_records`` (``gateway.storage.retention``). Once that is
caught up, a pass per day goes through the kinds in a fixed order, at most
``max_records`` ids per erasure and ``max_erasures`` erasures per tick, resuming after
the last record it named; a backlog is worked through over several ticks.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from gateway import codec
from gateway.core.crypto import SigningKey
from gateway.core.dsse import pae
from gateway.core.identifiers import MemberId
from gateway.core.statements import (
    CHINA_STANDARD_TIME,
    GOVERNMENT_MEASURE_V2,
    LISTING_V2,
    MAX_ERASED_RECORDS,
    SANCTION_CONFIRMATION_V2,
    STATUS_CHANGE_V2,
    Erasure,
    ErasureBasis,
)
from gateway.errors import ConfigError, GatewayError
from gateway.service.erasure import authorize_held
from gateway.service.gateway_signing import sign_as_gateway
from gateway.service.ledger import Appended, Ledger
from gateway.storage import SqlStore
from gateway.storage.retention import LogRecord, RetentionRecord, RetentionStore

__all__ = [
    "RecordKind",
    "RetentionEraser",
    "RetentionRun",
    "RetentionSettings",
    "legal_basis",
    "retention_day",
]

logger = logging.getLogger(__name__)


class RecordKind(enum.IntEnum):
    """The kinds of redactable records, each with its own retention (stored in
    ``retention_records.kind``)."""

    LISTING = 1
    STATUS_CHANGE = 2
    SANCTION_CONFIRMATION = 3
    GOVERNMENT_MEASURE = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def setting(self) -> str:
        """The configuration key of its retention in days (gateway.ops.config)."""
        return f"retention_{self.label}_days"


KIND_OF_TYPE: Mapping[str, RecordKind] = {
    LISTING_V2: RecordKind.LISTING,
    STATUS_CHANGE_V2: RecordKind.STATUS_CHANGE,
    SANCTION_CONFIRMATION_V2: RecordKind.SANCTION_CONFIRMATION,
    GOVERNMENT_MEASURE_V2: RecordKind.GOVERNMENT_MEASURE,
}


@dataclass(frozen=True)
class RetentionSettings:
    """``days``: per kind, days after the listing closed; then per tick at most
    ``max_erasures`` erasures of at most ``max_records`` ids each, and at most
    ``index_batch`` records read from the log."""

    days: Mapping[RecordKind, int]
    max_records: int = MAX_ERASED_RECORDS
    max_erasures: int = 4
    index_batch: int = 2000

    def __post_init__(self) -> None:
        missing = [k.setting for k in RecordKind if k not in self.days]
        if missing:
            raise ConfigError(f"retention: no days for {', '.join(missing)}")
        for kind, days in self.days.items():
            if days < 1:
                raise ConfigError(f"{kind.setting}: at least 1 day, got {days}")
        if not 1 <= self.max_records <= MAX_ERASED_RECORDS:
            raise ConfigError(f"retention: 1 to {MAX_ERASED_RECORDS} records per erasure")
        if self.max_erasures < 1 or self.index_batch < 1:
            raise ConfigError("retention: at least one erasure and one record a tick")


@dataclass(frozen=True)
class RetentionRun:
    """What one call did: the erasures it appended (not those another replica had
    signed first), and whether it worked on a pass (the overdue count may have moved)."""

    appended: list[Appended] = field(default_factory=list)
    passed: bool = False


def retention_day(now: datetime) -> datetime:
    """The start of ``now``'s day in China Standard Time (as UTC-aware time): the
    instant retention is judged at, and the erasures' ``effective_at``, all that day."""
    local = now.astimezone(CHINA_STANDARD_TIME)
    return datetime.combine(local.date(), time(), CHINA_STANDARD_TIME).astimezone(UTC)


def legal_basis(kind: RecordKind, days: int) -> str:
    """The fixed legal basis of a retention erasure (no personal data: the setting)."""
    return (
        f"retention period of {kind.label.replace('_', ' ')} records ended: {days} days "
        f"after their listing closed ({kind.setting} = {days}; PIPL art. 19 and 47)"
    )


class RetentionEraser:
    def __init__(
        self,
        store: SqlStore,
        ledger: Ledger,
        key: SigningKey,
        settings: RetentionSettings,
        *,
        gateway_id: str,
        origin: str,
    ) -> None:
        self._store = store
        self._records = RetentionStore(store.engine)
        self._ledger = ledger
        self._key = key
        self._settings = settings
        self._gateway_id = gateway_id
        self._origin = origin
        self._prefix = f"spiffe://{MemberId.parse(gateway_id).trust_domain}/"
        self._indexed: int | None = None  # the log index the reading resumes after
        # The pass in progress: its day, the kind it is at, the last record it named.
        self._pass_day: datetime | None = None
        self._kind = 0
        self._cursor = -1
        self._done: datetime | None = None  # the day of the last complete pass
        self._lock = threading.Lock()

    def run(self, now: datetime) -> RetentionRun:
        """Read new records, then (once caught up) erase what is due, within the bound."""
        with self._lock:  # the ticker, and an operator or a test calling it directly
            return self._run(now)

    def _run(self, now: datetime) -> RetentionRun:
        if not self._read_log():
            return RetentionRun()
        day = retention_day(now)
        if self._done == day:
            return RetentionRun()
        if self._pass_day != day:  # a new day: start over with its cutoffs
            self._pass_day, self._kind, self._cursor = day, 0, -1
        run = RetentionRun(passed=True)
        kinds = list(RecordKind)
        erasures = 0
        while erasures < self._settings.max_erasures:
            kind = kinds[self._kind]
            closed_by = day - timedelta(days=self._settings.days[kind])
            rows = self._records.overdue(
                kind, closed_by, after_index=self._cursor, limit=self._settings.max_records
            )
            if rows:
                run.appended.extend(self._erase(kind, [rid for _, rid in rows], day))
                erasures += 1
                self._cursor = rows[-1][0]
            if len(rows) < self._settings.max_records:
                self._kind, self._cursor = self._kind + 1, -1
                if self._kind == len(kinds):
                    self._done, self._kind = day, 0
                    pruned = self._records.prune()
                    logger.info("retention pass of %s done (%d rows pruned)", day.date(), pruned)
                    break
        return run

    def overdue(self, now: datetime) -> dict[RecordKind, int]:
        """Per kind, the records of this trust domain past their retention (as judged
        today) that still hold disclosures."""
        day = retention_day(now)
        return {
            kind: self._records.count_overdue(kind, day - timedelta(days=self._settings.days[kind]))
            for kind in RecordKind
        }

    def _erase(self, kind: RecordKind, record_ids: list[str], day: datetime) -> list[Appended]:
        erasure = Erasure(
            issuer=self._gateway_id,
            record_ids=tuple(record_ids),
            basis=ErasureBasis.RETENTION_ENDED,
            legal_basis=legal_basis(kind, self._settings.days[kind]),
            effective_at=day,
        )
        # The policy a member's erasure passes, for every named record.
        authorize_held(
            self._store,
            self._gateway_id,
            erasure,
            signer_region=None,
            signer_scope=None,
            require_all=True,
        )
        accepted = sign_as_gateway(
            erasure, key=self._key, gateway_id=self._gateway_id, origin=self._origin
        )
        fresh = [r for r in self._ledger.append([accepted]) if not r.duplicate]
        for r in fresh:
            logger.info(
                "retention: erased %d %s record(s) (erasure %s, log index %s)",
                len(record_ids),
                kind.label,
                r.record_id,
                r.log_index,
            )
        return fresh

    def _read_log(self) -> bool:
        """Link the next records of ours to their listings; True once caught up."""
        if self._indexed is None:
            self._indexed = self._records.indexed_through()
        size = self._store.log_size()
        batch = self._settings.index_batch
        found = self._records.unindexed(
            self._prefix,
            list(KIND_OF_TYPE),
            after_index=self._indexed,
            before_index=size,
            limit=batch,
        )
        self._records.add([r for r in map(self._linked, found) if r is not None])
        if len(found) < batch:
            self._indexed = size - 1
            return True
        self._indexed = found[-1].log_index
        return False

    def _linked(self, record: LogRecord) -> RetentionRecord | None:
        """The record with its listing, or None (logged) when it cannot be read."""
        kind = KIND_OF_TYPE[record.payload_type]
        digest = hashlib.sha256(pae(record.payload_type, record.payload)).hexdigest()
        if digest != record.record_id:
            logger.error(
                "retention: record at log index %s does not hash to its id; left out "
                "(run `alliance-gateway check-log`)",
                record.log_index,
            )
            return None
        # Parsed only as far as its issuer and listing id: it was verified and checked
        # when appended, and a full decode of every record of a long log would hold the
        # GIL for seconds while lookups wait (the first start after the upgrade).
        try:
            opened = codec.open_payload(record.payload_type, record.payload)
        except GatewayError as e:
            logger.error("retention: record at log index %s unreadable: %s", record.log_index, e)
            return None
        if not opened.issuer.startswith(self._prefix):
            return None  # the signer is its issuer (intake checks it): never the case
        listing_id = (
            record.record_id if kind is RecordKind.LISTING else str(opened.message.listing_id)
        )
        return RetentionRecord(record.log_index, record.record_id, listing_id, int(kind))
