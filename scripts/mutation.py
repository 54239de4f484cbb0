"""`make mutation`: mutation testing of the modules that decide trust (docs/TESTING.md).

Runs mutmut (configured in pyproject.toml, [tool.mutmut]) and prints, per module, how
many mutants were killed, survived, timed out or had no covering test, the wall time and
the time per mutant.

Without ``--tests`` it follows the plan in pyproject.toml (``[[tool.alliance-mutation.groups]]``):
each group of modules is mutated in a run of its own, in a child process, with only the
tests that reach those modules, and the summary covers every group. ``--modules`` keeps
the groups holding those modules (and only those modules); ``--tests`` makes one run
with the tests given instead, e.g.

    .venv/bin/python scripts/mutation.py --modules gateway/core/dsse.py \\
        --tests tests/unit/test_dsse.py

mutmut keeps its state in ``mutants/`` (git-ignored) and resumes from it; delete that
directory for a run from scratch. Survivors are listed by name: ``.venv/bin/mutmut show
NAME`` prints a mutant's diff, ``.venv/bin/mutmut browse`` opens the interactive view.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from mutmut import configuration
from mutmut.__main__ import cli

STATUS_BY_EXIT_CODE = {
    0: "survived",
    1: "killed",
    3: "killed",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "type check",
    None: "not checked",
}
COLUMNS = ("killed", "survived", "timeout", "no tests", "not checked", "other")


def _status(exit_code: int | None) -> str:
    status = STATUS_BY_EXIT_CODE.get(exit_code, "other")
    return status if status in COLUMNS else "other"


def summarize(
    modules: list[str], root: Path
) -> tuple[dict[str, Counter[str]], dict[str, list[str]]]:
    """Counts per module and surviving mutant names, read from mutmut's ``.meta`` files."""
    counts: dict[str, Counter[str]] = {}
    survivors: dict[str, list[str]] = {}
    for module in modules:
        meta = root / "mutants" / (module + ".meta")
        counter: Counter[str] = Counter()
        names: list[str] = []
        if meta.exists():
            exit_codes = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
            for name, code in sorted(exit_codes.items()):
                status = _status(code)
                counter[status] += 1
                if status in ("survived", "no tests"):
                    names.append(f"{status}: {name}")
        counts[module] = counter
        survivors[module] = names
    return counts, survivors


def reopen_survivors(modules: list[str], root: Path) -> int:
    """Mark the survivors and "no tests" mutants of ``modules`` as not yet checked, so
    that mutmut tests them again (and only them) with the tests as they are now."""
    reopened = 0
    for module in modules:
        meta = root / "mutants" / (module + ".meta")
        if not meta.exists():
            continue
        data = json.loads(meta.read_text("utf-8"))
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if _status(code) in ("survived", "no tests"):
                codes[name] = None
                reopened += 1
        meta.write_text(json.dumps(data, indent=4), "utf-8")
    return reopened


def report(modules: list[str], root: Path, elapsed_s: float | None) -> dict[str, object]:
    counts, survivors = summarize(modules, root)
    width = max(len(m) for m in modules)
    print()
    print(f"{'module':<{width}}  mutants " + " ".join(f"{c:>11}" for c in COLUMNS) + "   score")
    total: Counter[str] = Counter()
    rows: dict[str, object] = {}
    for module in modules:
        c = counts[module]
        n = sum(c.values())
        total.update(c)
        tested = n - c["not checked"]
        score = 100.0 * (c["killed"] + c["timeout"]) / tested if tested else 0.0
        print(
            f"{module:<{width}}  {n:>7} "
            + " ".join(f"{c[col]:>11}" for col in COLUMNS)
            + f"  {score:5.1f} %"
        )
        rows[module] = {"mutants": n, **{col: c[col] for col in COLUMNS}, "score": score}
    n = sum(total.values())
    print(f"{'total':<{width}}  {n:>7} " + " ".join(f"{total[col]:>11}" for col in COLUMNS))
    if elapsed_s is not None and n:
        print(f"wall time {elapsed_s:.0f} s, {elapsed_s / n:.2f} s a mutant (this run)")
    for module in modules:
        if survivors[module]:
            print(f"\n{module}:")
            for line in survivors[module]:
                print(f"  {line}")
    return {"modules": rows, "elapsed_s": elapsed_s, "survivors": survivors}


