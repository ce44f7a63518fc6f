"""Profiles of the pipeline benchmark: py-spy attached to a process (all its threads, the
engine's included), and the functions where the time goes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

TOP = 15


def py_spy_path() -> str | None:
    """The py-spy executable next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class PySpy:
    """``py-spy record`` of ``pid`` into ``output`` (collapsed stacks) until :meth:`stop`."""

    def __init__(self, pid: int, output: Path, rate_hz: int = 100) -> None:
        executable = py_spy_path()
        if executable is None:
            raise FileNotFoundError("py-spy is not installed: pip install py-spy "
                                    "(or run without --profile)")
        self.output = output
        self._log = open(output.with_suffix(".log"), "wb")  # noqa: SIM115 - open while it runs
        self.process = subprocess.Popen(
            [executable, "record", "--pid", str(pid), "--rate", str(rate_hz), "--format",
             "raw", "--nonblocking", "--output", str(output)],
            stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop sampling; py-spy writes its output on SIGINT."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _function(frame: str) -> tuple[str, str]:
    """``name (path/to/file.py:123)`` -> (``name (file.py)``, ``path/to/file.py``): one
    entry per function, and where it lives."""
    name, _, where = frame.rpartition(" (")
    if not name:
        return frame.strip(), ""
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path.rsplit('/', 1)[-1]})", path


def _harness(path: str) -> bool:
    """The command line and the benchmarks themselves: around every stack, never the cost."""
    return "heatmap/cli/" in path or "benchmarks/" in path


def top_functions_collapsed(lines: Iterable[str], top: int = TOP, inclusive: bool = False
                            ) -> list[tuple[str, float]]:
    """The functions with the largest share of samples in py-spy's collapsed stacks
    (``frame;frame;... count`` per line, the leaf last): by own time, or with
    ``inclusive`` the product's own functions (``heatmap/``, CLI and benchmarks aside) once
    per stack they appear in, their callees' time included. Shares are 0..1."""
    counts: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.strip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_function(frame) for frame in stack.split(";")]
        if inclusive:
            for function in {name for name, path in frames
                             if "heatmap/" in path and not _harness(path)}:
                counts[function] += count
        else:
            counts[frames[-1][0]] += count
    if not total:
        return []
    return [(function, count / total) for function, count in counts.most_common(top)]
