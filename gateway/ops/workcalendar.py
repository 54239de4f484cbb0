"""Load the working-day calendars (one TOML file per year) for report due dates.

The gateway ships ``gateway/ops/calendars/cn-<year>.toml`` with the State Council's
schedules it knows; ``calendar_dir`` in the configuration points at another folder
(every ``*.toml`` in it is read). A year without a file is an error when a due date
falls in it, never a guess.
"""

from __future__ import annotations

from pathlib import Path

from gateway.core.workdays import WorkCalendar, parse_year_calendar
from gateway.errors import ConfigError

__all__ = ["SHIPPED_CALENDARS", "load_work_calendar"]

SHIPPED_CALENDARS = Path(__file__).resolve().parent / "calendars"


def load_work_calendar(directory: Path | None = None) -> WorkCalendar:
    folder = SHIPPED_CALENDARS if directory is None else directory
    if not folder.is_dir():
        raise ConfigError(f"calendar_dir: {folder} is not a folder")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ConfigError(f"calendar_dir: {folder} holds no *.toml calendar")
    years = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the calendar: {e}") from e
        years.append(parse_year_calendar(text, name=str(path)))
    return WorkCalendar(years)