@dataclasses.dataclass(frozen=True)
class Group:
    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]


def plan(pyproject: Path, modules: list[str] | None = None) -> list[Group]:
    """The groups of the plan, narrowed to ``modules`` (in the plan's order)."""
    table = tomllib.loads(pyproject.read_text("utf-8"))["tool"]["alliance-mutation"]
    groups = []
    for entry in table["groups"]:
        kept = [m for m in entry["modules"] if modules is None or m in modules]
        if kept:
            groups.append(Group(entry["name"], tuple(kept), tuple(entry["tests"])))
    return groups


def run_plan(groups: list[Group], max_children: int, extra: list[str]) -> int:
    """Each group in a child process of its own (mutmut keeps its settings and its
    test map per process); stops at the first group whose run fails."""
    for group in groups:
        print(f"\n== {group.name}: {', '.join(group.modules)}", flush=True)
        started = time.monotonic()
        command = [sys.executable, __file__, "--max-children", str(max_children), *extra]
        command += ["--modules", *group.modules, "--tests", *group.tests]
        code = subprocess.call(command)  # noqa: S603 (this script, the plan's own paths)
        print(f"== {group.name}: {time.monotonic() - started:.0f} s wall", flush=True)
        if code != 0:
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modules",
        nargs="+",
        help="files to mutate (default: only_mutate in pyproject.toml [tool.mutmut])",
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        help="pytest arguments selecting the tests of one run (default: the plan's groups)",
    )
    parser.add_argument("--max-children", type=int, default=2, help="parallel workers")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument(
        "--report-only", action="store_true", help="print the summary of the last run"
    )
    parser.add_argument(
        "--retest-survivors",
        action="store_true",
        help="test the last run's survivors and 'no tests' mutants again (after new tests)",
    )
    args = parser.parse_args(argv)

    root = Path.cwd()
    missing = [m for m in args.modules or () if not Path(m).is_file()]
    if missing:
        parser.error(f"no such module: {', '.join(missing)}")
    if args.tests is None:
        groups = plan(root / "pyproject.toml", args.modules)
        planned = [m for g in groups for m in g.modules]
        unplanned = sorted(set(args.modules or ()) - set(planned))
        if unplanned:
            parser.error(f"not in the plan: {', '.join(unplanned)} (name its tests: --tests …)")
        started = time.monotonic()
        extra = ["--retest-survivors"] if args.retest_survivors else []
        code = 0 if args.report_only else run_plan(groups, args.max_children, extra)
        took = None if args.report_only else time.monotonic() - started
        summary = report(planned, root, took)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
        return code

    config = configuration.config()
    changes: dict[str, Any] = {}
    if args.modules:
        changes["only_mutate"] = list(args.modules)
    if args.tests:
        changes["pytest_add_cli_args_test_selection"] = list(args.tests)
    # mutmut reads its settings once, from pyproject.toml; the narrowed settings replace
    # them for this process and the workers it forks.
    configuration._config = dataclasses.replace(config, **changes)
    modules = list(configuration.config().only_mutate)

    elapsed: float | None = None
    if not args.report_only:
        # A run copies every file it does not mutate into mutants/ as it is, so the copy
        # of a module mutated by another group's (or an earlier, narrower) run is plain
        # source again, newer than its source: mutmut would take it as done and find no
        # test reaching it. Remove the copies so mutmut writes the mutants again (it
        # keeps the results of every function whose source did not change).
        for module in modules:
            (root / "mutants" / module).unlink(missing_ok=True)
        # mutmut records which test reaches which function once and later only adds new
        # tests; an earlier run with other tests (another group) left its map behind, so
        # record the map of this run's tests afresh.
        (root / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        if args.retest_survivors:
            reopened = reopen_survivors(modules, root)
            print(f"testing {reopened} survivors and untested mutants again", flush=True)
        started = time.monotonic()
        try:
            cli.main(
                ["run", "--max-children", str(args.max_children)],
                prog_name="mutmut",
                standalone_mode=False,
            )
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                return int(exit_.code) if isinstance(exit_.code, int) else 1
        elapsed = time.monotonic() - started

    summary = report(modules, root, elapsed)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
