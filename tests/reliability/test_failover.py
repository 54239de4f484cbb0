"""Scale-out fail-over: two replicas of one regional gateway on one PostgreSQL schema;
the one sequencing is killed while it holds the sequencer lock, and the other carries on.

**What "the sequencing one" means here.** There is no standing leader: every replica
sequences its own batches. An append (and a checkpoint signature) is one transaction
that first updates the single ``log_state`` row (``UnitOfWork.lock_log``), so PostgreSQL's
row lock lets one replica at a time extend the log; the other waits on the lock, then
reloads the log's edge from the stored nodes and appends after it. "The sequencing
one" is therefore whichever replica holds that row lock *now*. The test finds it in
the database (the ``xmax`` of the ``log_state`` row is the transaction holding the lock,
``pg_stat_activity`` maps it to a connection, ``/proc`` maps the connection's port to a
replica process), freezes that process with SIGSTOP while it is inside the transaction
(checking it still holds the lock, retrying otherwise), shows that the log cannot grow
while it holds it, then SIGKILLs it mid-transaction.

Both replicas run ``alliance-gateway serve`` with the same configuration (same gateway
certificate and log key: they are one gateway) except their listen and metrics ports.
Two members submit concurrently, one through each replica; a client whose replica
dies moves to the other and resends what it had in flight (as behind a load
balancer). The test asserts that the survivor keeps accepting and checkpointing (and
its ``alliance_log_entries`` gauge moves), that every record acknowledged by either is
in the log exactly once at its acknowledged index, that the log is consistent with
every checkpoint seen before the kill, and that the killed replica restarts and
appends after the survivor's entries. It prints the fail-over time (kill to the
survivor's next acknowledgement, and to its next checkpoint).
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from gwtest import Alliance, pg_base_url, pg_schema_url
from loadgen import (
    AckBook,
    CheckpointWatcher,
    Loader,
    check_acknowledged,
    check_checkpoints,
    listings,
    open_channel,
    read_log,
    resubmit,
    stop_all,
)
from procs import (
    GatewayProcess,
    RecordProperty,
    alliance_config,
    eventually,
    local_tcp_ports,
    register,
    reserve_port,
    scrape,
)
from psycopg.rows import TupleRow
from sqlalchemy.engine import make_url

from gateway.core.notes import NoteSigner, open_checkpoint

pytestmark = pytest.mark.skipif(
    pg_base_url() is None, reason="needs PostgreSQL: set ALLIANCE_TEST_DATABASE_URL"
)

# The transaction that updated log_state and has not ended holds the sequencer lock.
_LOCK_HOLDER = """
SELECT a.pid, a.client_port, a.state
FROM pg_stat_activity a
WHERE a.backend_xid = (SELECT xmax FROM log_state WHERE id = 1)
"""


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _holder(conn: psycopg.Connection[TupleRow]) -> tuple[int, int, str] | None:
    row = conn.execute(_LOCK_HOLDER).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]))


def _waits_for(conn: psycopg.Connection[TupleRow], holder: tuple[int, int, str] | None) -> bool:
    """Whether some backend is blocked by ``holder``'s backend."""
    if holder is None:
        return False
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
        (holder[0],),
    ).fetchone()
    return row is not None and int(row[0]) > 0


def _log_size(conn: psycopg.Connection[TupleRow]) -> int:
    row = conn.execute("SELECT tree_size FROM log_state WHERE id = 1").fetchone()
    assert row is not None
    return int(row[0])


