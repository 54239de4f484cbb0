"""Records of some payload types read from the log as it grows: each read returns only
what was appended since the one before, the log index of each type being its cursor.
The folds kept beside the log (the calendar in force, government measures by listing)
read through it instead of the whole log each time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

__all__ = ["NewRecords", "RecordsOfType"]

# ``(log_index, record_id, payload)`` of one payload type after a log index, in order
# (``ComplianceStore.records_of_type_after``).
RecordsOfType = Callable[[str, int], list[tuple[int, str, bytes]]]


class NewRecords:
    """Not locked: its owner reads under the lock that guards its fold. A record's
    cursor moves as it is taken, so a fold that fails part-way reads the rest again."""

    def __init__(self, records: RecordsOfType, payload_types: Sequence[str]) -> None:
        self._records = records
        self._after = dict.fromkeys(payload_types, -1)

    def read(self) -> Iterator[tuple[str, int, str, bytes]]:
        """``(payload_type, log_index, record_id, payload)`` of each new record, type by
        type, each in log order."""
        for payload_type in self._after:
            for index, record_id, payload in self._records(payload_type, self._after[payload_type]):
                yield payload_type, index, record_id, payload
                self._after[payload_type] = index
