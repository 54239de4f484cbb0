"""The Merkle log without gRPC: append rate (Ledger.append, batches of 512) and
inclusion-proof time from the database at 10^4, 10^5 and 10^6 leaves, side by side
with pymerkle's SQLite-backed tree holding exactly the same leaves."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymerkle  # type: ignore[import-untyped]

from gateway.core import dsse, merkle
from gateway.service.ledger import Accepted
from gateway.storage import StoredRecord

from . import _data
from ._context import APPEND_SUBJECTS, Context, LargeLog
from ._load import percentile
from ._results import Figure, Measure, Target, ratio
from ._setup import Backend

NAME = "merkle"
BATCH = 512
# Batches not counted in the growth figure at each size (see Appends.steady_us_per_record).
WARM_BATCHES = 2


class PyMerkle:
    """pymerkle's SqliteTree, on the same durability settings as the gateway's SQLite."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree: Any = pymerkle.SqliteTree(str(path))
        self.tree.con.execute("PRAGMA journal_mode=WAL")
        self.tree.con.execute("PRAGMA synchronous=FULL")
        self.fill_seconds = 0.0

    @property
    def size(self) -> int:
        return int(self.tree.get_size())

    def fill(self, entries: Sequence[bytes]) -> None:
        began = time.perf_counter()
        self.tree.append_entries(entries)
        self.fill_seconds += time.perf_counter() - began

    def append(self, entries: Sequence[bytes]) -> float:
        began = time.perf_counter()
        self.tree.append_entries(entries)
        return time.perf_counter() - began

    def root(self, size: int) -> bytes:
        return bytes(self.tree.get_root(size))

    def prove(self, index: int, size: int) -> Any:
        return self.tree.prove_inclusion(index + 1, size)

    def close(self) -> None:
        self.tree.close()


@dataclass
class Appends:
    records: int = 0
    seconds: float = 0.0
    batches: list[tuple[int, float]] = field(default_factory=list)  # (records, seconds)

    def add(self, n: int, seconds: float) -> None:
        self.records += n
        self.seconds += seconds
        self.batches.append((n, seconds))

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def us_per_record(self) -> float:
        return 1e6 * self.seconds / self.records if self.records else float("nan")

    @property
    def steady_us_per_record(self) -> float:
        """The cost a record without the first ``WARM_BATCHES`` batches (when more
        were timed): right after a bulk fill they read cold pages and share the disk
        with the fill's WAL being copied back, which a running gateway never does."""
        timed = self.batches[WARM_BATCHES:] or self.batches
        return 1e6 * sum(s for _, s in timed) / sum(n for n, _ in timed)


def _batches(ctx: Context, count: int, first_subject: int) -> list[list[Accepted]]:
    """``count`` batches of new, signed listings, as the sequencer receives them."""
    authority = ctx.alliance.authority
    origin = ctx.alliance.config("sqlite://").log_origin
    out = []
    for b in range(count):
        start = first_subject + b * BATCH
        batch = []
        for i, env in enumerate(_data.signed_listings(authority, start, BATCH)):
            statement = _data.listing(authority, start + i)
            batch.append(Accepted(env, env.record_id, authority.member_id, statement, origin))
        out.append(batch)
    return out


def _log_layer_append(log: LargeLog, rng: merkle.CompactRange, batch: list[Accepted]) -> None:
    """Only the log: the records (with their disclosures) and the tree nodes, as
    Ledger.append writes them (no projections); ``rng`` is the edge of the stored tree
    and is advanced."""
    now = datetime.now(UTC)
    with log.store.unit_of_work() as uow:
        size = uow.lock_log()
        assert size == rng.size, "the log grew behind the benchmark's back"
        nodes: list[tuple[tuple[int, int], bytes]] = []
        records = []
        for item in batch:
            index = rng.size
            nodes.extend(rng.append(merkle.leaf_hash(item.envelope.pae())))
            records.append(
                StoredRecord(
                    log_index=index,
                    record_id=item.record_id,
                    payload_type=item.envelope.payload_type,
                    payload=item.envelope.payload,
                    signatures=tuple((s.keyid, s.sig) for s in item.envelope.signatures),
                    signer=item.signer,
                    origin=item.origin,
                    received_at=now,
                    disclosures=item.envelope.disclosures,
                )
            )
        uow.insert_records(records)
        uow.insert_nodes(nodes)
        uow.set_log_size(rng.size)


