"""Crash safety: a gateway process SIGKILLed at random moments under load loses no
acknowledged record, never appends one twice, and never signs a checkpoint that a
later one contradicts.

The gateway runs as ``alliance-gateway serve`` in its own process on SQLite, on a
reserved port so each restart keeps the address. An authority streams listings into it
(SubmitRecords streams, SubmitBatches streams and unary calls, mixed) from a client
thread while a watcher polls GetCheckpoint. Each round waits until the (re)started
gateway has acknowledged ACKS_PER_ROUND records, however long a busy machine takes, then
a random 0-1.5 s more, SIGKILLs the process and starts it again (the start-up check
replays the stored tree against the newest signed checkpoint, so a torn log would refuse
to start). At the end the log is read back and proven from the gateway's own answers:

- every acknowledged (record id, log index) is in the log at that index;
- indexes are 0..n-1 without a gap, record ids are unique, each the SHA-256 of its PAE
  bytes, and the entries hash to the signed root;
- every checkpoint seen before any crash is signed by the log key and consistent with
  the final one (the gateway's RFC 9162 proof, and the entries read, both agree);
- resubmitting every record left in doubt by a crash (sent, never answered) and every
  acknowledged one creates no duplicate: stored ones answer ``duplicate`` at their
  index, the others are appended once.

``ALLIANCE_LONG_TESTS=1`` adds a long variant (more kills, more records).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from gwtest import Alliance
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
)
from procs import GatewayProcess, RecordProperty, alliance_config, env_flag, register, reserve_port

from gateway.core.notes import NoteSigner, NoteVerifier
from gateway.ops.config import Config

LONG = env_flag("ALLIANCE_LONG_TESTS")


def _verifier(alliance: Alliance, config: Config) -> NoteVerifier:
    return NoteSigner(config.log_origin, alliance.gateway_member().signing_key).verifier()


# Acknowledgements a restarted gateway must give before it is killed again, and how long
# it may take (a bound on a broken restart, not a speed the test expects).
ACKS_PER_ROUND = 10
# Records per SubmitBatches message in the loader's batch rounds (a stream of 50: five).
BATCH_RECORDS = 10
ROUND_TIMEOUT_S = 120.0


def _wait_for_acks(book: AckBook, *, since: float, count: int) -> None:
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while book.acks_after(since) < count:
        assert time.monotonic() < deadline, (
            f"the load did not resume within {ROUND_TIMEOUT_S:g}s of a restart "
            f"({book.acks_after(since)} of {count} acknowledgements)"
        )
        time.sleep(0.02)


def crash_loop(tmp_path: Path, *, kills: int, seed: int, max_delay_s: float) -> dict[str, float]:
    rng = random.Random(seed)
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    authority = alliance.member("authority", "zj-amr", region="330000")
    config = alliance_config(alliance, f"sqlite:///{tmp_path / 'gateway.db'}", reserve_port())
    register(config, (authority,))
    verifier = _verifier(alliance, config)
    book = AckBook()
    notes_before_crash: list[str] = []
    started = time.monotonic()
    with GatewayProcess(config, tmp_path / "run", "gateway") as gw:
        gw.start()
        loader = Loader(
            authority,
            [gw.port],
            listings(authority, "CRASH"),
            book,
            name="loader",
            batch_records=BATCH_RECORDS,
        )
        watcher = CheckpointWatcher(authority, [gw.port], interval_s=0.05)
        loader.start()
        watcher.start()
        restarted = time.monotonic()
        try:
            for _ in range(kills):
                # Each round kills a gateway that took load since it (re)started: wait
                # for its acknowledgements, however slow the machine, then a random moment.
                _wait_for_acks(book, since=restarted, count=ACKS_PER_ROUND)
                time.sleep(rng.uniform(0.0, max_delay_s))
                gw.kill()
                notes_before_crash = watcher.seen(before=time.monotonic())
                gw.start()
                restarted = time.monotonic()
        finally:
            watcher.stop()
            loader.stop()
        assert not loader.refused, f"records refused: {loader.refused[:3]}"
        assert loader.batch_acks, "no batch was acknowledged: the batched path went untested"
        assert not book.conflicts, book.conflicts[:3]

        with open_channel(authority, gw.port) as channel:
            log = read_log(channel, verifier, config.log_origin)
            acked, in_doubt = book.snapshot()
            check_acknowledged(log, acked)
            checked = check_checkpoints(channel, log, watcher.seen(), verifier, config.log_origin)

            # Resubmit the records in doubt, then everything acknowledged: no duplicates.
            where = log.index_of()
            again = resubmit(channel, in_doubt)
            for env, r in zip(in_doubt, again, strict=True):
                if env.record_id in where:
                    assert r.duplicate and r.log_index == where[env.record_id]
                else:
                    assert not r.duplicate and r.log_index >= log.size
            fresh = {r.record_id: r.log_index for r in again if not r.duplicate}
            envs = [book.envelopes[rid] for rid in acked]
            repeated = resubmit(channel, envs)
            assert all(r.duplicate for r in repeated)
            assert all(r.log_index == acked[r.record_id] for r in repeated)

            final = read_log(channel, verifier, config.log_origin)
            assert final.size == log.size + len(fresh)
            check_acknowledged(final, acked | fresh)
            check_checkpoints(channel, final, [log.note], verifier, config.log_origin)
        assert gw.stop() == 0

    stats = {
        "kills": kills,
        "acknowledged": len(acked),
        "in_doubt": len(in_doubt),
        "acknowledged_in_batches": loader.batch_acks,
        "batch_streams_broken": loader.batch_breaks,
        "in_doubt_committed": len(in_doubt) - len(fresh),
        "log_size": final.size,
        "checkpoints_checked": checked,
        "checkpoints_before_last_crash": len(notes_before_crash),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"crash safety (seed {seed}): {stats}")
    assert in_doubt, "no kill hit a call in flight"
    return {k: float(v) for k, v in stats.items()}


def test_sigkill_under_load_loses_and_repeats_nothing(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    seed = int(os.environ.get("ALLIANCE_CRASH_SEED", random.randrange(1 << 30)))
    for k, v in crash_loop(tmp_path, kills=10, seed=seed, max_delay_s=1.5).items():
        record_property(k, v)


@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="set ALLIANCE_LONG_TESTS=1 for the long variant")
def test_sigkill_under_load_long(tmp_path: Path, record_property: RecordProperty) -> None:
    seed = int(os.environ.get("ALLIANCE_CRASH_SEED", random.randrange(1 << 30)))
    for k, v in crash_loop(tmp_path, kills=60, seed=seed, max_delay_s=3.0).items():
        record_property(k, v)
