"""What an append writes at 10^4 and at 10^6 entries for several key layouts of the hot
tables (records, disclosures, listings, log_nodes), on raw sqlite3 with synthetic rows
shaped like the gateway's: an experiment for schema decisions, not one of `make bench`'s
figures (docs/PERFORMANCE.md, "Key layouts").

    python -m bench.key_layouts [--large N] [--only LAYOUT,...] [--dir DIR]

For each layout it fills a fresh database to 10^4 and to ``--large`` entries (20,000
rows a transaction, ``synchronous=OFF``), then appends ten 512-record batches with
``synchronous=FULL`` and automatic checkpoints off, checkpointing after each batch.
Per record it prints the commit's time, the checkpoint's, the process CPU and the WAL
bytes the commit wrote. The WAL bytes do not depend on the machine's load; the times do.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# The gateway's tables before migration 0012 (records, disclosures, listings, nodes).
AS_BEFORE_0012 = """
CREATE TABLE records (log_index BIGINT NOT NULL, record_id VARCHAR(64) NOT NULL,
 payload_type VARCHAR(128) NOT NULL, payload BLOB NOT NULL, signatures TEXT NOT NULL,
 signer VARCHAR(300) NOT NULL, origin VARCHAR(300) NOT NULL, received_at DATETIME NOT NULL,
 PRIMARY KEY (log_index), UNIQUE (record_id));
CREATE INDEX ix_records_type_index ON records (payload_type, log_index);
CREATE TABLE disclosures (record_id VARCHAR(64) NOT NULL, grp SMALLINT NOT NULL,
 salt BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (record_id, grp));
CREATE TABLE listings (listing_id VARCHAR(64) NOT NULL, subject_key VARCHAR(80),
 issuer VARCHAR(300) NOT NULL, list_kind SMALLINT NOT NULL, conduct SMALLINT NOT NULL,
 region_code VARCHAR(6) NOT NULL, listed_at DATETIME NOT NULL, deadline DATETIME NOT NULL,
 step SMALLINT NOT NULL, in_force BOOLEAN NOT NULL, log_index BIGINT NOT NULL,
 due_at DATETIME, identified_at DATETIME, dispute_since DATETIME, closed_at DATETIME,
 disclosed BLOB, PRIMARY KEY (listing_id));
CREATE INDEX ix_listings_subject_key ON listings (subject_key);
CREATE INDEX ix_listings_due ON listings (in_force, step, deadline);
CREATE INDEX ix_listings_due_at ON listings (in_force, step, due_at);
CREATE INDEX ix_listings_filter ON listings (list_kind, conduct, region_code);
CREATE INDEX ix_listings_deadline ON listings (deadline);
CREATE TABLE log_nodes (level SMALLINT NOT NULL, idx BIGINT NOT NULL, hash BLOB NOT NULL,
 PRIMARY KEY (level, idx));
