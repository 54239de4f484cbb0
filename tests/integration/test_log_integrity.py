"""A damaged log is never served as success.

Each test plants one kind of damage directly in the real database (SQLite file, or a
PostgreSQL schema) as a disk fault or an insider would — a hole in the records, a
missing or altered node, an altered or replaced record — and shows the answer: the
gateway refuses to start, a read ends with ``DATA_LOSS`` (with the advice to restore
from backup), the scrubber finds and records the exact range, and ``check-log``
reports it and exits non-zero.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from gwtest import USCC, Alliance, audit, exchange, listing, running_gateway, submit, zhejiang
from test_client import write_profile

from clients.cli import main as alliance_cli
from gateway.core import dsse
from gateway.core.logcheck import NODES, RECORDS, Damage
from gateway.errors import LogDamageError
from gateway.ops.app import Gateway
from gateway.ops.cli import main as gateway_cli
from gateway.ops.config import Config
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.replication import CheckpointBeacon, ReplicationFeed
from gateway.service.scrubber import Scrubber, ScrubSettings
from gateway.storage import SqlStore, make_engine
from gateway.storage.integrity import IntegrityStore

LISTINGS = 12
# A gateway that must start on a damaged log, scrub it at once, and not rehash at start.
FAST = {"startup_check_entries": 0, "scrub_rate_entries_per_s": 1e6}
QUIET = {"scrub_rate_entries_per_s": 0}  # no scrubber (its position stays at 0)


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return zhejiang(tmp_path / "zj")


def _wait(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _filled(alliance: Alliance, database_url: str) -> int:
    """A log of 3 member records and LISTINGS listings, every entry checkpointed."""
    config = alliance.config(database_url, **QUIET)
    amr = alliance.members["zj-amr"]
    with running_gateway(config, register=(amr, alliance.members["ndrc"])) as gw:
        with amr.channel(gw.port) as ch:
            for i in range(LISTINGS):
                submit(ch, amr.sign(listing(amr, uscc=USCC[i % 3], decision_ref=f"ZJ-{i}")))
        size = gw.core.ledger.size

        def covered() -> bool:
            cp = gw.core.store.latest_checkpoint()
            return cp is not None and cp.tree_size == size

        _wait(covered, "a checkpoint over the whole log")
    return size


def _sql(database_url: str, statement: str, **params: Any) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            return int(conn.execute(sa.text(statement), params).rowcount)
    finally:
        engine.dispose()


def _one(database_url: str, query: str, **params: Any) -> tuple[Any, ...]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(query), params).one())
    finally:
        engine.dispose()


def _set_node(database_url: str, level: int, idx: int, value: bytes) -> None:
    query = "UPDATE log_nodes SET hash = :h WHERE level = :l AND idx = :i"
    assert _sql(database_url, query, h=value, l=level, i=idx) == 1


def _alter_payload(database_url: str, index: int) -> None:
    (payload,) = _one(database_url, "SELECT payload FROM records WHERE log_index = :i", i=index)
    altered = bytes(payload)[:-1] + bytes([bytes(payload)[-1] ^ 0x01])
    query = "UPDATE records SET payload = :p WHERE log_index = :i"
    assert _sql(database_url, query, p=altered, i=index) == 1


def _replace_record(database_url: str, index: int) -> None:
    """Another record in its place, its id recomputed: only the tree can tell."""
    (payload_type,) = _one(
        database_url, "SELECT payload_type FROM records WHERE log_index = :i", i=index
    )
    payload = b"\x0a\x05other"
    record_id = hashlib.sha256(dsse.pae(payload_type, payload)).hexdigest()
    query = "UPDATE records SET payload = :p, record_id = :r WHERE log_index = :i"
    assert _sql(database_url, query, p=payload, r=record_id, i=index) == 1


def _code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    try:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


def _check_log(capsys: pytest.CaptureFixture[str], config: Config, *args: str) -> tuple[int, str]:
    config_file = config.cert_file.parent / "check.toml"
    config_file.write_text(
        "\n".join(
            f'{k} = "{v}"'
            for k, v in {
                "trust_domain": config.trust_domain,
                "gateway_name": config.gateway_name,
                "region_code": config.region_code,
                "ca_file": config.ca_file,
                "cert_file": config.cert_file,
                "key_file": config.key_file,
                "signing_key_file": config.signing_key_file,
                "database_url": config.database_url,
            }.items()
        )
        + "\n"
    )
    code = gateway_cli(["check-log", "--config", str(config_file), *args])
    out, _ = capsys.readouterr()
    return code, out


# --- holes ---------------------------------------------------------------------------


def test_a_hole_at_the_end_stops_the_gateway_and_check_log_names_it(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    size = _filled(alliance, database_url)
    deleted = _sql(database_url, "DELETE FROM records WHERE log_index >= :i", i=size - 5)
    assert deleted == 5
    config = alliance.config(database_url)
    with pytest.raises(LogDamageError, match=rf"entries \[{size - 5}, {size}\): missing"):
        Gateway(config)
    code, out = _check_log(capsys, config)
    assert code == 1
    assert f"DAMAGED entries [{size - 5}, {size}): missing from storage\n" in out
    assert out.count("DAMAGED") == 1


def test_a_hole_in_the_middle_and_records_past_the_size_stop_the_gateway(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    size = _filled(alliance, database_url)
    assert _sql(database_url, "DELETE FROM records WHERE log_index IN (4, 5, 9)") == 3
    assert _sql(database_url, "UPDATE log_state SET tree_size = :s", s=size - 2) == 1
    assert _sql(database_url, "DELETE FROM checkpoints WHERE tree_size > :s", s=size - 2) >= 1
    config = alliance.config(database_url)
    # Found by the count of records, not the rehash of the newest entries.
    with pytest.raises(LogDamageError) as refused:
        Gateway(alliance.config(database_url, startup_check_entries=2))
    message = str(refused.value)
    assert "entries [4, 6): missing" in message and "entry 9: missing" in message
    assert f"entries [{size - 2}, {size}): stored beyond the log's size ({size - 2})" in message
    code, out = _check_log(capsys, config)
    assert code == 1
    assert re.findall(r"^DAMAGED (.*)$", out, re.M)[:3] == [
        "entries [4, 6): missing from storage",
        "entry 9: missing from storage",
        f"entries [{size - 2}, {size}): stored beyond the log's size ({size - 2})",
    ]


def test_records_appended_while_the_check_reads_are_not_damage(
    alliance: Alliance, database_url: str
) -> None:
    """An operator command checks the log while the gateway appends: records that
    appear past the size it read, with the size moving past them, are appends, not
    records stored beyond the log (this refused `policy set` beside a busy gateway)."""
    size = _filled(alliance, database_url)
    # The last two entries are an append in flight: stored, but the size not yet moved.
    assert _sql(database_url, "UPDATE log_state SET tree_size = :s", s=size - 2) == 1

    class AppendCommitsAfterTheFirstRead(IntegrityStore):
        reads = 0

        def _size(self, conn: sa.Connection) -> int:
            read = super()._size(conn)
            self.reads += 1
            if self.reads == 1:  # the append commits right after the check read the size
                assert _sql(database_url, "UPDATE log_state SET tree_size = :s", s=size) == 1
            return read

    engine = make_engine(database_url)
    try:
        rows = AppendCommitsAfterTheFirstRead(SqlStore(engine))
        coverage = rows.coverage()
        assert (coverage.size, coverage.count, coverage.beyond) == (size, size, None)
        assert rows.reads >= 2
        # Past a size that does not move, the same records are damage.
        assert _sql(database_url, "UPDATE log_state SET tree_size = :s", s=size - 2) == 1
        still = IntegrityStore(SqlStore(engine)).coverage()
        assert (still.size, still.beyond) == (size - 2, (size - 2, size - 1))
    finally:
        engine.dispose()


def test_every_read_that_meets_a_hole_ends_with_data_loss(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    size = _filled(alliance, database_url)
    ndrc = alliance.members["ndrc"]
    with running_gateway(alliance.config(database_url, **QUIET)) as gw:
        (gone,) = _one(database_url, "SELECT record_id FROM records WHERE log_index = 7")
        # The disk loses rows while the gateway serves.
        assert _sql(database_url, "DELETE FROM records WHERE log_index IN (7, 8)") == 2
        with ndrc.channel(gw.port) as ch:
            entries = au.GetEntriesRequest(start=5, end=size)
            assert _code(lambda: audit(ch).GetEntries(entries, timeout=10))[0] == (
                grpc.StatusCode.DATA_LOSS
            )
            watch = ex.WatchRecordsRequest(from_index=0)
            code, details = _code(lambda: exchange(ch).WatchRecords(watch, timeout=10))
            assert code is grpc.StatusCode.DATA_LOSS
            assert "log entry 7 is missing from storage" in details
            assert "restores the database from backup" in details
            proof = au.GetInclusionProofRequest(leaf_index=8)
            assert _code(lambda: audit(ch).GetInclusionProof(proof, timeout=10))[0] == (
                grpc.StatusCode.DATA_LOSS
            )
            # A lost record cannot be told from one never submitted: NOT_FOUND by id.
            got = ex.GetRecordRequest(record_id=gone)
            assert _code(lambda: exchange(ch).GetRecord(got, timeout=10))[0] == (
                grpc.StatusCode.NOT_FOUND
            )
            # Reads that stay before the hole still answer.
            before = au.GetEntriesRequest(start=0, end=7)
            assert len(list(audit(ch).GetEntries(before, timeout=10))) == 7
        # Replicate streams from the same guarded read.
        feed = ReplicationFeed(gw.core.store, CheckpointBeacon())
        with pytest.raises(LogDamageError, match="log entry 7 is missing"):
            list(feed.stream(0, 0, lambda: True))
        # The monitor's CLI says what happened and what to do: not "is the gateway running?".
        profile = write_profile(alliance, ndrc, f"127.0.0.1:{gw.port}", gw.config.log_origin)
        exit_code = alliance_cli(["--profile", str(profile), "audit", "replay"])
        _, err = capsys.readouterr()
        assert exit_code == 1
        assert "lost or altered part of its log" in err
        assert "restore its database from backup" in err and "running?" not in err


def test_no_checkpoint_is_signed_over_a_lost_entry(alliance: Alliance, database_url: str) -> None:
    _filled(alliance, database_url)
    amr = alliance.members["zj-amr"]
    # The ticker signs at start only: the next entries wait for the test's own checkpoint.
    config = alliance.config(database_url, checkpoint_interval_s=3600, **QUIET)
    with running_gateway(config) as gw, amr.channel(gw.port) as ch:
        signed = gw.core.store.latest_checkpoint()
        assert signed is not None
        index = submit(ch, amr.sign(listing(amr, decision_ref="ZJ-new"))).log_index
        submit(ch, amr.sign(listing(amr, decision_ref="ZJ-newer")))
        assert _sql(database_url, "DELETE FROM records WHERE log_index = :i", i=index) == 1
        with pytest.raises(LogDamageError, match=rf"only 1 of the entries \[{index}, "):
            gw.core.ledger.checkpoint(gw.core.note_signer, gw.config.log_origin)
        assert gw.core.store.latest_checkpoint() == signed


# --- nodes ---------------------------------------------------------------------------


def test_a_missing_leaf_node_is_data_loss_with_the_advice_to_restore(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _filled(alliance, database_url)
    assert _sql(database_url, "DELETE FROM log_nodes WHERE level = 0 AND idx = 4") == 1
    with pytest.raises(LogDamageError, match=r"node \(0, 4\) over leaves \[4, 5\): stored node"):
        Gateway(alliance.config(database_url))
    ndrc = alliance.members["ndrc"]
    with running_gateway(alliance.config(database_url, startup_check_entries=0, **QUIET)) as gw:
        with ndrc.channel(gw.port) as ch:
            request = au.GetInclusionProofRequest(leaf_index=5)  # (0, 4) is its sibling
            code, details = _code(lambda: audit(ch).GetInclusionProof(request, timeout=10))
        assert code is grpc.StatusCode.DATA_LOSS
        assert "log nodes missing from storage: (0, 4)" in details
        assert "restores the database from backup" in details and "migrate" not in details
        profile = write_profile(alliance, ndrc, f"127.0.0.1:{gw.port}", gw.config.log_origin)
        (record_id,) = _one(database_url, "SELECT record_id FROM records WHERE log_index = 5")
        exit_code = alliance_cli(["--profile", str(profile), "audit", "prove", record_id])
        _, err = capsys.readouterr()
        assert exit_code == 1 and "restore its database from backup" in err
        assert "gateway running" not in err
    exit_code, out = _check_log(capsys, alliance.config(database_url))
    assert exit_code == 1
    assert "DAMAGED node (0, 4) over leaves [4, 5): stored node missing\n" in out


@pytest.mark.parametrize(
    ("level", "idx", "leaf", "report"),
    [
        (0, 2, 3, "node (0, 2) over leaves [2, 3): stored leaf hash does not match its record"),
        (1, 0, 2, "node (1, 0) over leaves [0, 2): stored node does not match its children"),
        (2, 1, 1, "node (2, 1) over leaves [4, 8): stored node does not match its children"),
    ],
    ids=["leaf", "inner", "inner-high"],
)
def test_an_altered_node_is_never_served_in_a_proof(
    alliance: Alliance,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    level: int,
    idx: int,
    leaf: int,
    report: str,
) -> None:
    size = _filled(alliance, database_url)
    _set_node(database_url, level, idx, b"\x42" * 32)
    with pytest.raises(LogDamageError, match=re.escape(report)):
        Gateway(alliance.config(database_url))  # the newest entries are the whole log
    ndrc = alliance.members["ndrc"]
    config = alliance.config(database_url, startup_check_entries=0, **QUIET)
    with running_gateway(config) as gw, ndrc.channel(gw.port) as ch:
        for request in (
            au.GetInclusionProofRequest(leaf_index=leaf),
            au.GetInclusionProofRequest(leaf_index=leaf, tree_size=size - 1),  # unsigned
        ):
            code, details = _code(lambda r=request: audit(ch).GetInclusionProof(r, timeout=10))  # type: ignore[misc]
            assert code is grpc.StatusCode.DATA_LOSS, request
            assert "does not verify against the log's signed checkpoints" in details
        consistency = au.GetConsistencyProofRequest(first_size=3, second_size=size)
        code, _ = _code(lambda: audit(ch).GetConsistencyProof(consistency, timeout=10))
        assert code is grpc.StatusCode.DATA_LOSS
        # A proof that does not touch the damaged node is still served.
        clean = au.GetInclusionProofRequest(leaf_index=size - 1)
        assert audit(ch).GetInclusionProof(clean, timeout=10).tree_size == size
    exit_code, out = _check_log(capsys, alliance.config(database_url))
    assert exit_code == 1
    assert re.findall(r"^DAMAGED (.*)$", out, re.M) == [report]


# --- records -------------------------------------------------------------------------


def test_an_altered_record_is_data_loss_on_every_read(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    size = _filled(alliance, database_url)
    _alter_payload(database_url, 6)
    with pytest.raises(LogDamageError, match="entry 6: record bytes do not hash"):
        Gateway(alliance.config(database_url))
    (record_id,) = _one(database_url, "SELECT record_id FROM records WHERE log_index = 6")
    ndrc = alliance.members["ndrc"]
    config = alliance.config(database_url, startup_check_entries=0, **QUIET)
    by_id = ex.GetRecordRequest(record_id=record_id)
    with running_gateway(config) as gw, ndrc.channel(gw.port) as ch:
        for call in (
            lambda: audit(ch).GetEntries(au.GetEntriesRequest(start=0, end=size), timeout=10),
            lambda: exchange(ch).WatchRecords(ex.WatchRecordsRequest(from_index=6), timeout=10),
            lambda: exchange(ch).GetRecord(by_id, timeout=10),
            lambda: audit(ch).GetInclusionProof(
                au.GetInclusionProofRequest(record_id=record_id), timeout=10
            ),
        ):
            code, details = _code(call)
            assert code is grpc.StatusCode.DATA_LOSS
            assert "is altered in storage" in details
    exit_code, out = _check_log(capsys, alliance.config(database_url))
    assert exit_code == 1
    assert re.findall(r"^DAMAGED (.*)$", out, re.M) == [
        "entry 6: record bytes do not hash to its record id"
    ]


# --- the scrubber --------------------------------------------------------------------

_PLANTS: dict[str, tuple[Callable[[str], object], Damage]] = {
    "leaf": (
        lambda url: _set_node(url, 0, 9, b"\x01" * 32),
        Damage(NODES, 9, 10, "stored leaf hash does not match its record", 0),
    ),
    "inner": (
        lambda url: _set_node(url, 2, 0, b"\x02" * 32),
        Damage(NODES, 0, 4, "stored node does not match its children", 2),
    ),
    "missing-node": (
        lambda url: _sql(url, "DELETE FROM log_nodes WHERE level = 1 AND idx = 3"),
        Damage(NODES, 6, 8, "stored node missing", 1),
    ),
    "altered-record": (
        lambda url: _alter_payload(url, 3),
        Damage(RECORDS, 3, 4, "record bytes do not hash to its record id"),
    ),
    "replaced-record": (
        lambda url: _replace_record(url, 10),
        Damage(RECORDS, 10, 11, "record does not match the leaf hash the tree was built from"),
    ),
}


@pytest.mark.parametrize("kind", list(_PLANTS))
def test_the_scrubber_finds_each_planted_damage_and_reads_refuse_it(
    alliance: Alliance, database_url: str, kind: str
) -> None:
    _filled(alliance, database_url)
    plant, expected = _PLANTS[kind]
    plant(database_url)
    with running_gateway(alliance.config(database_url, **FAST)) as gw:
        assert gw.scrubber is not None
        assert gw.scrubber.wait_for_rounds(1, timeout_s=15)
        assert list(gw.core.store.damage) == [expected]
        registry = gw.metrics.registry
        assert registry.get_sample_value("alliance_log_damaged_ranges", {"kind": expected.kind})
        assert registry.get_sample_value("alliance_scrub_findings_total", {"kind": expected.kind})
        assert (registry.get_sample_value("alliance_scrub_rounds_completed") or 0) >= 1
        with alliance.members["ndrc"].channel(gw.port) as ch:
            if expected.kind == RECORDS:
                entries = au.GetEntriesRequest(start=expected.start, end=expected.end)
                code, _ = _code(lambda: audit(ch).GetEntries(entries, timeout=10))
            else:
                # A proof that reads the damaged node: the sibling's, or the leaf's own.
                level, first = expected.level, expected.start >> expected.level
                leaf = (first ^ 1) << level
                request = au.GetInclusionProofRequest(leaf_index=leaf)
                code, _ = _code(lambda: audit(ch).GetInclusionProof(request, timeout=10))
            assert code is grpc.StatusCode.DATA_LOSS
    (rows,) = _one(database_url, "SELECT count(*) FROM log_damage WHERE found_by = 'scrubber'")
    assert rows == 1


def test_a_found_range_stays_data_loss_until_a_clean_check_log_clears_it(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    size = _filled(alliance, database_url)
    (payload, record_id) = _one(
        database_url, "SELECT payload, record_id FROM records WHERE log_index = 10"
    )
    _replace_record(database_url, 10)  # bytes hash to their (new) id: only the tree tells
    with running_gateway(alliance.config(database_url, **FAST)) as gw:
        assert gw.scrubber is not None and gw.scrubber.wait_for_rounds(1, timeout_s=15)
    quiet = alliance.config(database_url, startup_check_entries=0, **QUIET)
    ndrc = alliance.members["ndrc"]
    entries = au.GetEntriesRequest(start=0, end=size)
    with running_gateway(quiet) as gw, ndrc.channel(gw.port) as ch:  # recorded, not rescrubbed
        code, details = _code(lambda: audit(ch).GetEntries(entries, timeout=10))
        assert code is grpc.StatusCode.DATA_LOSS
        assert "entry 10: record does not match the leaf hash" in details

    # The operator restores the record (here: puts the old bytes back), checks, clears.
    query = "UPDATE records SET payload = :p, record_id = :r WHERE log_index = 10"
    assert _sql(database_url, query, p=payload, r=record_id) == 1
    exit_code, out = _check_log(capsys, alliance.config(database_url))
    assert exit_code == 0 and "log intact" in out
    assert "still records 1 damaged range(s)" in out
    exit_code, out = _check_log(capsys, alliance.config(database_url), "--record")
    assert exit_code == 0 and "recorded 0 damaged range(s), replacing 1" in out
    with running_gateway(quiet) as gw, ndrc.channel(gw.port) as ch:
        assert len(list(audit(ch).GetEntries(entries, timeout=10))) == size


def test_a_found_node_stays_data_loss_after_the_node_is_put_back_until_cleared(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    size = _filled(alliance, database_url)
    (good,) = _one(database_url, "SELECT hash FROM log_nodes WHERE level = 1 AND idx = 2")
    _set_node(database_url, 1, 2, b"\x09" * 32)
    with running_gateway(alliance.config(database_url, **FAST)) as gw:
        assert gw.scrubber is not None and gw.scrubber.wait_for_rounds(1, timeout_s=15)
    _set_node(database_url, 1, 2, bytes(good))  # the bytes are right again; the record stays
    quiet = alliance.config(database_url, startup_check_entries=0, **QUIET)
    proof = au.GetInclusionProofRequest(leaf_index=6, tree_size=size)  # (1, 2) is on its path
    ndrc = alliance.members["ndrc"]
    with running_gateway(quiet) as gw, ndrc.channel(gw.port) as ch:
        code, details = _code(lambda: audit(ch).GetInclusionProof(proof, timeout=10))
        assert code is grpc.StatusCode.DATA_LOSS
        assert "log node (1, 2) is damaged" in details
    exit_code, out = _check_log(capsys, alliance.config(database_url), "--record")
    assert exit_code == 0 and "replacing 1" in out
    with running_gateway(quiet) as gw, ndrc.channel(gw.port) as ch:
        assert audit(ch).GetInclusionProof(proof, timeout=10).tree_size == size


def test_the_scrubber_resumes_where_it_stopped(alliance: Alliance, database_url: str) -> None:
    size = _filled(alliance, database_url)
    engine = make_engine(database_url)
    try:
        rows = IntegrityStore(SqlStore(engine))
        first = Scrubber(rows, ScrubSettings(1.0, span=4))
        assert [first.step(), first.step()] == [4, 4]
        assert rows.scrub_position().next_index == 8
        again = Scrubber(IntegrityStore(SqlStore(engine)), ScrubSettings(1.0, span=4))
        assert again.step() == 4
        position = rows.scrub_position()
        assert (position.next_index, position.round_end) == (12, size)
        while again.step() and rows.scrub_position().rounds_completed == 0:
            pass
        done = rows.scrub_position()
        assert done.rounds_completed == 1 and done.next_index == done.round_end == size
        assert done.last_round_completed_at is not None
    finally:
        engine.dispose()


def test_complete_rounds_of_a_small_log_are_logged_once_an_hour_not_every_step(
    alliance: Alliance, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A log smaller than a span completes a round on every step (every 2.6 s at the
    default pace): the gateway's log must not be a line per step."""
    _filled(alliance, database_url)
    engine = make_engine(database_url)
    try:
        rows = IntegrityStore(SqlStore(engine))
        scrubber = Scrubber(rows, ScrubSettings(1.0, span=256))
        with caplog.at_level("DEBUG", logger="gateway.service.scrubber"):
            for _ in range(5):
                scrubber.step()
        assert rows.scrub_position().rounds_completed == 5
        rounds = [r for r in caplog.records if "round over" in r.getMessage()]
        assert [r.levelname for r in rounds] == ["INFO"] + ["DEBUG"] * 4
    finally:
        engine.dispose()


