"""``heat compare``: books under leverage what-ifs and heat rules, over recorded history."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import msgspec
import typer
from rich.console import Console

from heatmap.cli.errors import UsageFailed, bad_option
from heatmap.cli.progress import file_progress
from heatmap.cli.replay import DEFAULTS, alert_thresholds, engine_params
from heatmap.engine.params import format_duration_s
from heatmap.schema import Account, Position, Price
from heatmap.sources.csv_files import ReadStats, price_files

console = Console(stderr=True)


def parse_leverages(text: str) -> tuple[float | None, ...]:
    """``asis,5,10`` as (None, 5.0, 10.0); None is the recorded equity."""
    leverages: list[float | None] = []
    for item in (part.strip() for part in text.split(",")):
        if item == "asis":
            leverages.append(None)
            continue
        try:
            value = float(item.removesuffix("x"))
        except ValueError:
            value = float("nan")
        if not value > 0.0 or value == float("inf"):
            raise bad_option(f"not a leverage: {item!r} (expected e.g. asis,5,10)",
                             "--leverage")
        leverages.append(value)
    return tuple(dict.fromkeys(leverages))


def compare(
    ctx: typer.Context,
    prices: list[Path] = typer.Option(..., "--prices", help="Price CSVs (SYMBOL.csv or long "
                                      "timestamp,symbol,price) or directories of them."),
    positions: Path = typer.Option(..., "--positions", exists=True, dir_okay=False,
                                   help="timestamp,account,symbol,qty[,strategy,conviction]"),
    accounts: Path | None = typer.Option(None, "--accounts", exists=True, dir_okay=False,
                                         help="timestamp,account,equity[,desk,"
                                         "maintenance_rate]"),
    bar: str = typer.Option("5m", help="Bar interval (equity is marked at every bar close)."),
    timeframes: str = typer.Option(",".join(DEFAULTS.timeframes),
                                   help="Correlation horizons, comma separated."),
    heat_timeframe: str | None = typer.Option(None, "--heat-timeframe",
                                              help="Timeframe the report and the rule read "
                                              "(default: the longest)."),
    leverage: str = typer.Option("asis", "--leverage",
                                 help="Comma separated: asis (recorded equity) and/or L "
                                 "(equity = gross notional at the first position / L)."),
    rule: list[str] = typer.Option([], "--rule", help="A heat rule each book also runs "
                                   "under, e.g. cap-cluster=0.25 (repeatable)."),
    out: Path | None = typer.Option(None, "--out", help="The report as JSON."),
    png: Path | None = typer.Option(None, "--png", help="Equity and heat picture (PNG)."),
    drawdowns: int = typer.Option(3, min=1, help="Worst drawdowns reported per scenario."),
    alert_config: Path | None = typer.Option(None, "--alert-config", dir_okay=False,
                                             help="Alert thresholds per desk (TOML, see "
                                             "docs/alerts.md): the critical concentration "
                                             "and near-miss lines of each book's desk."),
) -> None:
    """Compare books under leverage what-ifs and heat rules on recorded prices and positions."""
    from heatmap.compare.rule import parse_rule
    from heatmap.compare.run import CompareSettings
    from heatmap.compare.run import compare as run_compare
    from heatmap.compare.table import drawdown_table, scenario_table
    from heatmap.sources.merge import merged_events

    files = price_files([*prices, *(Path(arg) for arg in ctx.args)])
    missing = [str(path) for path in files if not path.is_file()]
    if missing or not files:
        raise UsageFailed(f"price files not found: {' '.join(missing) or '(none)'}: check "
                          "the paths after --prices")
    params = engine_params(bar, timeframes, DEFAULTS.min_periods,
                           format_duration_s(DEFAULTS.price_stale_after_s), DEFAULTS.rho_min,
                           DEFAULTS.size_threshold, DEFAULTS.stress_kappa)
    if heat_timeframe is not None and heat_timeframe not in params.timeframes:
        raise bad_option(f"{heat_timeframe} is not one of --timeframes {timeframes}",
                         "--heat-timeframe")
    try:
        rules = tuple(parse_rule(text) for text in rule)
    except ValueError as error:
        raise bad_option(str(error), "--rule") from error
    limits = alert_thresholds(alert_config, params)
    settings = CompareSettings(params=params, leverages=parse_leverages(leverage),
                               rules=rules, heat_timeframe=heat_timeframe, drawdowns=drawdowns,
                               thresholds=limits.defaults, alert_per_desk=limits.per_desk)
    stats = ReadStats()
    started = time.monotonic()
    with ExitStack() as stack:
        # Outputs are opened first: a path that cannot be written fails before the run.
        json_out = stack.enter_context(open(out, "wb")) if out else None
        png_out = stack.enter_context(open(png, "wb")) if png else None
        progress, task = file_progress(
            [*files, positions, *([accounts] if accounts else [])], console, "comparing")
        with progress:
            def events() -> Iterator[Price | Position | Account]:
                for count, message in enumerate(merged_events(files, positions, accounts,
                                                              stats)):
                    if count % 4096 == 0:
                        progress.update(task, completed=stats.bytes_read)
                    yield message

            outcome = run_compare(events(), settings)
        report = outcome.report
        if not report.scenarios:
            raise UsageFailed(f"{positions}: no account holds a priced position: check the "
                              "symbols against the price files")
        # Wide enough for every column when the tables go to a file or a pipe.
        output = Console(width=None if sys.stdout.isatty() else 150)
        output.print(scenario_table(report))
        output.print(drawdown_table(report))
        if json_out is not None:
            json_out.write(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
        if png_out is not None:
            from heatmap.compare.picture import render

            render(report, outcome.series, png_out)
    written = ", ".join(str(path) for path in (out, png) if path is not None)
    console.print(f"{len(report.scenarios)} scenarios over {sum(stats.rows.values())} rows in "
                  f"{time.monotonic() - started:.1f} s" + (f" -> {written}" if written else ""))
    if stats.rejected:
        console.print(f"[yellow]{sum(stats.rejected.values())} rows rejected:[/yellow]")
        for reason, count in stats.rejected.most_common(10):
            console.print(f"  {count} x {reason}")
