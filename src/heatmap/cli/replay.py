"""``heat replay``: frames (and alerts) from recorded price, position and account files."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.console import Console

from heatmap.cli.progress import file_progress
from heatmap.db.writer import HeatWriter
from heatmap.engine.params import EngineParams, format_duration_s, parse_duration_s
from heatmap.replay.run import DatabaseOutput
from heatmap.replay.run import replay as run_replay
from heatmap.replay.sources import ReplayInputError, price_files
from heatmap.settings.database import WRITER_ROLE, DatabaseSettings

console = Console(stderr=True)

# The options' defaults are the engine's: one place states them.
DEFAULTS = EngineParams()


def engine_params(bar: str, timeframes: str, min_periods: int, price_stale_after: str,
                  rho_min: float, size_threshold: float, stress_kappa: float) -> EngineParams:
    """EngineParams from the command line's duration strings."""
    return EngineParams(
        bar_interval_s=parse_duration_s(bar),
        timeframes={name.strip(): parse_duration_s(name) for name in timeframes.split(",")
                    if name.strip()},
        min_periods=min_periods, price_stale_after_s=float(parse_duration_s(price_stale_after)),
        rho_min=rho_min, size_threshold=size_threshold, stress_kappa=stress_kappa,
    )


def replay(
    ctx: typer.Context,
    prices: list[Path] = typer.Option(..., "--prices", help="Price CSVs (SYMBOL.csv or long "
                                      "timestamp,symbol,price) or directories of them; "
                                      "several paths may follow one --prices."),
    positions: Path = typer.Option(..., "--positions", exists=True, dir_okay=False,
                                   help="timestamp,account,symbol,qty[,strategy,conviction]"),
    accounts: Path | None = typer.Option(None, "--accounts", exists=True, dir_okay=False,
                                         help="timestamp,account,equity[,desk,"
                                         "maintenance_rate]"),
    bar: str = typer.Option(format_duration_s(DEFAULTS.bar_interval_s),
                            help="Bar interval, e.g. 1m or 5m."),
    timeframes: str = typer.Option(",".join(DEFAULTS.timeframes),
                                   help="Correlation horizons, comma separated."),
    out: Path | None = typer.Option(None, "--out", help="Frames, one JSON object per line."),
    to_db: bool = typer.Option(False, "--to-db", help="Also write inputs, frames, clusters, "
                               "correlations and alerts to HEAT_DATABASE_URL as heat_writer "
                               "(idempotent)."),
    alerts: Path | None = typer.Option(None, "--alerts", help="Alert transitions (JSONL)."),
    min_periods: int = typer.Option(DEFAULTS.min_periods,
                                    help="Returns before a symbol's correlations count."),
    price_stale_after: str = typer.Option(format_duration_s(DEFAULTS.price_stale_after_s),
                                          "--stale-after",
                                          help="Price age that makes a position stale."),
    rho_min: float = typer.Option(DEFAULTS.rho_min,
                                  help="Correlation that joins symbols in a cluster."),
    size_threshold: float = typer.Option(DEFAULTS.size_threshold,
                                         help="|share| from which a position is core."),
    stress_kappa: float = typer.Option(DEFAULTS.stress_kappa,
                                       help="Stress blend toward correlation 1."),
) -> None:
    """Replay price, position and account files through the heat engine into frames."""
    if out is None and not to_db:
        console.print("[red]give --out, --to-db or both[/red]")
        raise typer.Exit(2)
    extra = [Path(arg) for arg in ctx.args]
    files = price_files([*prices, *extra])
    missing = [str(path) for path in files if not path.is_file()]
    if missing or not files:
        console.print(f"[red]price files not found:[/red] {' '.join(missing) or '(none)'}")
        raise typer.Exit(2)
    try:
        params = engine_params(bar, timeframes, min_periods, price_stale_after, rho_min,
                               size_threshold, stress_kappa)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    started = time.monotonic()
    with ExitStack() as stack:
        frames_out = stack.enter_context(open(out, "wb")) if out else None
        database = None
        if to_db:
            settings = DatabaseSettings()
            try:
                writer = stack.enter_context(HeatWriter(settings.role_url(WRITER_ROLE),
                                                        settings))
            except ValueError as error:
                console.print(f"[red]{error}[/red]")
                raise typer.Exit(2) from error
            database = DatabaseOutput(writer.write)
        alerts_out = stack.enter_context(open(alerts, "wb")) if alerts else None
        progress, task = file_progress(
            [*files, positions, *([accounts] if accounts else [])], console)
        stack.enter_context(progress)
        try:
            result = run_replay(files, positions, accounts, params, frames_out, alerts_out,
                                on_progress=lambda s: progress.update(task,
                                                                      completed=s.bytes_read),
                                database=database)
        except ReplayInputError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from error
    elapsed_s = time.monotonic() - started
    triggers = ", ".join(f"{k} {v}" for k, v in sorted(result.frames_by_trigger.items()))
    console.print(f"{result.frames} frames ({triggers}), {result.alerts} alerts in "
                  f"{elapsed_s:.1f} s from {sum(result.stats.rows.values())} rows"
                  + (f" -> {out}" if out else ""))
    if result.rows_written:
        written = ", ".join(f"{table} {count}" for table, count in result.rows_written.items())
        console.print(f"database rows inserted: {written}")
    if result.stats.rejected:
        rejected = sum(result.stats.rejected.values())
        console.print(f"[yellow]{rejected} rows rejected:[/yellow]")
        for reason, count in result.stats.rejected.most_common(10):
            console.print(f"  {count} x {reason}")
