"""``heat alerts``: what the alerts of recorded books did (``heat alerts report``), and the
thresholds per desk that would have warned with the fewest pages (``heat alerts calibrate``)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import typer
from rich.console import Console

from heatmap.cli import checks
from heatmap.cli.compare import parse_leverages
from heatmap.cli.errors import CommandFailed, UsageFailed, bad_option
from heatmap.cli.replay import DEFAULTS, alert_thresholds, engine_params
from heatmap.engine.params import EngineParams, format_duration_s, parse_duration_s
from heatmap.process.alert_config import AlertConfig
from heatmap.schema import Alert, ms_to_datetime, rfc3339_to_ms
from heatmap.settings.database import READER_ROLE, DatabaseSettings
from heatmap.sources.csv_files import ReadStats, price_files

if TYPE_CHECKING:
    from heatmap.alert_report.events import CompareEvents
    from heatmap.compare.run import CompareSettings

app = typer.Typer(help="What the alerts of recorded books did: noise and warning lead, "
                  "and the thresholds per desk that page least and still warn.",
                  no_args_is_help=True)
console = Console(stderr=True)


# The inputs of a compare run, as `heat alerts report` and `heat alerts calibrate` take them.
PRICES = typer.Option([], "--prices", help="With --positions: the price CSVs the replay ran "
                      "on, for the liquidations and near misses of `heat compare`.")
POSITIONS = typer.Option(None, "--positions", exists=True, dir_okay=False,
                         help="The replay's positions file.")
ACCOUNTS = typer.Option(None, "--accounts", exists=True, dir_okay=False,
                        help="The replay's accounts file.")
LEVERAGE = typer.Option("5,10", "--leverage", help="Leverages the books are compared at "
                        "(asis and/or L, comma separated).")
BAR = typer.Option("5m", help="Bar interval of the compare run.")
TIMEFRAMES = typer.Option(",".join(DEFAULTS.timeframes),
                          help="Correlation horizons of the compare run.")
HEAT_TIMEFRAME = typer.Option(None, "--heat-timeframe", help="Timeframe of the at-leverage "
                              "alerts (default: the longest).")
ALERT_CONFIG = typer.Option(None, "--alert-config", dir_okay=False,
                            help="The alert thresholds in effect (TOML, see docs/alerts.md).")
LOOKBACK = typer.Option("1d", "--lookback",
                        help="How far before an event its warning is looked for.")


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


def _compare_params(files: list[Path], positions: Path | None, bar: str, timeframes: str,
                    heat_timeframe: str | None) -> EngineParams:
    """The engine parameters of the compare run, once its input files are checked."""
    if positions is None or not files:
        raise UsageFailed("give --prices and --positions together (the replay's files)")
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise UsageFailed(f"price files not found: {' '.join(missing)}: check the paths "
                          "after --prices")
    params = engine_params(bar, timeframes, DEFAULTS.min_periods,
                           format_duration_s(DEFAULTS.price_stale_after_s),
                           DEFAULTS.rho_min, DEFAULTS.size_threshold, DEFAULTS.stress_kappa)
    if heat_timeframe is not None and heat_timeframe not in params.timeframes:
        raise bad_option(f"{heat_timeframe} is not one of --timeframes {timeframes}",
                         "--heat-timeframe")
    return params


def _compare_events(files: list[Path], positions: Path, accounts: Path | None,
                    params: EngineParams, leverage: str, heat_timeframe: str | None,
                    limits: AlertConfig, *, keep_frames: bool = False
                    ) -> tuple[CompareEvents, CompareSettings]:
    """One run of `heat compare`'s scenarios at ``leverage``: its events (and frames)."""
    from heatmap.alert_report.events import compare_events
    from heatmap.compare.run import CompareSettings
    from heatmap.sources.merge import merged_events

    settings = CompareSettings(params=params, leverages=parse_leverages(leverage),
                               heat_timeframe=heat_timeframe,
                               thresholds=limits.defaults, alert_per_desk=limits.per_desk)
    with console.status("comparing the books at " + leverage):
        found = compare_events(merged_events(files, positions, accounts, ReadStats()),
                               settings, keep_frames=keep_frames)
    return found, settings


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
    prices: list[Path] = PRICES,
    positions: Path | None = POSITIONS,
    accounts: Path | None = ACCOUNTS,
    leverage: str = LEVERAGE,
    bar: str = BAR,
    timeframes: str = TIMEFRAMES,
    heat_timeframe: str | None = HEAT_TIMEFRAME,
    alert_config: Path | None = ALERT_CONFIG,
    refire_window: str = typer.Option("1h", "--refire-window",
                                      help="A firing this soon after a resolve is a re-fire."),
    lookback: str = LOOKBACK,
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
        params = _compare_params(files, positions, bar, timeframes, heat_timeframe)
    leverages = parse_leverages(leverage)
    recorded = read_alerts(alerts) if alerts is not None else _stored(since, until)
    if params is not None and positions is not None:
        from heatmap.compare.run import leverage_label

        limits = alert_thresholds(alert_config, params)
        found, settings = _compare_events(files, positions, accounts, params, leverage,
                                          heat_timeframe, limits)
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


