"""``heat demo``: the whole pipeline on this machine, its heat map in the terminal and as PNG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from heatmap.cli.errors import CommandFailed, UsageFailed
from heatmap.stack import ports

if TYPE_CHECKING:
    from heatmap.demo.run import Endpoints

# Settings the children take from the demo's environment (the rest is the run's own).
PASSTHROUGH = ("HEAT_LOG_LEVEL", "HEAT_TIMESCALEDB", "HEAT_CONNECT_TIMEOUT_S",
               "HEAT_START_TIMEOUT_S", "HEAT_STOP_TIMEOUT_S", "HEAT_ALERT_CONFIG")


def demo(
    replay: Path | None = typer.Option(None, "--replay", help="Replay recorded prices (e.g. "
                                       "data/binance-5m: January 2018, the 16-17 January "
                                       "crash included) instead of the simulator."),
    positions: Path | None = typer.Option(None, "--positions", dir_okay=False, help="Books to "
                                          "replay with --replay (default: the example books "
                                          "of the recorded bars, tests/data/replay)."),
    accounts: Path | None = typer.Option(None, "--accounts", dir_okay=False, help="Equity "
                                         "and desks to replay with --replay (default: as "
                                         "--positions)."),
    speed: float | None = typer.Option(None, "--speed", help="Event time per wall time: 60 "
                                       "is a minute of market per second (default: 60 "
                                       "simulated, 3600 replayed; 0 replays as fast as "
                                       "possible)."),
    duration: float | None = typer.Option(None, "--duration", help="Seconds to run from "
                                          "the first frame, then stop (default: until Ctrl-C)."),
    snapshot_every_min: float | None = typer.Option(
        None, "--snapshot-every-min", help="Minutes of event time between PNG snapshots "
        "(default: 30 simulated, 720 replayed)."),
    snapshot_dir: Path = typer.Option(Path("demo-snapshots"), "--snapshot-dir",
                                      file_okay=False, help="Where the PNGs go."),
    timeframe: str = typer.Option("1h", "--timeframe", help="Correlation timeframe shown "
                                  "(1h, 4h or 1d)."),
    seed: int = typer.Option(7, "--seed", help="The simulator's seed."),
) -> None:
    """Run the whole pipeline here and watch its heat: stack, source, processor, sink.

    Starts the local stack (or reuses a running `heat stack up`), migrates the database,
    runs the simulator (or --replay) with one `heat process` and one `heat sink`, and
    shows live heat from the Kafka output topics: positions by heat, clusters against
    the 20 % / 25 % concentration lines, liquidation distance in sigmas, firing alerts,
    staleness and the services' health. Writes a PNG per account every
    --snapshot-every-min of event time. Ctrl-C (or --duration) stops everything it
    started; the database keeps the run. HEAT_WEB_HOST / HEAT_WEB_PORT place the
    processor's web server (its live page is printed).
    """
    from heatmap.demo.options import DemoOptionError, resolve
    from heatmap.demo.run import run_demo
    from heatmap.demo.services import ServiceFailed

    try:
        options = resolve(replay=replay, positions=positions, accounts=accounts, speed=speed,
                          duration_s=duration, snapshot_every_min=snapshot_every_min,
                          snapshot_dir=snapshot_dir, timeframe=timeframe, seed=seed)
    except DemoOptionError as error:
        raise UsageFailed(f"{error}; see `heat demo --help`") from error
    endpoints = _endpoints()
    console = Console(log_path=False)
    logs = options.snapshot_dir / "logs"
    passthrough = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    try:
        summary = run_demo(options, endpoints, logs, passthrough, console, console.log)
    except ServiceFailed as error:
        raise CommandFailed(f"{error}; the demo stopped everything it started") from error
    console.print(f"[green]Demo stopped.[/green] Event time {summary.first_event} to "
                  f"{summary.last_event}.")
    console.print(f"Database: {summary.frames:,} frames, {summary.clusters:,} cluster rows, "
                  f"{summary.alerts:,} alert transitions of this run (`heat snapshot`, "
                  "the heat_api views and Grafana read them).", markup=False, soft_wrap=True)
    console.print(f"Snapshots: {len(summary.snapshots)} PNG in {options.snapshot_dir}; "
                  f"service logs in {summary.logs}.", markup=False, highlight=False, soft_wrap=True)
    console.print(f"Stack: {summary.stack}.", markup=False, highlight=False, soft_wrap=True)


def _endpoints() -> Endpoints:
    """Where the processor's web server listens: HEAT_WEB_HOST, HEAT_WEB_PORT (0 or unset: a
    free port), checked free before anything starts."""
    from heatmap.demo.run import Endpoints

    host = os.environ.get("HEAT_WEB_HOST", ports.LOOPBACK).strip() or ports.LOOPBACK
    text = os.environ.get("HEAT_WEB_PORT", "0").strip() or "0"
    try:
        port = int(text)
    except ValueError as error:
        raise UsageFailed(f"setting HEAT_WEB_PORT={text!r} is not a port number; fix or unset "
                          "it") from error
    if not 0 <= port <= 65535:
        raise UsageFailed(f"setting HEAT_WEB_PORT={port} is not a port number; fix or unset it")
    if port == 0:
        return Endpoints(host, ports.free_port())
    if host in (ports.LOOPBACK, "localhost") and not ports.is_free(port):
        raise CommandFailed(f"port {port} on {host} is in use (the processor's live page "
                            "needs it): stop what uses it, or set HEAT_WEB_PORT to a free "
                            "port (0 picks one)")
    return Endpoints(host, port)
