"""Optional sampling of a server process with py-spy (``--profile``): collapsed stacks
written beside the results, and the top functions summarised in the report."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType

_TOP = 15
_ROOT = str(Path(__file__).resolve().parents[1]) + "/"


class Profiler:
    def __init__(self, pid: int, output: Path, *, gil: bool = False, rate_hz: int = 100) -> None:
        self.pid = pid
        self.output = output
        self.gil = gil
        self.rate_hz = rate_hz
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            print("  (py-spy not installed: pip install py-spy to use --profile)", flush=True)
            return self
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate_hz),
                "--format",
                "raw",
                "--output",
                str(self.output),
                *(["--gil"] if self.gil else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)

    def summary(self) -> list[str]:
        """Top functions by inclusive and by self samples, as lines of text."""
        if not self.output.exists():
            return []
        inclusive: Counter[str] = Counter()
        own: Counter[str] = Counter()
        total = 0
        for line in self.output.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_short(f) for f in stack.split(";")]
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
        if not total:
            return []
        what = "holding the GIL" if self.gil else "of active threads"
        lines = [f"{total} samples {what} in pid {self.pid}; top by self time:"]
        lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(_TOP)]
        lines.append("top by inclusive time:")
        lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(_TOP * 2)]
        return lines


def _short(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py:12)``."""
    name, _, where = frame.partition(" (")
    for marker in ("site-packages/", _ROOT, "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where}" if where else name
