"""A progress bar over the bytes of input files, shown only on a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TimeRemainingColumn


def file_progress(paths: list[Path], console: Console,
                  description: str = "replaying") -> tuple[Progress, TaskID]:
    """A (not yet started) progress bar whose total is the size of ``paths``, in bytes."""
    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        DownloadColumn(), TimeRemainingColumn(), console=console,
                        disable=not sys.stderr.isatty())
    task = progress.add_task(description, total=sum(path.stat().st_size for path in paths))
    return progress, task
