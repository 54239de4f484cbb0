"""Where a batched record's CPU goes, stage by stage, in one process without gRPC: an
experiment beside `make bench`'s figures (docs/PERFORMANCE.md, "Round three, session 9").

    python -m bench.stages [--records N] [--batch B] [--runs R]

A gateway core on a fresh SQLite file (the bench alliance, members registered as an
operator would) takes pre-signed listings in batches of ``B``, as ``SubmitBatches``
hands them on: each envelope parsed from its bytes, the batch checked
(``SubmitService.check_many``: Ed25519 and the statement's rules), admitted
(``admit_many``: authorization, hand-off) and appended by the sequencer thread. The
calling thread's CPU is read around each stage, the sequencer thread's CPU around the
whole run; the first quarter of the records warms up and is not counted. The baseline,
measured in the same run, is one-core Ed25519 verification of the same PAE; each
stage is printed in µs a record and the sum against one verification.

Run-to-run, the machine's speed moves every figure; compare two commits by alternating
runs, and each stage against the checks of the same run (whose code rarely changes).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway import codec
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import envelope_pb2 as env_pb
from gateway.service.submit import Checked

from . import _data
from ._setup import Alliance

_VERIFY_COUNT = 5_000


@dataclass
class Stages:
    parse: float = 0.0
    check: float = 0.0
    admit: float = 0.0
    append: float = 0.0  # the sequencer thread
    records: int = 0
    refused: list[str] = field(default_factory=list)

    def line(self, verify_us: float) -> str:
        per = {k: v / self.records * 1e6 for k, v in self.__dict__.items() if isinstance(v, float)}
        total = sum(per.values())
        stages = "  ".join(f"{k} {v:.0f}" for k, v in per.items())
        return (
            f"{stages}  = {total:.0f} µs a record of CPU ({total / verify_us:.2f}x one "
            f"verification of {verify_us:.0f} µs)"
        )


def _thread_cpu(name: str) -> int:
    """The CPU clock of the live thread called ``name``."""
    for t in threading.enumerate():
        if t.name == name and t.ident is not None:
            return time.pthread_getcpuclockid(t.ident)
    raise RuntimeError(f"no thread {name!r} is running")


def _verify_us(message: bytes) -> float:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    signature, public = key.sign(message), key.public_key()
    for _ in range(500):
        public.verify(signature, message)
    began = time.thread_time()
    for _ in range(_VERIFY_COUNT):
        public.verify(signature, message)
    return (time.thread_time() - began) / _VERIFY_COUNT * 1e6


def run_once(root: Path, records: int, batch: int) -> tuple[Stages, float]:
    alliance = Alliance(root)
    config = alliance.config(f"sqlite:///{root / 'gateway.db'}")
    alliance.prepare(config)
    gateway = Gateway(config)
    authority = alliance.authority
    envelopes = _data.signed_listings(authority, 0, records)
    raw = [codec.envelope_to_pb(e).SerializeToString() for e in envelopes]
    verify_us = _verify_us(envelopes[0].pae())
    gateway.sequencer.start()
    sequencer = _thread_cpu("sequencer")
    submit = gateway.submit
    starts = range(0, records, batch)
    warm = max(1, len(starts) // 4)  # batches not counted
    stages = Stages()
    appended_from = 0.0
    try:
        for k, start in enumerate(starts):
            if k == warm:
                appended_from = time.clock_gettime(sequencer)
            t0 = time.thread_time()
            chunk = [
                codec.envelope_from_pb(env_pb.Envelope.FromString(r))
                for r in raw[start : start + batch]
            ]
            t1 = time.thread_time()
            checked = submit.check_many(chunk, authority.member_id)
            t2 = time.thread_time()
            future = submit.admit_many(checked)
            t3 = time.thread_time()
            outcomes = future.result()
            for c, o in zip(checked, outcomes, strict=True):
                if not isinstance(c, Checked) or isinstance(o, BaseException):
                    stages.refused.append(str(o))
            if k >= warm:
                stages.parse += t1 - t0
                stages.check += t2 - t1
                stages.admit += t3 - t2
                stages.records += len(chunk)
        stages.append = time.clock_gettime(sequencer) - appended_from
    finally:
        gateway.sequencer.stop()
        gateway.core.close()
    return stages, verify_us


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stages", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=4_096)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-stages-") as scratch:
            stages, verify_us = run_once(Path(scratch), args.records, args.batch)
        if stages.refused:
            raise SystemExit(f"{len(stages.refused)} records refused: {stages.refused[0]}")
        print(
            f"run {run + 1}, {stages.records} records in batches of {args.batch}: "
            f"{stages.line(verify_us)}"
        )


if __name__ == "__main__":
    main()
