"""What every benchmark command prints and writes: a measure / value / target table, and
the figures as JSON (beside the interpreter and machine they were measured on)."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def results_table(title: str) -> Table:
    """The measure / value / target table every benchmark prints."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    return table


def write_json(path: Path | None, benchmark: str, figures: dict[str, object]) -> None:
    """``figures`` as JSON at ``path`` (nothing when None), with the Python version and
    machine they were measured on."""
    if path is None:
        return
    payload = {"benchmark": benchmark, "python": platform.python_version(),
               "machine": platform.machine(), **figures}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"results -> {path}")
