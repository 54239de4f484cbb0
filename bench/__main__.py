"""``python -m bench``: run the benchmarks, print each figure beside its baseline
measured in the same run, and write ``bench/results/latest.{json,md}``."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc

from . import check, echo, federation, ingest, memory, merkle_bench, mixed, public, scrub, unary
from ._context import FULL, QUICK, Context
from ._results import Report
from ._setup import POSTGRES_URL, Alliance, Backend

BENCHMARKS: dict[str, Callable[[Context], None]] = {
    "echo": echo.run,
    "ingest": ingest.run,
    "batch-size": ingest.sweep,
    "mixed": mixed.run_mixed,
    "ingest-large": mixed.run_large,
    "unary": unary.run,
    "check": check.run,
    "federation": federation.run,
    "merkle": merkle_bench.run,
    "memory": memory.run,
    "scrub": scrub.run,
    "public": public.run,
}
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (under 2 minutes)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these benchmarks (repeat or comma-separate): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="database to run on instead of temporary SQLite files (a SQLite URL names the "
        "file whose siblings are used; a PostgreSQL URL gets a fresh schema per benchmark)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help=f"also run the database benchmarks on {POSTGRES_URL} (fresh schemas)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json/md go")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="active",
        choices=("active", "gil"),
        help="sample the gateway process with py-spy during each gateway benchmark: every "
        "active thread (default), or only the thread holding the GIL (--profile=gil)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    args.only = names or list(BENCHMARKS)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    began = time.perf_counter()
    report = Report(
        {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "benchmarks": ",".join(args.only),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "cpus": os.cpu_count() or 0,
            "machine": platform.machine(),
        }
    )
    with tempfile.TemporaryDirectory(prefix="alliance-bench-") as tmp:
        scratch = Path(tmp)
        backends = [Backend("sqlite", args.database_url or "sqlite://", scratch)]
        if args.database_url and not args.database_url.startswith("sqlite"):
            backends[0].name = "postgresql"
        if args.postgres:
            backends.append(Backend("postgresql", POSTGRES_URL, scratch))
        report.meta["backends"] = ",".join(b.name for b in backends)
        print(f"alliance bench ({report.meta['mode']}): {', '.join(args.only)}", flush=True)
        ctx = Context(
            report,
            QUICK if args.quick else FULL,
            Alliance(scratch / "alliance"),
            backends,
            scratch=scratch,
            profile_dir=args.out if args.profile else None,
            profile_gil=args.profile == "gil",
        )
        try:
            for name in args.only:
                print(f"\n== {name}", flush=True)
                step = time.perf_counter()
                BENCHMARKS[name](ctx)
                print(f"   ({time.perf_counter() - step:.1f} s)", flush=True)
        finally:
            ctx.close()
    report.meta["duration_s"] = round(time.perf_counter() - began, 1)
    json_path, md_path = report.write(args.out)
    print(f"\n{report.table()}\n", flush=True)
    print(f"wrote {json_path} and {md_path} in {report.meta['duration_s']} s", flush=True)
    missed = [f.name for f in report.figures if f.met is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
