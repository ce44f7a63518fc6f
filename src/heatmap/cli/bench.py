"""``heat bench``: throughput benchmarks with same-run baselines, as a table and JSON."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from heatmap.bench import engine as engine_bench

app = typer.Typer(help="Benchmarks; each reports ratios against a baseline from the same run.",
                  no_args_is_help=True)
console = Console()

ENGINE_TARGETS = {"corr_updates_200": 5000.0, "account_frames": 2000.0, "speedup": 100.0}


@app.command("engine")
def engine(
    size: str = typer.Option("full", help="full (reference size) or small (CI smoke run)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
    seed: int = typer.Option(7, help="Random seed of the synthetic market and books."),
) -> None:
    """Correlation updates/s, account-frames/s and the naive pandas baseline."""
    if size not in engine_bench.SIZES:
        raise typer.BadParameter(f"size must be one of {sorted(engine_bench.SIZES)}")
    with console.status(f"Running the engine benchmark ({size})"):
        result = engine_bench.run(size, seed)
    spec = engine_bench.SIZES[size]
    table = Table(title=f"heat engine ({size})", show_lines=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for n, rate in result.correlation_updates_per_s.items():
        target = f">= {ENGINE_TARGETS['corr_updates_200']:,.0f}" if n == 200 else ""
        table.add_row(f"correlation updates/s, N={n}", f"{rate:,.0f}", target)
    table.add_row(f"account-frames/s ({spec.accounts} accounts x "
                  f"{spec.positions_per_account} positions, {spec.symbols} symbols, "
                  "3 timeframes, 1 process)", f"{result.account_frames_per_s:,.0f}",
                  f">= {ENGINE_TARGETS['account_frames']:,.0f}")
    table.add_row("naive frames/s (pandas ewm over full history per frame)",
                  f"{result.naive_frames_per_s:,.1f}", "")
    table.add_row("speed-up vs naive (same run)", f"{result.speedup_vs_naive:,.0f}x",
                  f">= {ENGINE_TARGETS['speedup']:,.0f}x")
    table.add_row("peak RSS", f"{result.peak_rss_mib:,.0f} MiB", "")
    console.print(table)
    if json_out is not None:
        payload = {"benchmark": "engine", "python": platform.python_version(),
                   "machine": platform.machine(), **engine_bench.as_dict(result)}
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"results -> {json_out}")
