"""Where a record's and a checked subject's CPU goes, stage by stage, in one process
without gRPC: an experiment beside `make bench`'s figures (docs/PERFORMANCE.md, "Round
three, session 9").

    python -m bench.stages [--records N] [--batch B] [--runs R]

A gateway core on a fresh SQLite file (the bench alliance, members registered as an
operator would) takes pre-signed listings in batches of ``B``, as ``SubmitBatches``
hands them on: each envelope parsed from its bytes, the batch checked
(``SubmitService.check_many``: Ed25519 and the statement's rules), admitted
(``admit_many``: authorization, hand-off) and appended by the sequencer thread. The
calling thread's CPU is read around each stage, the sequencer thread's CPU around the
whole run; the first quarter of the batches warms up and is not counted. The baseline,
measured in the same run, is one-core Ed25519 verification of the same PAE; each
stage is printed in µs a record and the sum against one verification.

Then the monitor checks 1,000 subjects a call, half of them listed, as
``CheckSubjects`` does: the request parsed, its subjects validated, the lookup
(``QueryService.check``), the reply built and serialized; µs a subject per stage.

Run-to-run, the machine's speed moves every figure; compare two commits by alternating
runs, and each stage against the checks of the same run (whose code rarely changes).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import codec
from gateway.core.identifiers import MemberId
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import envelope_pb2 as env_pb
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.submit import Checked
from gateway.transport import messages

from . import _data
from ._context import UNLISTED_SUBJECTS
from ._setup import Alliance

_VERIFY_COUNT = 5_000
CHECK_BATCH = 1_000
_CHECK_CALLS = 20


@dataclass
class Stages:
    """CPU seconds per stage over ``records`` records."""

    parse: float = 0.0
    check: float = 0.0
    admit: float = 0.0
    append: float = 0.0  # the sequencer thread
    records: int = 0
    refused: list[str] = field(default_factory=list)

    def per_record_us(self) -> dict[str, float]:
        names = ("parse", "check", "admit", "append")
        return {n: getattr(self, n) / self.records * 1e6 for n in names}

    def line(self, verify_us: float) -> str:
        per = self.per_record_us()
        total = sum(per.values())
        stages = "  ".join(f"{k} {v:.0f}" for k, v in per.items())
        return (
            f"{stages}  = {total:.0f} µs a record of CPU ({total / verify_us:.2f}x one "
            f"verification of {verify_us:.0f} µs)"
        )


@dataclass
class CheckStages:
    """CPU seconds per stage of ``CheckSubjects`` over ``subjects`` subjects."""

    request: float = 0.0
    validate: float = 0.0  # each subject (codec.subject_from_pb)
    lookup: float = 0.0
    reply: float = 0.0
    serialize: float = 0.0
    subjects: int = 0

    def line(self) -> str:
        per = {
            f.name: getattr(self, f.name) / self.subjects * 1e6
            for f in fields(self)
            if f.name != "subjects"
        }
        stages = "  ".join(f"{k} {v:.1f}" for k, v in per.items())
        return f"{stages}  = {sum(per.values()):.1f} µs a subject of CPU"


def _thread_cpu(name: str) -> int:
    """The CPU clock of the live thread called ``name``."""
    for t in threading.enumerate():
        if t.name == name and t.ident is not None:
            return time.pthread_getcpuclockid(t.ident)
    raise RuntimeError(f"no thread {name!r} is running")


def _verify_us(message: bytes) -> float:
    key = Ed25519PrivateKey.generate()
    signature, public = key.sign(message), key.public_key()
    for _ in range(500):
        public.verify(signature, message)
    began = time.thread_time()
    for _ in range(_VERIFY_COUNT):
        public.verify(signature, message)
    return (time.thread_time() - began) / _VERIFY_COUNT * 1e6


def _ingest(gateway: Gateway, alliance: Alliance, records: int, batch: int) -> Stages:
    authority = alliance.authority
    raw = [
        codec.envelope_to_pb(e).SerializeToString()
        for e in _data.signed_listings(authority, 0, records)
    ]
    sequencer = _thread_cpu("sequencer")
    submit = gateway.submit
    starts = range(0, records, batch)
    warm = max(1, len(starts) // 4)  # batches not counted
    stages = Stages()
    appended_from = 0.0
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
    return stages


def _checks(gateway: Gateway, alliance: Alliance, listed: int) -> CheckStages:
    """``CheckSubjects`` calls of 1,000 subjects, half of them among the ``listed``
    first subjects, by the monitor; the first call warms up."""
    rng = random.Random(1)
    half = min(CHECK_BATCH // 2, listed)
    requests = []
    for k in range(_CHECK_CALLS + 1):
        ids = rng.sample(range(listed), half)
        unlisted = UNLISTED_SUBJECTS + k * CHECK_BATCH
        ids += range(unlisted, unlisted + CHECK_BATCH - half)
        rng.shuffle(ids)
        requests.append(_data.check_request(ids))
    viewer = MemberId.parse(alliance.monitor.member_id)
    stages = CheckStages()
    for k, raw in enumerate(requests):
        t0 = time.thread_time()
        request = ex.CheckSubjectsRequest.FromString(raw)
        t1 = time.thread_time()
        subjects = [codec.subject_from_pb(s) for s in request.subjects]
        t2 = time.thread_time()
        states = gateway.query.check(subjects, viewer)
        t3 = time.thread_time()
        request.DiscardUnknownFields()  # as the servicer does before echoing the subjects
        reply = messages.check_response(request.subjects, states)
        t4 = time.thread_time()
        reply.SerializeToString()
        t5 = time.thread_time()
        found = sum(1 for r in reply.results if r.listed)
        if found != half:
            raise RuntimeError(f"check: {found} subjects listed of the {half} expected")
        if k == 0:
            continue
        stages.request += t1 - t0
        stages.validate += t2 - t1
        stages.lookup += t3 - t2
        stages.reply += t4 - t3
        stages.serialize += t5 - t4
        stages.subjects += len(subjects)
    return stages


def run_once(root: Path, records: int, batch: int) -> tuple[Stages, CheckStages, float]:
    """Ingest ``records`` listings in batches of ``batch``, then check subjects; the
    stages of both and one Ed25519 verification's CPU in µs."""
    alliance = Alliance(root)
    config = alliance.config(f"sqlite:///{root / 'gateway.db'}")
    alliance.prepare(config)
    gateway = Gateway(config)
    verify_us = _verify_us(_data.signed_listings(alliance.authority, 0, 1)[0].pae())
    gateway.sequencer.start()
    try:
        ingest = _ingest(gateway, alliance, records, batch)
        checks = _checks(gateway, alliance, records)
    finally:
        gateway.sequencer.stop()
        gateway.core.close()
    return ingest, checks, verify_us


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
            ingest, checks, verify_us = run_once(Path(scratch), args.records, args.batch)
        if ingest.refused:
            raise SystemExit(f"{len(ingest.refused)} records refused: {ingest.refused[0]}")
        print(
            f"run {run + 1}, {ingest.records} records in batches of {args.batch}: "
            f"{ingest.line(verify_us)}"
        )
        print(f"run {run + 1}, {checks.subjects} subjects checked: {checks.line()}")


if __name__ == "__main__":
    main()