@app.command("calibrate", context_settings={"allow_extra_args": True})
def calibrate(
    ctx: typer.Context,
    prices: list[Path] = PRICES,
    positions: Path | None = POSITIONS,
    accounts: Path | None = ACCOUNTS,
    leverage: str = LEVERAGE,
    bar: str = BAR,
    timeframes: str = TIMEFRAMES,
    heat_timeframe: str | None = HEAT_TIMEFRAME,
    alert_config: Path | None = ALERT_CONFIG,
    lookback: str = LOOKBACK,
    min_lead: str = typer.Option("0s", "--min-lead", help="A warning counts when its "
                                 "critical alert started at least this long before the event."),
    desk: list[str] = typer.Option([], "--desk", help="Only this desk (repeatable; default: "
                                   "every desk of the input)."),
    write: Path | None = typer.Option(None, "--write", dir_okay=False,
                                      help="Write the suggested thresholds as an alert "
                                      "configuration (TOML) to this file."),
    as_json: bool = typer.Option(False, "--json", help="The calibration as JSON on stdout."),
) -> None:
    """Per desk, the quietest alert thresholds that warn before every loss of its books.

    The thresholds with the fewest firings that still warn before every liquidation and
    near miss `heat compare` finds for the desk's books at --leverage. A grid of candidate
    thresholds (docs/alerts.md) is judged on the frames of one compare run: firings per
    book-day and the lead of the first critical alert before each event.
    """
    from heatmap.alert_report.calibrate import calibrate as run_calibration
    from heatmap.alert_report.calibrate import config_toml, suggested_thresholds
    from heatmap.alert_report.calibrate_table import candidate_table, lead_table, suggestion_line
    from heatmap.compare.run import leverage_label

    files = price_files([*prices, *(Path(arg) for arg in ctx.args)])
    params = _compare_params(files, positions, bar, timeframes, heat_timeframe)
    assert positions is not None  # checked by _compare_params
    lookback_h = _hours(lookback, "--lookback")
    min_lead_h = _hours(min_lead, "--min-lead")
    limits = alert_thresholds(alert_config, params)
    found, settings = _compare_events(files, positions, accounts, params, leverage,
                                      heat_timeframe, limits, keep_frames=True)
    if not found.frames:
        raise CommandFailed(f"{positions}: no account holds a priced position: check the "
                            "symbols against the price files")
    known = {frame.desk for _, frame in found.frames}
    unknown = [name for name in desk if name not in known]
    if unknown:
        names = ", ".join(sorted(d for d in known if d is not None)) or "none"
        raise UsageFailed(f"--desk {', '.join(unknown)}: no book of the input is of that desk "
                          f"(desks: {names})")
    with console.status("judging the candidate thresholds"):
        result = run_calibration(
            found, limits.defaults, limits.per_desk, heat_timeframe=settings.timeframe,
            leverages=[leverage_label(x) for x in settings.leverages], lookback_h=lookback_h,
            min_lead_h=min_lead_h, desks=set(desk) or None)
    if write is not None:
        defaults, per_desk = suggested_thresholds(result, limits.defaults, limits.per_desk)
        header = ["Alert thresholds suggested by `heat alerts calibrate` (docs/alerts.md)",
                  f"from {result.params.start} to {result.params.end}, books at "
                  f"{', '.join(result.params.leverages)} on {settings.timeframe} frames.",
                  *(suggestion_line(d) for d in result.desks)]
        try:
            write.write_text(config_toml(defaults, per_desk, header), encoding="utf-8")
        except OSError as error:
            raise CommandFailed(f"{write}: {error.strerror or error}") from error
    if as_json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(result), indent=2)
                                + b"\n")
    else:
        output = Console(width=None if sys.stdout.isatty() else 150)
        for calibrated in result.desks:
            output.print(candidate_table(result, calibrated))
            if calibrated.events:
                output.print(lead_table(calibrated))
        for calibrated in result.desks:
            output.print(suggestion_line(calibrated), soft_wrap=True, markup=False)
    if write is not None:
        console.print(f"suggested thresholds -> {write}", soft_wrap=True, markup=False)
