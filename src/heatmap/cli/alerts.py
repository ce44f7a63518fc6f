"""``heat alerts``: what the alerts of recorded books did (``heat alerts report``)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import typer
from rich.console import Console

from heatmap.cli import checks
from heatmap.cli.compare import parse_leverages
from heatmap.cli.errors import CommandFailed, UsageFailed, bad_option
from heatmap.cli.replay import DEFAULTS, alert_thresholds, engine_params
from heatmap.engine.params import format_duration_s, parse_duration_s
from heatmap.schema import Alert, ms_to_datetime, rfc3339_to_ms
from heatmap.settings.database import READER_ROLE, DatabaseSettings
from heatmap.sources.csv_files import ReadStats, price_files

app = typer.Typer(help="What the alerts of recorded books did: noise and warning lead.",
                  no_args_is_help=True)
console = Console(stderr=True)


def read_alerts(path: Path) -> list[Alert]:
    """Alert transitions, one JSON object per line (``heat replay --alerts``)."""
    decoder = msgspec.json.Decoder(Alert)
    alerts = []
    number = 0
    try:
        with open(path, "rb") as lines:
            for line in lines:
                number += 1
                if line.strip():
                    alerts.append(decoder.decode(line))
    except msgspec.ValidationError as error:
        raise CommandFailed(f"{path}:{number}: not an alert: {error}") from error
    except msgspec.DecodeError as error:
        raise CommandFailed(f"{path}:{number}: not JSON: {error}") from error
    except OSError as error:
        raise CommandFailed(f"{path}: {error.strerror or error}") from error
    return alerts


def _moment(text: str | None, option: str, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        return ms_to_datetime(rfc3339_to_ms(text))
    except ValueError as error:
        raise bad_option(f"{text}: {error}: give an RFC 3339 time or a date", option) from error


def _stored(since: str | None, until: str | None) -> list[Alert]:
    """The stored alerts between ``--from`` and ``--to`` (all of them by default)."""
    import psycopg

    from heatmap.alert_report.stored import stored_alerts

    start = _moment(since, "--from", datetime(1970, 1, 1, tzinfo=UTC))
    end = _moment(until, "--to", datetime(9999, 1, 1, tzinfo=UTC))
    url = checks.database_url(DatabaseSettings(), READER_ROLE)
    try:
        found = stored_alerts(url, start, end)
    except psycopg.Error as error:
        raise CommandFailed(f"reading the stored alerts failed: "
                            f"{str(error).splitlines()[0]}") from error
    if not found:
        raise CommandFailed(f"no alerts stored from {start:%Y-%m-%d %H:%M} to "
                            f"{end:%Y-%m-%d %H:%M}: check --from and --to")
    return found


def _hours(text: str, option: str) -> float:
    try:
        return parse_duration_s(text) / 3600.0
    except ValueError as error:
        raise bad_option(str(error), option) from error


@app.command("report", context_settings={"allow_extra_args": True})
def report(
    ctx: typer.Context,
    alerts: Path | None = typer.Option(None, "--alerts", exists=True, dir_okay=False,
                                       help="Alert transitions (JSONL of `heat replay "
                                       "--alerts`)."),
    from_db: bool = typer.Option(False, "--from-db", help="Read the alerts stored in "
                                 "HEAT_DATABASE_URL (as heat_reader) instead of --alerts."),
    since: str | None = typer.Option(None, "--from", help="With --from-db: alerts at or "
                                     "after this time (RFC 3339 or a date, UTC)."),
    until: str | None = typer.Option(None, "--to", help="With --from-db: alerts before this "
                                     "time (RFC 3339 or a date, UTC)."),
    prices: list[Path] = typer.Option([], "--prices", help="With --positions: the price "
                                      "CSVs the replay ran on, for the liquidations and near "
                                      "misses of `heat compare`."),
    positions: Path | None = typer.Option(None, "--positions", exists=True, dir_okay=False,
                                          help="The replay's positions file."),
    accounts: Path | None = typer.Option(None, "--accounts", exists=True, dir_okay=False,
                                         help="The replay's accounts file."),
    leverage: str = typer.Option("5,10", "--leverage", help="Leverages the books are "
                                 "compared at (asis and/or L, comma separated)."),
    bar: str = typer.Option("5m", help="Bar interval of the compare run."),
    timeframes: str = typer.Option(",".join(DEFAULTS.timeframes),
                                   help="Correlation horizons of the compare run."),
    heat_timeframe: str | None = typer.Option(None, "--heat-timeframe",
                                              help="Timeframe of the at-leverage alerts "
                                              "(default: the longest)."),
    alert_config: Path | None = typer.Option(None, "--alert-config", dir_okay=False,
                                             help="The alert thresholds the replay used "
                                             "(TOML, see docs/alerts.md)."),
    refire_window: str = typer.Option("1h", "--refire-window",
                                      help="A firing this soon after a resolve is a re-fire."),
    lookback: str = typer.Option("1d", "--lookback",
                                 help="How far before an event its warning is looked for."),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON on stdout."),
) -> None:
    """Alert noise (firings per book-day, episodes, re-fires) and warning lead times.

    With --prices and --positions, also the lead of each book's critical alerts before
    the liquidations and near misses `heat compare` finds at --leverage.
    """
    from heatmap.alert_report.build import build_report
    from heatmap.alert_report.table import book_table, kind_table, lead_table, target_lines

    if (alerts is None) == (not from_db):
        raise UsageFailed("give --alerts FILE or --from-db (one of them)")
    if not from_db and (since or until):
        raise UsageFailed("--from and --to choose stored alerts: give them with --from-db")
    window_h = _hours(refire_window, "--refire-window")
    lookback_h = _hours(lookback, "--lookback")
    found = None
    labels: list[str] = []
    params = None
    files = price_files([*prices, *(Path(arg) for arg in ctx.args)])
    if positions is not None or files:
        if positions is None or not files:
            raise UsageFailed("give --prices and --positions together (the replay's files)")
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise UsageFailed(f"price files not found: {' '.join(missing)}: check the paths "
                              "after --prices")
        params = engine_params(bar, timeframes, DEFAULTS.min_periods,
                               format_duration_s(DEFAULTS.price_stale_after_s),
                               DEFAULTS.rho_min, DEFAULTS.size_threshold,
                               DEFAULTS.stress_kappa)
        if heat_timeframe is not None and heat_timeframe not in params.timeframes:
            raise bad_option(f"{heat_timeframe} is not one of --timeframes {timeframes}",
                             "--heat-timeframe")
    leverages = parse_leverages(leverage)
    recorded = read_alerts(alerts) if alerts is not None else _stored(since, until)
    if params is not None and positions is not None:
        from heatmap.alert_report.events import compare_events
        from heatmap.compare.run import CompareSettings, leverage_label
        from heatmap.sources.merge import merged_events

        limits = alert_thresholds(alert_config, params)
        settings = CompareSettings(params=params, leverages=leverages,
                                   heat_timeframe=heat_timeframe,
                                   thresholds=limits.defaults, alert_per_desk=limits.per_desk)
        with console.status("comparing the books at " + leverage):
            found = compare_events(merged_events(files, positions, accounts, ReadStats()),
                                   settings)
        labels = [leverage_label(x) for x in leverages]
        heat_timeframe = settings.timeframe
    result = build_report(recorded, found, refire_window_h=window_h, lookback_h=lookback_h,
                          leverages=labels, heat_timeframe=heat_timeframe if found else None)
    if as_json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(result), indent=2)
                                + b"\n")
        return
    output = Console(width=None if sys.stdout.isatty() else 150)
    output.print(kind_table(result))
    output.print(book_table(result))
    if found is not None:
        output.print(lead_table(result))
    for line in target_lines(result):
        output.print(line)