"""
_ROWID = AS_BEFORE_0012.replace(
    "log_index BIGINT NOT NULL, record_id", "log_index INTEGER PRIMARY KEY, record_id"
).replace("PRIMARY KEY (log_index), UNIQUE", "UNIQUE")
_DISCLOSURES_BY_INDEX = (
    "CREATE TABLE disclosures (log_index BIGINT NOT NULL, grp SMALLINT NOT NULL,\n"
    " salt BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (log_index, grp)) WITHOUT ROWID;"
)
_OLD_DISCLOSURES = (
    "CREATE TABLE disclosures (record_id VARCHAR(64) NOT NULL, grp SMALLINT NOT NULL,\n"
    " salt BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (record_id, grp));"
)
_LISTINGS_BY_INDEX = {
    "log_index BIGINT NOT NULL,\n due_at": "log_index INTEGER PRIMARY KEY,\n due_at",
    "disclosed BLOB, PRIMARY KEY (listing_id));": "disclosed BLOB);",
}


@dataclass(frozen=True)
class Layout:
    ddl: str
    binary_ids: bool  # record ids, listing ids and subject keys as 32-byte BLOBs
    disclosures_by_index: bool  # (listings by index: the DDL alone)


def _replace_all(text: str, changes: dict[str, str]) -> str:
    for old, new in changes.items():
        if old not in text:
            raise ValueError(f"the schema has no {old!r}")
        text = text.replace(old, new)
    return text


_BY_INDEX = AS_BEFORE_0012.replace(_OLD_DISCLOSURES, _DISCLOSURES_BY_INDEX)
LAYOUTS: dict[str, Layout] = {
    "hex-ids": Layout(AS_BEFORE_0012, False, False),
    "binary-ids": Layout(AS_BEFORE_0012, True, False),
    "records-rowid": Layout(_ROWID, False, False),
    "disclosures-by-index": Layout(_BY_INDEX, False, True),  # migration 0012
    "disclosures-and-listings-by-index": Layout(
        _replace_all(_BY_INDEX, _LISTINGS_BY_INDEX), False, True
    ),
}
BATCH = 512
_SIGNATURES = '[{"keyid":"' + "a" * 64 + '","sig":"' + "b" * 88 + '"}]'
BATCHES = 10
FILL_CHUNK = 20_000

Rows = tuple[list[tuple[object, ...]], ...]


def rows(layout: Layout, start: int, count: int) -> Rows:
    """Records, disclosures (three a record), listings and about one node a record."""
    records: list[tuple[object, ...]] = []
    disclosures: list[tuple[object, ...]] = []
    listings: list[tuple[object, ...]] = []
    nodes: list[tuple[object, ...]] = []
    issuer = "spiffe://alliance.zj/authority/zj-amr"
    for i in range(start, start + count):
        digest = hashlib.sha256(b"r%d" % i).digest()
        key = hashlib.sha256(b"k%d" % i).digest()
        rid: object = digest if layout.binary_ids else digest.hex()
        records.append(
            (
                i,
                rid,
                "application/vnd.alliance.listing+protobuf",
                os.urandom(350),
                _SIGNATURES,
                issuer,
                "alliance.zj/log",
                "2026-12-01 00:00:00.000000",
            )
        )
        owner = i if layout.disclosures_by_index else rid
        disclosures.extend((owner, g, os.urandom(16), os.urandom(40)) for g in (1, 2, 3))
        deadline = f"2027-03-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000"
        listings.append(
            (
                rid,
                key if layout.binary_ids else key.hex(),
                issuer,
                1,
                2,
                "330100",
                "2026-12-01 00:00:00.000000",
                deadline,
                1,
                1,
                i,
                None,
                None,
                None,
                None,
                os.urandom(80),
            )
        )
        nodes.append((i % 2, i, os.urandom(32)))
    return records, disclosures, listings, nodes


def insert(conn: sqlite3.Connection, data: Rows) -> None:
    records, disclosures, listings, nodes = data
    conn.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?)", records)
    conn.executemany("INSERT INTO disclosures VALUES (?,?,?,?)", disclosures)
    conn.executemany(f"INSERT INTO listings VALUES ({','.join('?' * 16)})", listings)
    conn.executemany("INSERT OR REPLACE INTO log_nodes VALUES (?,?,?)", nodes)


@dataclass(frozen=True)
class Cost:
    commit_us: float
    checkpoint_us: float
    cpu_us: float
    wal_kb: float


def measure(layout: Layout, size: int, path: Path) -> Cost:
    """Fill a fresh database to ``size`` entries, then append and time the batches."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(layout.ddl)
        for start in range(0, size, FILL_CHUNK):
            conn.execute("BEGIN")
            insert(conn, rows(layout, start, min(FILL_CHUNK, size - start)))
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        os.sync()
        commit = checkpoint = cpu = 0.0
        wal = 0
        timed = 0
        for b in range(BATCHES):
            data = rows(layout, size + b * BATCH, BATCH)
            began, began_cpu = time.perf_counter(), time.process_time()
            conn.execute("BEGIN")
            insert(conn, data)
            conn.execute("COMMIT")
            committed = time.perf_counter()
            written = Path(f"{path}-wal").stat().st_size
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            ended, ended_cpu = time.perf_counter(), time.process_time()
            if b >= 2:  # the first two warm the cache
                commit += committed - began
                checkpoint += ended - committed
                cpu += ended_cpu - began_cpu
                wal += written
                timed += BATCH
    finally:
        conn.close()
    return Cost(
        commit / timed * 1e6, checkpoint / timed * 1e6, cpu / timed * 1e6, wal / timed / 1024
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.key_layouts")
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(LAYOUTS))
    parser.add_argument("--dir", type=Path, default=None, help="where the database goes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="key-layouts-") as tmp:
        path = Path(tmp) / "layout.db"
        for name in args.only.split(","):
            layout = LAYOUTS[name]
            small, large = measure(layout, 10_000, path), measure(layout, args.large, path)
            print(
                f"{name}: 10^4 commit {small.commit_us:.1f} µs, checkpoint "
                f"{small.checkpoint_us:.1f} µs, CPU {small.cpu_us:.1f} µs, WAL "
                f"{small.wal_kb:.1f} KB a record | {args.large:,}: commit "
                f"{large.commit_us:.1f} µs, checkpoint {large.checkpoint_us:.1f} µs, CPU "
                f"{large.cpu_us:.1f} µs, WAL {large.wal_kb:.1f} KB | growth: commit "
                f"{large.commit_us / small.commit_us:.2f}, WAL {large.wal_kb / small.wal_kb:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