def test_the_start_up_check_is_bounded_to_the_newest_entries(
    alliance: Alliance, database_url: str
) -> None:
    size = _filled(alliance, database_url)
    _alter_payload(database_url, 1)
    with pytest.raises(LogDamageError):
        Gateway(alliance.config(database_url, startup_check_entries=size - 1))
    # Older than the newest 8 entries: it starts, and the read of that entry still fails.
    config = alliance.config(database_url, startup_check_entries=8, **QUIET)
    with running_gateway(config) as gw, alliance.members["ndrc"].channel(gw.port) as ch:
        request = au.GetEntriesRequest(start=0, end=2)
        assert _code(lambda: audit(ch).GetEntries(request, timeout=10))[0] == (
            grpc.StatusCode.DATA_LOSS
        )


def test_check_log_on_an_intact_log(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    size = _filled(alliance, database_url)
    code, out = _check_log(capsys, alliance.config(database_url))
    assert code == 0
    assert f": {size} entries, newest checkpoint {size}, {size} records below the size" in out
    assert f"the tree reproduces checkpoint {size}\n" in out
    assert "DAMAGED" not in out


def test_check_log_reports_a_rewritten_history(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    size = _filled(alliance, database_url)
    # Another signed root for the newest size: every record and node agree, the tree
    # does not reproduce the checkpoint.
    (note,) = _one(database_url, "SELECT note FROM checkpoints WHERE tree_size = :s", s=size)
    lines = str(note).split("\n")
    lines[2] = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    query = "UPDATE checkpoints SET note = :n WHERE tree_size = :s"
    assert _sql(database_url, query, n="\n".join(lines), s=size) == 1
    exit_code, out = _check_log(capsys, alliance.config(database_url))
    assert exit_code == 1
    assert f"DAMAGED the stored tree does not reproduce the signed checkpoint {size}" in out
