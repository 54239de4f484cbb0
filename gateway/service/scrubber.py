"""The background scrubber: rehash the whole log, slowly, round after round.

Each step checks one span of entries (``gateway.core.logcheck.check_span``: records
against their ids and leaves, nodes against their children), records what it finds as
damaged ranges (which reads then answer with ``DATA_LOSS``), and saves its position in
the database, so a restart resumes where it stopped. Steps are spaced to keep to
``rate_entries_per_s``; a round covers the log as it was when the round began, and the
next round starts from 0 at once. Several replicas on one database share the position
(each step moves it with a compare-and-set), so together they keep to about the rate.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.core.logcheck import Damage, DamageMap, EntryRow, check_span, describe
from gateway.core.merkle import NodeId
from gateway.errors import GatewayError
from gateway.service.ledger import Clock, utc_now
from gateway.storage.integrity import ScrubPosition

__all__ = ["ScrubObserver", "ScrubRows", "ScrubSettings", "Scrubber"]

logger = logging.getLogger(__name__)

_RETRY_S = 5.0  # after a failed step (the database was unavailable)
# A complete round is logged at INFO at most this often (a small log completes a round
# every step: the dev gateway's log was a line every 2.6 s); the metrics count them all.
_ROUND_LOG_INTERVAL_S = 3600.0


class ScrubRows(Protocol):
    """What the scrubber reads and writes (``gateway.storage.integrity.IntegrityStore``)."""

    def log_size(self) -> int: ...

    def span_rows(
        self, start: int, end: int
    ) -> tuple[dict[int, EntryRow], dict[NodeId, bytes]]: ...

    def scrub_position(self) -> ScrubPosition: ...

    def save_scrub_position(self, new: ScrubPosition, *, expected: ScrubPosition) -> bool: ...

    def add_damage(self, damages: Sequence[Damage], *, found_by: str, at: datetime) -> None: ...

    def known_damage(self) -> DamageMap: ...


class ScrubObserver(Protocol):
    """Progress and findings, for metrics (``gateway.ops.scrub_metrics``)."""

    def scrubbed(self, position: ScrubPosition, entries: int) -> None: ...

    def found(self, damages: Sequence[Damage]) -> None: ...


@dataclass(frozen=True)
class ScrubSettings:
    rate_entries_per_s: float
    # Entries a step checks (even). Small steps spread the work: at 100 entries/s a step
    # of 256 runs every 2.6 s and holds the interpreter for a few milliseconds.
    span: int = 256

    def __post_init__(self) -> None:
        if self.rate_entries_per_s <= 0:
            raise ValueError("the scrubber needs a positive rate")
        if self.span < 2 or self.span % 2:
            raise ValueError("a scrub span is a positive even number of entries")


class Scrubber:
    def __init__(
        self,
        rows: ScrubRows,
        settings: ScrubSettings,
        *,
        observer: ScrubObserver | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._rows = rows
        self._settings = settings
        self._observer = observer
        self._clock = clock
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._position: ScrubPosition | None = None
        self._round_logged_at = float("-inf")
        self._thread = threading.Thread(target=self._run, name="scrubber", daemon=True)

    @property
    def position(self) -> ScrubPosition | None:
        """Where this process last saw or left the scrubber (None before the first step)."""
        return self._position

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def wait_for_rounds(self, rounds: int, timeout_s: float) -> bool:
        """Block until ``rounds`` rounds are complete (as saved in the database)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._position is not None and self._position.rounds_completed >= rounds,
                timeout=timeout_s,
            )

    def step(self) -> int:
        """Check the next span of the current round; return how many entries it held."""
        rows = self._rows
        position = rows.scrub_position()
        if position.next_index >= position.round_end:
            size = rows.log_size()
            if size == 0:
                self._saw(position, 0)
                return 0
            started = dataclasses.replace(
                position, next_index=0, round_end=size, round_started_at=self._clock()
            )
            if not rows.save_scrub_position(started, expected=position):
                return 0  # another replica moved it; look again next step
            position = started
        start = position.next_index
        end = min(position.round_end, (start // self._settings.span + 1) * self._settings.span)
        entries, nodes = rows.span_rows(start, end)
        known = rows.known_damage()
        damages = check_span(start, end, entries, nodes, known_bad_node=known.is_bad_node)
        now = self._clock()
        if damages:
            rows.add_damage(damages, found_by="scrubber", at=now)
            for d in damages:
                logger.error("log damage found by the scrubber: %s", describe(d))
            if self._observer is not None:
                self._observer.found(damages)
        moved = dataclasses.replace(position, next_index=end)
        if end >= position.round_end:
            moved = dataclasses.replace(
                moved,
                rounds_completed=position.rounds_completed + 1,
                last_round_completed_at=now,
            )
            self._log_round(position.round_end)
        if not rows.save_scrub_position(moved, expected=position):
            return 0
        self._saw(moved, end - start)
        return end - start

    def _log_round(self, entries: int) -> None:
        now = time.monotonic()
        if now - self._round_logged_at >= _ROUND_LOG_INTERVAL_S:
            self._round_logged_at = now
            logger.info(
                "scrubber: round over %s entries complete (rounds are logged at most hourly)",
                entries,
            )
        else:
            logger.debug("scrubber: round over %s entries complete", entries)

    def _saw(self, position: ScrubPosition, entries: int) -> None:
        with self._changed:
            self._position = position
            self._changed.notify_all()
        if self._observer is not None:
            self._observer.scrubbed(position, entries)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                checked = self.step()
            except GatewayError as e:
                logger.warning("scrubber step failed, retrying in %ss: %s", _RETRY_S, e)
                self._stop.wait(_RETRY_S)
                continue
            except Exception:
                logger.exception("scrubber step failed; retrying in %ss", _RETRY_S)
                self._stop.wait(_RETRY_S)
                continue
            # Every step is billed at least a whole span: a small log is not rescrubbed
            # (nor its position rewritten) many times a second.
            self._stop.wait(max(checked, self._settings.span) / self._settings.rate_entries_per_s)