def _entries(batch: list[Accepted]) -> list[bytes]:
    return [dsse.pae(a.envelope.payload_type, a.envelope.payload) for a in batch]


@dataclass
class Proofs:
    times_s: list[float]
    checked: int

    @property
    def mean_ms(self) -> float:
        return 1000 * sum(self.times_s) / len(self.times_s) if self.times_s else float("nan")

    @property
    def p99_ms(self) -> float:
        return 1000 * percentile(self.times_s, 99)


def _our_proofs(
    log: LargeLog, leaves: list[int], size: int, root: bytes
) -> tuple[Proofs, list[list[bytes]]]:
    times: list[float] = []
    proofs: list[list[bytes]] = []
    for index in leaves:
        began = time.perf_counter()
        proof = merkle.inclusion_proof(index, size, log.store)
        times.append(time.perf_counter() - began)
        proofs.append(proof)
    checked = 0
    for index, proof in zip(leaves, proofs, strict=True):
        (record,) = log.store.records_range(index, index + 1, limit=1)
        leaf = merkle.leaf_hash(dsse.pae(record.payload_type, record.payload))
        merkle.verify_inclusion(index, size, leaf, proof, root)
        checked += 1
    return Proofs(times, checked), proofs


def _pymerkle_proofs(
    pm: PyMerkle,
    leaves: list[int],
    size: int,
    root: bytes,
    ours: list[list[bytes]],
    budget_s: float,
) -> Proofs:
    times: list[float] = []
    proofs = []
    stop_at = time.perf_counter() + budget_s
    for index in leaves:
        if time.perf_counter() >= stop_at:
            break
        began = time.perf_counter()
        proof = pm.prove(index, size)
        times.append(time.perf_counter() - began)
        proofs.append(proof)
    for k, proof in enumerate(proofs):
        if list(proof.path[1:]) != ours[k]:
            raise RuntimeError(
                f"pymerkle and the gateway disagree on the proof of leaf {leaves[k]}"
            )
        pymerkle.verify_inclusion(proof.path[0], root, proof)
    return Proofs(times, len(proofs))


def run(ctx: Context) -> None:
    for backend in ctx.backends:
        _run(ctx, backend)


def _run(ctx: Context, backend: Backend) -> None:
    log = ctx.large_log(backend)
    scratch = ctx.scratch / f"pymerkle-{backend.name}.db"
    pm = PyMerkle(scratch)
    try:
        _compare(ctx, backend, log, pm)
    finally:
        pm.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)


