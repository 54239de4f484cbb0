"""Migration 0012: disclosures keyed by their record's log index instead of its record
id. Every held disclosure is carried over under its record's index and read back by
record id as before; a downgrade restores the record-id key."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from gateway.core.disclosure import Disclosure, Group
from gateway.storage import make_engine
from gateway.storage.db import _alembic_config, head_revision, migrate
from gateway.storage.disclosures import disclosures_for

_RECORD = (
    "INSERT INTO records (log_index, record_id, payload_type, payload, signatures, signer, "
    "origin, received_at) VALUES (:idx, :rid, 't', x'00', '[]', 's', 'o', "
    "'2026-12-01 00:00:00.000000')"
)
_DISCLOSURE = "INSERT INTO disclosures (record_id, grp, salt, value) VALUES (:rid, :grp, :s, :v)"
HELD = {  # record id -> (log index, its disclosures)
    "a" * 64: (0, [(1, b"s" * 16, b"name")]),
    "b" * 64: (1, []),  # erased: no disclosures left
    "c" * 64: (2, [(1, b"t" * 16, b"other"), (2, b"u" * 16, b"stores")]),
}


def test_disclosures_move_to_their_log_index_and_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    config = _alembic_config(engine)
    command.upgrade(config, "0011")
    with engine.begin() as c:
        for rid, (idx, held) in HELD.items():
            c.execute(text(_RECORD), {"idx": idx, "rid": rid})
            for grp, salt, value in held:
                c.execute(text(_DISCLOSURE), {"rid": rid, "grp": grp, "s": salt, "v": value})
    assert migrate(engine) == head_revision()
    with engine.connect() as c:
        rows = sorted(
            tuple(r) for r in c.execute(text("SELECT log_index, grp, value FROM disclosures"))
        )
        assert rows == [(0, 1, b"name"), (2, 1, b"other"), (2, 2, b"stores")]
        assert disclosures_for(c, list(HELD)) == {
            "a" * 64: (Disclosure(Group(1), b"s" * 16, b"name"),),
            "c" * 64: (
                Disclosure(Group(1), b"t" * 16, b"other"),
                Disclosure(Group(2), b"u" * 16, b"stores"),
            ),
        }
        ddl = c.execute(text("SELECT sql FROM sqlite_master WHERE name = 'disclosures'")).scalar()
        assert "WITHOUT ROWID" in str(ddl)  # the key's tree is the table
    columns = [c["name"] for c in inspect(engine).get_columns("disclosures")]
    assert columns == ["log_index", "grp", "salt", "value"]
    command.downgrade(config, "0011")
    with engine.connect() as c:
        back = sorted(
            tuple(r) for r in c.execute(text("SELECT record_id, grp, value FROM disclosures"))
        )
    assert back == [("a" * 64, 1, b"name"), ("c" * 64, 1, b"other"), ("c" * 64, 2, b"stores")]
    engine.dispose()
