"""Resident memory of a gateway process over the large log, after it served proofs
and checks, against the same gateway over an empty log."""

from __future__ import annotations

import time

import grpc

from gateway.ops.config import Config
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex

from . import _data
from ._context import UNLISTED_SUBJECTS, Context
from ._load import open_channel, unary_call
from ._procs import rss_bytes, server_process
from ._results import Figure, Measure, Target, ratio

NAME = "memory"
MB = 1024 * 1024
_PROOF = "/alliance.v1.AuditLog/GetInclusionProof"
_CHECKPOINT = "/alliance.v1.AuditLog/GetCheckpoint"
_CHECK = "/alliance.v1.Exchange/CheckSubjects"


def _workload(ctx: Context, port: int, listed: int) -> int:
    """Proofs for random leaves and checks of 1,000 subjects (half listed when the log
    holds listings); returns the tree size the proofs were made for."""
    channel = open_channel(port, ctx.alliance.monitor.credentials())
    try:
        size = _wait_for_checkpoint(channel)
        prove = unary_call(channel, _PROOF)
        for _ in range(ctx.sizes.memory_proofs):
            request = au.GetInclusionProofRequest(leaf_index=ctx.random.randrange(size))
            proof = au.InclusionProof.FromString(prove(request.SerializeToString(), timeout=30))
            assert proof.tree_size >= size
        check = unary_call(channel, _CHECK)
        for k in range(ctx.sizes.memory_checks):
            ids = ctx.random.sample(range(listed), min(500, listed))
            expected = len(ids)
            ids += range(
                UNLISTED_SUBJECTS + k * 1000, UNLISTED_SUBJECTS + k * 1000 + 1000 - len(ids)
            )
            reply = ex.CheckSubjectsResponse.FromString(
                check(_data.check_request(ids), timeout=120)
            )
            # The bulk-filled subjects are found: the fill wrote the gateway's index.
            found = sum(1 for r in reply.results if r.listed)
            if found != expected:
                raise RuntimeError(f"memory: {found} of {expected} listed subjects found")
    finally:
        channel.close()
    return size


def _wait_for_checkpoint(channel: grpc.Channel) -> int:
    get = unary_call(channel, _CHECKPOINT)
    for _ in range(100):
        try:
            note = au.SignedCheckpoint.FromString(get(b"", timeout=30)).note
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            time.sleep(0.2)
            continue
        return int(note.splitlines()[1])
    raise RuntimeError("memory: the gateway signed no checkpoint")


def _measure(ctx: Context, name: str, config: Config, listed: int) -> tuple[int, int, int]:
    with server_process(name, config) as server:
        size = _workload(ctx, server.port, listed)
        rss, peak = rss_bytes(server.pid)
    return rss, peak, size


def run(ctx: Context) -> None:
    for backend in ctx.backends:
        with backend.fresh("empty") as url:
            config = ctx.alliance.config(url)
            ctx.alliance.prepare(config)
            rss0, peak0, size0 = _measure(ctx, f"gateway-empty-{backend.name}", config, 0)
        baseline = ctx.report.add_baseline(
            Measure(
                f"memory.{backend.name}.rss_empty_log",
                rss0 / MB,
                "MB",
                "lower",
                detail={"peak_mb": round(peak0 / MB, 1), "tree_size": size0},
            )
        )
        log = ctx.large_log(backend)
        log.grow_to(ctx.sizes.memory_size)
        rss, peak, size = _measure(
            ctx, f"gateway-large-{backend.name}", log.config, log.filled_subjects
        )
        ctx.report.add(
            Figure(
                name=f"memory.{backend.name}.rss",
                benchmark=NAME,
                backend=backend.name,
                value=rss / MB,
                unit="MB",
                baseline=baseline,
                ratio=ratio(rss, rss0),
                ratio_of="RSS over the large log / RSS over an empty log",
                target=Target("value", "<=", 300.0),
                note=f"gateway process over a log of {size:,} records after "
                f"{ctx.sizes.memory_proofs} inclusion proofs and {ctx.sizes.memory_checks} "
                "checks of 1,000 subjects; VmRSS from /proc",
                detail={"peak_mb": round(peak / MB, 1), "tree_size": size},
            )
        )