def _compare(ctx: Context, backend: Backend, log: LargeLog, pm: PyMerkle) -> None:
    b = backend.name
    sizes = ctx.sizes
    # The same leaves in the same order: first what the log already holds.
    log.ledger.refresh()
    held = log.store.records_range(0, log.size, limit=max(1, log.size))
    pm.fill([dsse.pae(r.payload_type, r.payload) for r in held])
    growth: dict[int, Appends] = {}
    next_subject = APPEND_SUBJECTS
    for target_size in sizes.merkle_sizes:
        log.grow_to(target_size, on_entries=pm.fill)
        size = log.size
        root = merkle.root_at(size, log.store)
        if pm.root(size) != root:
            raise RuntimeError(f"pymerkle and the gateway disagree on the root at size {size}")
        label = _label(target_size)
        fill = (
            f"log bulk-filled to {size:,} leaves by LogFiller ({log.fill_method}, 20k-leaf "
            f"transactions, {log.fill_seconds:.0f} s so far); pymerkle by its append_entries "
            f"({pm.fill_seconds:.0f} s so far)"
        )

        # Appends: the full Ledger path, then the log layer alone; pymerkle gets the same.
        batches = _batches(ctx, sizes.append_batches * 2, next_subject)
        next_subject += len(batches) * BATCH
        ledger, layer, theirs = Appends(), Appends(), Appends()
        for batch in batches[: sizes.append_batches]:
            began = time.perf_counter()
            results = log.ledger.append(batch)
            ledger.add(len(batch), time.perf_counter() - began)
            assert not any(r.duplicate for r in results)
            theirs.add(len(batch), pm.append(_entries(batch)))
        rng = merkle.CompactRange.from_reader(log.size, log.store)
        for batch in batches[sizes.append_batches :]:
            began = time.perf_counter()
            _log_layer_append(log, rng, batch)
            layer.add(len(batch), time.perf_counter() - began)
            theirs.add(len(batch), pm.append(_entries(batch)))
        log.ledger.refresh()
        growth[target_size] = ledger
        pm_append = ctx.report.add_baseline(
            Measure(
                f"pymerkle.{b}.append@{label}",
                theirs.rate,
                "records/s",
                detail={
                    "records": theirs.records,
                    "batch": BATCH,
                    "sqlite": "WAL, synchronous=FULL",
                },
            )
        )
        ctx.report.add(
            Figure(
                name=f"merkle.{b}.append@{label}",
                benchmark=NAME,
                backend=b,
                value=ledger.rate,
                unit="records/s",
                baseline=pm_append,
                ratio=ratio(ledger.rate, pm_append.value),
                ratio_of="Ledger.append / pymerkle append_entries",
                note="Ledger.append in batches of 512: records, tree nodes and listing "
                f"projections in one durable transaction. {fill}",
                detail={"records": ledger.records, "us_per_record": round(ledger.us_per_record, 1)},
            )
        )
        ctx.report.add(
            Figure(
                name=f"merkle.{b}.log_append@{label}",
                benchmark=NAME,
                backend=b,
                value=layer.rate,
                unit="records/s",
                baseline=pm_append,
                ratio=ratio(layer.rate, pm_append.value),
                ratio_of="log layer append / pymerkle append_entries",
                note="records + tree nodes only (UnitOfWork.insert_records/insert_nodes), "
                "no projections: what pymerkle's append does (entry + hash), plus the nodes",
                detail={"records": layer.records, "us_per_record": round(layer.us_per_record, 1)},
            )
        )

        # Proofs for the same random leaves from both trees, at the same size.
        size = log.size
        root = merkle.root_at(size, log.store)
        if pm.root(size) != root:
            raise RuntimeError(f"pymerkle and the gateway disagree on the root at size {size}")
        leaves = [ctx.random.randrange(size) for _ in range(sizes.proofs)]
        ours, our_paths = _our_proofs(log, leaves, size, root)
        theirs_p = _pymerkle_proofs(pm, leaves, size, root, our_paths, sizes.pymerkle_budget_s)
        detail = {
            "tree_size": size,
            "proofs": len(ours.times_s),
            "pymerkle_proofs": theirs_p.checked,
        }
        is_largest = target_size == max(sizes.merkle_sizes)
        for stat, value, their_value in (
            ("mean", ours.mean_ms, theirs_p.mean_ms),
            ("p99", ours.p99_ms, theirs_p.p99_ms),
        ):
            baseline = ctx.report.add_baseline(
                Measure(
                    f"pymerkle.{b}.proof_{stat}@{label}",
                    their_value,
                    "ms",
                    "lower",
                    detail={"proofs": theirs_p.checked, "cache": "default subroot cache"},
                )
            )
            ctx.report.add(
                Figure(
                    name=f"merkle.{b}.proof_{stat}@{label}",
                    benchmark=NAME,
                    backend=b,
                    value=value,
                    unit="ms",
                    baseline=baseline,
                    ratio=ratio(their_value, value),
                    ratio_of="pymerkle time / our time (speed-up)",
                    target=Target("value", "<", 1.0) if is_largest else None,
                    note="inclusion proofs for random leaves, hashes read through "
                    "SqlStore.get_nodes; every proof verified and equal to pymerkle's",
                    detail=detail,
                )
            )

    low, high = min(growth), max(growth)
    base = Measure(
        f"merkle.{b}.append_cost@{_label(low)}",
        growth[low].steady_us_per_record,
        "us/record",
        "lower",
    )
    ctx.report.add_baseline(base)
    value = growth[high].steady_us_per_record
    ctx.report.add(
        Figure(
            name=f"merkle.{b}.append_cost_growth",
            benchmark=NAME,
            backend=b,
            value=value,
            unit="us/record",
            baseline=base,
            ratio=ratio(value, base.value),
            ratio_of=f"cost at {_label(high)} / cost at {_label(low)}",
            target=Target("ratio", "<=", 1.5),
            note="Ledger.append cost per record as the log grows; at each size the "
            f"first {WARM_BATCHES} batches after the bulk fill are not counted",
        )
    )


def _label(size: int) -> str:
    exponent = len(str(size)) - 1
    return f"1e{exponent}" if size == 10**exponent else str(size)
