"""``heat-bench engine``: correlation updates/s and account-frames/s of the heat engine,
against a naive pandas recomputation in the same run."""

from __future__ import annotations

from pathlib import Path

import typer

from benchmarks.cli.results import console, results_table, write_json
from heatmap.cli.errors import bad_option

ENGINE_TARGETS = {"corr_updates_200": 5000.0, "account_frames": 2000.0, "speedup": 100.0}


def engine(
    size: str = typer.Option("full", help="full (reference size) or small (CI smoke run)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
    seed: int = typer.Option(7, help="Random seed of the synthetic market and books."),
) -> None:
    """Correlation updates/s, account-frames/s and the naive pandas baseline."""
    from benchmarks import engine as engine_bench  # numpy/scipy: only when benchmarking

    if size not in engine_bench.SIZES:
        raise bad_option(f"size must be one of {sorted(engine_bench.SIZES)}", "--size")
    with console.status(f"Running the engine benchmark ({size})"):
        result = engine_bench.run(size, seed)
    spec = engine_bench.SIZES[size]
    table = results_table(f"heat engine ({size})")
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
    write_json(json_out, "engine", engine_bench.as_dict(result))
