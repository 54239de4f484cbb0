"""Migration 0009 (publication periods): a listing closed before it gets ``closed_at``
from its stored closing steps (the earliest CORRECTED, REMOVED or WITHDRAWN)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from gateway.storage import make_engine
from gateway.storage.db import _alembic_config, head_revision, migrate

_LISTING = (
    "INSERT INTO listings (listing_id, subject_key, issuer, list_kind, conduct, region_code, "
    "listed_at, deadline, step, in_force, log_index) VALUES (:id, 'k', 'i', 1, 4, '330100', "
    "'2026-01-01 00:00:00.000000', '2026-04-01 00:00:00.000000', :step, :in_force, :idx)"
)
_STEP = (
    "INSERT INTO listing_steps (record_id, listing_id, step, effective_at) "
    "VALUES (:rid, :id, :step, :at)"
)


def test_closed_listings_get_their_earliest_closing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    command.upgrade(_alembic_config(engine), "0008")
    with engine.begin() as c:
        c.execute(text(_LISTING), {"id": "closed", "step": 5, "in_force": False, "idx": 0})
        c.execute(text(_LISTING), {"id": "open", "step": 6, "in_force": True, "idx": 1})
        for rid, step, at in (
            ("a", 6, "2026-04-02 00:00:00.000000"),  # ESCALATED: not a closing step
            ("b", 5, "2026-06-01 00:00:00.000000"),  # REMOVED
            ("c", 4, "2026-05-01 00:00:00.000000"),  # CORRECTED, earlier
        ):
            c.execute(text(_STEP), {"rid": rid, "id": "closed", "step": step, "at": at})
        c.execute(
            text(_STEP), {"rid": "d", "id": "open", "step": 6, "at": "2026-04-02 00:00:00.000000"}
        )
    # To the head: 0009 fills closed_at, and the later revisions keep it (0010 rebuilds
    # listings on SQLite, its subject_key becoming nullable, keeping every value).
    assert migrate(engine) == head_revision()
    assert int(head_revision()) >= 10
    with engine.connect() as c:
        rows: dict[str, tuple[object, object]] = {
            str(k): (key, closed)
            for k, key, closed in c.execute(
                text("SELECT listing_id, subject_key, closed_at FROM listings")
            )
        }
    assert rows["open"] == ("k", None)
    assert rows["closed"][0] == "k"
    assert str(rows["closed"][1]).startswith("2026-05-01 00:00:00")
