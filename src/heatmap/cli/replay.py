"""``heat replay``: frames (and alerts) from recorded price, position and account files."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
import typer
from rich.console import Console

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed, UsageFailed, bad_option
from heatmap.cli.progress import file_progress
from heatmap.db import drops, rollups
from heatmap.engine.alerts import AlertMonitor
from heatmap.engine.params import EngineParams, format_duration_s, parse_duration_s
from heatmap.process.alert_config import AlertConfig, AlertConfigError, load_alert_config
from heatmap.replay.run import DatabaseOutput
from heatmap.replay.run import replay as run_replay
from heatmap.schema import ms_to_datetime
from heatmap.settings.database import WRITER_ROLE, DatabaseSettings
from heatmap.sources.csv_files import price_files

console = Console(stderr=True)

# The options' defaults are the engine's: one place states them.
DEFAULTS = EngineParams()

def _duration_s(text: str, option: str) -> int:
    try:
        return parse_duration_s(text)
    except ValueError as error:
        raise bad_option(str(error), option) from error


def engine_params(bar: str, timeframes: str, min_periods: int, price_stale_after: str,
                  rho_min: float, size_threshold: float, stress_kappa: float) -> EngineParams:
    """EngineParams from the command line's duration strings (BadParameter names the option)."""
    bar_interval_s = _duration_s(bar, "--bar")
    horizons_s = {name.strip(): _duration_s(name, "--timeframes")
                  for name in timeframes.split(",") if name.strip()}
    price_stale_after_s = float(_duration_s(price_stale_after, "--stale-after"))
    try:
        return EngineParams(bar_interval_s=bar_interval_s, timeframes=horizons_s,
                            min_periods=min_periods, price_stale_after_s=price_stale_after_s,
                            rho_min=rho_min, size_threshold=size_threshold,
                            stress_kappa=stress_kappa)
    except ValueError as error:
        raise UsageFailed(f"{error}: check --bar and --timeframes") from error


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
    alert_config: Path | None = typer.Option(None, "--alert-config", dir_okay=False,
                                             help="Alert thresholds per desk (TOML, see "
                                             "docs/alerts.md); default: the built-in ones."),
) -> None:
    """Replay price, position and account files through the heat engine into frames."""
    # The engine (numpy/scipy) and the writer load only when replaying, not for every `heat`.
    from heatmap.db.writer import HeatWriter

    if out is None and not to_db:
        raise UsageFailed("give --out, --to-db or both")
    extra = [Path(arg) for arg in ctx.args]
    files = price_files([*prices, *extra])
    missing = [str(path) for path in files if not path.is_file()]
    if missing or not files:
        raise UsageFailed(f"price files not found: {' '.join(missing) or '(none)'}: check "
                          "the paths after --prices")
    params = engine_params(bar, timeframes, min_periods, price_stale_after, rho_min,
                           size_threshold, stress_kappa)
    limits = alert_thresholds(alert_config, params)
    started = time.monotonic()
    with ExitStack() as stack:
        database = None
        if to_db:
            settings = DatabaseSettings()
            url = checks.database_url(settings, WRITER_ROLE)
            writer = stack.enter_context(HeatWriter(url, settings))
            database = DatabaseOutput(stack.enter_context(
                drops.checked_writes(writer.write, url, _say_drops)))
        frames_out = stack.enter_context(open(out, "wb")) if out else None
        alerts_out = stack.enter_context(open(alerts, "wb")) if alerts else None
        progress, task = file_progress(
            [*files, positions, *([accounts] if accounts else [])], console)
        stack.enter_context(progress)
        result = run_replay(files, positions, accounts, params, frames_out, alerts_out,
                            AlertMonitor(limits.defaults, dict(limits.per_desk)),
                            on_progress=lambda s: progress.update(task, completed=s.bytes_read),
                            database=database)
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
    if database is not None and database.frames_range_ms is not None:
        refresh_rollups(settings, database.frames_range_ms)


def _say_drops(found: list[drops.Drop]) -> None:
    console.print("[yellow]warning:[/yellow] retention drops some of what this replay writes "
                  f"early: {'; '.join(drop.describe() for drop in found)}; see `heat db "
                  "status` (`heat db migrate` replaces age-based policies)", soft_wrap=True)


def alert_thresholds(path: Path | None, params: EngineParams) -> AlertConfig:
    """The alert configuration at ``path`` (the built-in thresholds without one); an
    invalid file is a usage error, one line per problem."""
    if path is None:
        return AlertConfig()
    try:
        return load_alert_config(path, params.timeframes)
    except AlertConfigError as error:
        raise UsageFailed(str(error)) from error


def refresh_rollups(settings: DatabaseSettings, frames_range_ms: tuple[int, int]) -> None:
    """Bring TimescaleDB's rollups up to date over the frames a replay wrote (epoch ms)."""
    first, last = (ms_to_datetime(ts_ms) for ts_ms in frames_range_ms)
    manual = f"heat db refresh-rollups --from {first:%Y-%m-%d} --to {last:%Y-%m-%d}"
    if not settings.has_admin_url():
        console.print(f"[yellow]rollups not refreshed:[/yellow] on TimescaleDB run {manual} "
                      "with HEAT_DATABASE_URL set to the database owner")
        return
    try:
        windows = rollups.refresh_rollups(settings, first, last)
    except (rollups.RollupRefreshError, psycopg.Error) as error:
        raise CommandFailed(f"rollups not refreshed: {str(error).splitlines()[0]}; "
                            f"then run {manual}") from error
    if windows:
        console.print(f"rollups refreshed from {min(w.start for w in windows):%Y-%m-%d} to "
                      f"{max(w.end for w in windows):%Y-%m-%d}")
