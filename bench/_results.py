"""Figures, baselines and ratios: collected during a run, printed, written as JSON and
Markdown."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

Scalar: TypeAlias = float | int | str | bool | None
Better = Literal["higher", "lower"]

_OPS: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Measure:
    """One measured quantity (a baseline, or the raw side of a figure)."""

    name: str
    value: float
    unit: str
    better: Better = "higher"
    detail: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A goal on the figure's ``ratio`` or on its ``value``, e.g. ratio >= 0.5."""

    on: Literal["ratio", "value"]
    op: Literal[">=", ">", "<=", "<"]
    threshold: float

    def met(self, value: float, ratio: float) -> bool:
        x = ratio if self.on == "ratio" else value
        return math.isfinite(x) and _OPS[self.op](x, self.threshold)

    def __str__(self) -> str:
        return f"{self.on} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Figure:
    """A result beside the baseline it is compared with, measured in the same run.

    ``ratio`` is ``value / baseline`` (``ratio_of`` says so); for times, where lower is
    better, some figures use ``baseline / value`` so that a ratio above 1 is a speed-up.
    """

    name: str
    benchmark: str
    backend: str | None
    value: float
    unit: str
    baseline: Measure
    ratio: float
    ratio_of: str
    target: Target | None = None
    note: str = ""
    detail: Mapping[str, Scalar] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else math.inf


class Report:
    def __init__(self, meta: Mapping[str, Scalar]) -> None:
        self.meta: dict[str, Scalar] = dict(meta)
        self.baselines: dict[str, Measure] = {}
        self.figures: list[Figure] = []
        self.profiles: dict[str, list[str]] = {}

    def add_baseline(self, m: Measure) -> Measure:
        self.baselines[m.name] = m
        print(f"  baseline {m.name}: {_fmt(m.value)} {m.unit}", flush=True)
        return m

    def add(self, f: Figure) -> Figure:
        self.figures.append(f)
        verdict = {None: "", True: "  [target met]", False: "  [TARGET MISSED]"}[f.met]
        print(
            f"  {f.name}: {_fmt(f.value)} {f.unit}  vs {f.baseline.name} "
            f"{_fmt(f.baseline.value)} {f.baseline.unit}  ratio {f.ratio:.3g}{verdict}",
            flush=True,
        )
        return f

    def to_json(self) -> dict[str, object]:
        return {
            "meta": self.meta,
            "baselines": [asdict(b) for b in self.baselines.values()],
            "profiles": self.profiles,
            "figures": [
                {
                    **asdict(f),
                    "target": None if f.target is None else asdict(f.target),
                    "met": f.met,
                }
                for f in self.figures
            ],
        }

    def markdown(self) -> str:
        lines = [
            "# Benchmark results",
            "",
            ", ".join(f"{k}: {v}" for k, v in self.meta.items()),
            "",
            "| figure | value | baseline (same run) | ratio | target | met |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for f in self.figures:
            target = "" if f.target is None else str(f.target)
            met = {None: "", True: "yes", False: "**no**"}[f.met]
            lines.append(
                f"| {f.name} | {_fmt(f.value)} {f.unit} | {f.baseline.name}: "
                f"{_fmt(f.baseline.value)} {f.baseline.unit} | {f.ratio:.3g} ({f.ratio_of}) "
                f"| {target} | {met} |"
            )
        notes = [f"- **{f.name}**: {f.note}" for f in self.figures if f.note]
        if notes:
            lines += ["", "## Notes", "", *notes]
        lines += ["", "## Baselines", ""]
        for b in self.baselines.values():
            detail = ", ".join(f"{k}={v}" for k, v in b.detail.items())
            lines.append(
                f"- {b.name}: {_fmt(b.value)} {b.unit}" + (f" ({detail})" if detail else "")
            )
        for label, summary in self.profiles.items():
            lines += ["", f"## Profile: {label}", "", "```", *summary, "```"]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        md_path.write_text(self.markdown())
        return json_path, md_path

    def table(self) -> str:
        rows = [("figure", "value", "baseline", "ratio", "target", "met")]
        for f in self.figures:
            rows.append(
                (
                    f.name,
                    f"{_fmt(f.value)} {f.unit}",
                    f"{_fmt(f.baseline.value)} {f.baseline.unit}",
                    f"{f.ratio:.3g}",
                    "" if f.target is None else str(f.target),
                    {None: "", True: "yes", False: "NO"}[f.met],
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows
        )


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x == 0 or abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"