def test_killing_the_sequencing_replica(tmp_path: Path, record_property: RecordProperty) -> None:
    base = pg_base_url()
    assert base is not None
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    authority = alliance.member("authority", "zj-amr", region="330000")
    other = alliance.member("authority", "zj-amr2", region="330000")
    with pg_schema_url(base) as url:
        ports = [reserve_port(), reserve_port()]
        metrics = [reserve_port(), reserve_port()]
        configs = [
            alliance_config(alliance, url, p, metrics_address=f"127.0.0.1:{m}")
            for p, m in zip(ports, metrics, strict=True)
        ]
        register(configs[0], (authority, other))
        origin = configs[0].log_origin
        verifier = NoteSigner(origin, alliance.gateway_member().signing_key).verifier()
        with (
            GatewayProcess(configs[0], tmp_path / "run", "replica-a") as a,
            GatewayProcess(configs[1], tmp_path / "run", "replica-b") as b,
            psycopg.connect(_conninfo(url), autocommit=True) as db,
        ):
            replicas = (a, b)
            for r in replicas:
                r.start()
            books = (AckBook(), AckBook())
            load = [
                Loader(
                    member,
                    [ports[i], ports[1 - i]],
                    listings(member, f"FAILOVER-{i}"),
                    books[i],
                    name=f"via-{'ab'[i]}",
                    stream_size=20,
                    timeout_s=5.0,
                    resend_in_doubt=True,
                )
                for i, member in enumerate((authority, other))
            ]
            watcher = CheckpointWatcher(authority, ports, interval_s=0.05)
            try:
                for loader in load:
                    loader.start()
                watcher.start()
                eventually(
                    lambda: all(len(bk.acked) > 50 for bk in books), "both replicas take records"
                )
                # A few checkpoints to check after the kill.
                eventually(lambda: len(watcher.seen()) >= 3, "checkpoints are signed", 20)

                victim, survivor, attempts = _freeze_lock_holder(db, replicas)
                size_frozen = _log_size(db)
                # The other replica tries to append (or sign) and waits for the lock the
                # frozen one holds: while it waits, the log cannot grow.
                eventually(
                    lambda: _waits_for(db, _holder(db)), "the other replica waits for the lock", 20
                )
                assert _log_size(db) == size_frozen, "the log grew while the lock was held"
                survivor_i = replicas.index(survivor)
                notes_before = watcher.seen(before=time.monotonic())
                gauge_before = scrape(metrics[survivor_i])["alliance_log_entries"]

                victim.kill()
                killed = time.monotonic()
                eventually(
                    lambda: books[survivor_i].acks_after(killed) > 0, "the survivor acks", 20
                )
                first = books[survivor_i].first_ack_after(killed)
                assert first is not None
                failover_s = first - killed

                def newer_checkpoint() -> bool:
                    return any(
                        open_checkpoint(n, verifier).size > size_frozen for n in watcher.seen()
                    )

                checkpoint_s = eventually(newer_checkpoint, "the survivor signs a checkpoint", 20)
                moved = load[replicas.index(victim)]
                eventually(
                    lambda: (
                        moved.port == survivor.port
                        and books[replicas.index(victim)].acks_after(killed) > 0
                    ),
                    "the victim's client goes through the survivor",
                    30,
                )
                eventually(
                    lambda: scrape(metrics[survivor_i])["alliance_log_entries"] > gauge_before,
                    "alliance_log_entries moves on the survivor",
                    10,
                )
                gauge_after = scrape(metrics[survivor_i])["alliance_log_entries"]
            finally:
                watcher.stop()
                stop_all(load)
            for loader in load:
                assert not loader.refused, f"{loader.name}: refused {loader.refused[:3]}"
            assert moved.port == survivor.port, "the victim's client did not move over"

            # What a client still holds in doubt, it resubmits (as its signer) to the survivor.
            book = AckBook()
            for member, bk in zip((authority, other), books, strict=True):
                _, in_doubt = bk.snapshot()
                with open_channel(member, survivor.port) as ch:
                    for env, res in zip(in_doubt, resubmit(ch, in_doubt), strict=True):
                        bk.ack(env, res.record_id, res.log_index)
                book.merge(bk)
            assert not book.conflicts, book.conflicts[:3]
            with open_channel(authority, survivor.port) as ch:
                acked, in_doubt = book.snapshot()
                assert not in_doubt
                log = read_log(ch, verifier, origin)
                check_acknowledged(log, acked)
                checked = check_checkpoints(ch, log, notes_before, verifier, origin)
                assert set(acked) <= set(log.record_ids)

            # The killed replica comes back, reloads the log's edge and appends after it.
            restart_s = victim.start()
            with open_channel(other, victim.port) as ch:
                (result,) = resubmit(ch, [next(listings(other, "AFTER-RESTART"))])
                assert not result.duplicate and result.log_index >= log.size
                final = read_log(ch, verifier, origin)
                check_checkpoints(ch, final, [log.note, *notes_before], verifier, origin)
            for r in replicas:
                assert r.stop() == 0

    stats = {
        "freeze_attempts": attempts,
        "failover_to_first_ack_s": round(failover_s, 3),
        "failover_to_checkpoint_s": round(checkpoint_s, 3),
        "restart_s": round(restart_s, 3),
        "acknowledged": len(acked),
        "checkpoints_before_kill": checked,
        "log_entries_gauge": f"{gauge_before:.0f} -> {gauge_after:.0f}",
    }
    print(f"fail-over: killed {victim.name} holding the sequencer lock; {stats}")
    assert checked >= 2
    for k, v in stats.items():
        record_property(k, v)


def _freeze_lock_holder(
    db: psycopg.Connection[TupleRow], replicas: tuple[GatewayProcess, GatewayProcess]
) -> tuple[GatewayProcess, GatewayProcess, int]:
    """SIGSTOP the replica holding the log_state lock, inside its transaction.

    Returns (frozen, other, attempts). Polls until a holder is seen, freezes its
    process, and keeps it frozen only if the same backend still holds the lock.
    """
    ports = {r.name: local_tcp_ports(r.pid) for r in replicas}
    deadline = time.monotonic() + 30
    attempts = 0
    while time.monotonic() < deadline:
        held = _holder(db)
        if held is None:
            continue
        backend, client_port, _ = held
        owner = next((r for r in replicas if client_port in ports[r.name]), None)
        if owner is None:  # a connection opened since we looked
            ports = {r.name: local_tcp_ports(r.pid) for r in replicas}
            continue
        attempts += 1
        owner.pause()
        time.sleep(0.05)  # a statement under way finishes; then the backend waits for us
        again = _holder(db)
        if again is not None and again[0] == backend and again[2] == "idle in transaction":
            other = replicas[1 - replicas.index(owner)]
            return owner, other, attempts
        owner.resume()
    raise AssertionError("never caught a replica holding the sequencer lock")
