"""SQLite WAL checkpoints run on a thread of their own (gateway.storage.walcheck).

A gateway's connections have SQLite's automatic checkpoints off, so the sequencer's
commits no longer copy the WAL back into the database file; the ``WalCheckpointer``
does, and the WAL must still start over instead of growing with every write. Real
SQLite files throughout; PostgreSQL has no WAL of this kind (the gateway runs no
checkpointer there).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from gwtest import USCC, listing, running_gateway, submit, zhejiang
from test_federation import eventually

from gateway.storage import WalCheckpointer, background_checkpoints_apply, make_engine

ROWS = 400
# Enough rounds that a WAL which never starts over (about 4.9 MB a round here) ends far
# above the bound, and one that does (4-12 MB at its high-water mark in test runs) far below.
ROUNDS = 12


def _autocheckpoint(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _write_round(engine: sa.Engine, table: sa.Table, start: int) -> None:
    """ROWS rows of 2 KB, one transaction each (as a stream of small commits)."""
    for i in range(start, start + ROWS):
        with engine.begin() as conn:
            conn.execute(table.insert(), {"id": i, "body": bytes([i % 251]) * 2048})


def _table(engine: sa.Engine) -> sa.Table:
    meta = sa.MetaData()
    table = sa.Table(
        "filler",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    meta.create_all(engine)
    return table


def test_only_a_gateway_engine_turns_automatic_checkpoints_off(tmp_path: Path) -> None:
    default = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    background = make_engine(f"sqlite:///{tmp_path / 'b.db'}", background_checkpoints=True)
    memory = make_engine("sqlite://", background_checkpoints=True)
    try:
        assert _autocheckpoint(default) == 1000  # SQLite's default: operator commands
        assert _autocheckpoint(background) == 0
        assert background_checkpoints_apply(background)
        assert not background_checkpoints_apply(memory)  # no WAL to copy
    finally:
        for engine in (default, background, memory):
            engine.dispose()


def test_the_checkpointer_copies_the_wal_so_it_starts_over(tmp_path: Path) -> None:
    """The attack on the disk: with automatic checkpoints off and nothing copying the
    WAL back, every commit makes the -wal file longer until the disk is full; and a
    writer that never pauses never finds the WAL fully copied when it begins, so PASSIVE
    checkpoints alone do not let it start over either. With the checkpointer running
    (RESTART past ``restart_frames``), rounds of back-to-back commits are copied into the
    database file and the WAL starts over: its file stays near the size of one round."""
    path = tmp_path / "gw.db"
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    wal = Path(f"{path}-wal")
    checkpointer = WalCheckpointer(engine, interval_s=0.05, restart_frames=ROWS)
    try:
        table = _table(engine)
        checkpointer.start()
        sizes = []
        for r in range(ROUNDS):
            _write_round(engine, table, r * ROWS)

            def copied() -> bool:
                last = checkpointer.last
                return last is not None and last.complete and last.wal_frames > 0

            eventually(copied, f"round {r} checkpointed")
            sizes.append(wal.stat().st_size)
        assert checkpointer.restarts > 0
        one_round = ROWS * 2048
        assert sizes[0] >= one_round  # the round went through the WAL
        # Back-to-back rounds reuse the WAL from its start: at the end it holds far less
        # than the rounds wrote (a WAL that never starts over holds every round).
        assert sizes[-1] < ROUNDS * one_round * 2, sizes
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == (
                ROWS * ROUNDS
            )
    finally:
        checkpointer.stop()
        engine.dispose()


def test_without_the_checkpointer_the_wal_only_grows(tmp_path: Path) -> None:
    """The control for the test above: the same writes on an engine with automatic
    checkpoints off and no checkpointer leave every round in the WAL."""
    path = tmp_path / "gw.db"
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    wal = Path(f"{path}-wal")
    try:
        table = _table(engine)
        for r in range(ROUNDS):
            _write_round(engine, table, r * ROWS)
        assert wal.stat().st_size >= ROUNDS * ROWS * 2048 * 2
    finally:
        engine.dispose()


def test_a_gateway_checkpoints_its_wal_in_the_background(tmp_path: Path) -> None:
    alliance = zhejiang(tmp_path / "zj")
    path = tmp_path / "gw.db"
    amr = alliance.members["zj-amr"]
    with running_gateway(
        alliance.config(f"sqlite:///{path}"), register=(amr, alliance.members["ndrc"])
    ) as gw:
        core = gw.core
        assert core.wal is not None
        assert _autocheckpoint(core.engine) == 0
        with amr.channel(gw.port) as ch:
            for i in range(6):
                submit(ch, amr.sign(listing(amr, uscc=USCC[i % 3], decision_ref=f"ZJ-W{i}")))
        size = core.ledger.size

        def copied() -> bool:
            last = core.wal.last if core.wal is not None else None
            return last is not None and last.complete and last.wal_frames > 0

        eventually(copied, "the gateway's WAL checkpointed")
        assert core.ledger.size == size
