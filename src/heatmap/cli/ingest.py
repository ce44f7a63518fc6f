"""``heat ingest``: prices, positions and account equity into Kafka."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from heatmap.ingest import pipeline
from heatmap.ingest.producer import HeatProducer
from heatmap.ingest.settings import IngestSettings
from heatmap.observability import configure_logging, serve_metrics_and_health
from heatmap.replay.sources import ReadStats, ReplayInputError, price_files
from heatmap.topics import Topics

app = typer.Typer(help="Ingest services: simulator, file replay, exchanges, desk OMS.",
                  no_args_is_help=True)
console = Console(stderr=True)
log = logging.getLogger("heatmap.ingest")

SPEED_HELP = "Event-time speed: 0 as fast as possible, 1 real time, 60 sixty times faster."
CONFLATE_HELP = "At most one price update per symbol per this many ms (0: off)."


@contextmanager
def _service(name: str):
    """Logging, producer, metrics/health endpoint and signal handling of one service."""
    settings = IngestSettings(service_name=name)
    configure_logging(settings.log_level)
    stop = pipeline.StopFlag()
    stop.install()
    producer = HeatProducer(settings, Topics.from_settings())
    server = serve_metrics_and_health(settings.metrics_port, producer.healthy)
    log.info("ingest started", extra={"service": name, "metrics_port": server.server_port,
                                      "bootstrap": settings.kafka_bootstrap})
    try:
        yield producer, stop
    finally:
        server.shutdown()


def _run(name: str, source_factory, speed: float = 0.0, conflate_ms: int = 0) -> None:
    with _service(name) as (producer, stop):
        source: Iterable = source_factory(producer.topics, stop)
        summary = pipeline.run(source, producer, stop, pipeline.Pacer(speed, stop),
                               conflate_ms)
    console.print(f"accepted {summary.accepted}, acknowledged {producer.acknowledged}, "
                  f"dead-lettered {summary.deadlettered}, failed {producer.failed}")
    if producer.failed:
        raise typer.Exit(1)


@app.command("replay", context_settings={"allow_extra_args": True})
def replay(
    ctx: typer.Context,
    prices: list[Path] = typer.Option(..., "--prices", help="Price bars (SYMBOL.csv), trades "
                                      "(SYMBOL.csv with price), long CSVs, or directories; "
                                      "several paths may follow one --prices."),
    positions: Path | None = typer.Option(None, "--positions", exists=True, dir_okay=False),
    accounts: Path | None = typer.Option(None, "--accounts", exists=True, dir_okay=False),
    speed: float = typer.Option(0.0, help=SPEED_HELP),
    conflate_ms: int = typer.Option(0, "--conflate-ms", help=CONFLATE_HELP),
) -> None:
    """Replay recorded price, trade, position and account files into Kafka."""
    files = price_files([*prices, *(Path(arg) for arg in ctx.args)])
    stats = ReadStats()

    def source(topics: Topics, _stop):
        return pipeline.recorded_files(files, positions, accounts, topics, stats)

    try:
        _run("ingest-replay", source, speed, conflate_ms)
    except ReplayInputError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error


@app.command("positions")
def positions(
    stdin: bool = typer.Option(..., "--stdin", help="Read JSON lines from standard input."),
) -> None:
    """Positions and account equity from another program (JSON lines on stdin)."""
    if not stdin:
        raise typer.BadParameter("only --stdin is supported")

    def source(topics: Topics, _stop):
        return pipeline.json_lines(sys.stdin.buffer, topics.positions, topics.accounts)

    _run("ingest-positions", source)
