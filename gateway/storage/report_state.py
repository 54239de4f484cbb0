"""When drafts of monthly reports were written: the one piece of a report's state that
is not a signed record (finalised reports and submissions are in the log)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.errors import StorageError
from gateway.storage.models import ReportDraftRow

__all__ = ["DraftStore"]


class DraftStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def note_draft(self, month: str, unit: str, at: datetime) -> None:
        """Remember that a draft of ``month`` (``unit``, "" for all) was written at ``at``."""
        try:
            with Session(self._engine) as s, s.begin():
                row = s.get(ReportDraftRow, (month, unit))
                if row is None:
                    s.add(ReportDraftRow(month=month, unit=unit, drafted_at=at))
                else:
                    row.drafted_at = at
        except SQLAlchemyError as e:
            raise StorageError(f"database write failed: {e}") from e

    def drafted(self, months: list[str]) -> dict[tuple[str, str], datetime]:
        """``(month, unit) -> drafted_at`` for the drafts of ``months``."""
        try:
            with Session(self._engine) as s:
                rows = s.execute(
                    select(
                        ReportDraftRow.month, ReportDraftRow.unit, ReportDraftRow.drafted_at
                    ).where(ReportDraftRow.month.in_(months))
                )
                return {(m, u): at for m, u, at in rows}
        except SQLAlchemyError as e:
            raise StorageError(f"database read failed: {e}") from e
