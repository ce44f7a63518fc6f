"""``heat ingest``: prices, positions and account equity into Kafka."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed, UsageFailed, bad_option
from heatmap.cli.progress import file_progress
from heatmap.ingest import pipeline
from heatmap.ingest.producer import HeatProducer
from heatmap.ingest.settings import IngestSettings
from heatmap.observability import configure_logging, serve_metrics_and_health
from heatmap.schema import NAME_RULE, valid_name
from heatmap.sources.csv_files import ReadStats, price_files
from heatmap.topics import Topics

app = typer.Typer(help="Ingest services: simulator, file replay, exchanges, desk OMS.",
                  no_args_is_help=True)
console = Console(stderr=True)
log = logging.getLogger("heatmap.ingest")

SPEED_HELP = "Event-time speed: 0 as fast as possible, 1 real time, 60 sixty times faster."
CONFLATE_HELP = "At most one price update per symbol per this many ms (0: off)."

# A source: given the resolved topics and the stop flag, the records to send.
SourceFactory = Callable[[Topics, pipeline.StopFlag],
                         Iterable[pipeline.Message | pipeline.Rejected]]


@contextmanager
def _service(name: str) -> Iterator[tuple[HeatProducer, pipeline.StopFlag]]:
    """Logging, producer, metrics/health endpoint and signal handling of one service."""
    settings = IngestSettings(service_name=name)
    topics = Topics.from_settings(settings.kafka.topics)
    try:
        configure_logging(settings.log_level)
    except ValueError as error:
        raise UsageFailed(f"setting HEAT_LOG_LEVEL={settings.log_level!r} is not a log level; "
                          "use DEBUG, INFO, WARNING or ERROR") from error
    # Fail in seconds when the broker or the topics are missing; once running, the
    # producer retries a lost broker as long as it takes.
    checks.kafka_ready(settings.kafka.connection(f"heat-{settings.service_name}"),
                       [topics.prices, topics.positions, topics.accounts, topics.deadletter])
    stop = pipeline.StopFlag()
    stop.install()
    producer = HeatProducer(settings, topics)
    try:
        server = serve_metrics_and_health(settings.metrics_port, producer.healthy,
                                          host=settings.metrics_host)
    except OSError as error:
        producer.close()
        raise CommandFailed(f"cannot serve metrics on {settings.metrics_host}:"
                            f"{settings.metrics_port}: "
                            f"{(error.strerror or str(error)).lower()}; set HEAT_METRICS_PORT "
                            "to a free port (0 picks one)") from error
    log.info("ingest started", extra={"service": name, "metrics_port": server.server_port,
                                      "bootstrap": settings.kafka.bootstrap_servers})
    try:
        yield producer, stop
    finally:
        server.shutdown()


def _run(name: str, source_factory: SourceFactory, speed: float = 0.0, conflate_ms: int = 0,
         source_stops_itself: bool = False) -> None:
    with _service(name) as (producer, stop):
        source = source_factory(producer.topics, stop)
        summary = pipeline.run(source, producer, stop, pipeline.Pacer(speed, stop),
                               conflate_ms, source_stops_itself)
    console.print(f"accepted {summary.accepted}, acknowledged {producer.acknowledged}, "
                  f"dead-lettered {summary.deadlettered}, failed {producer.failed}")
    if producer.failed:
        raise CommandFailed(f"Kafka did not acknowledge {producer.failed} record(s) (last: "
                            f"{producer.last_error}): check the broker with `heat stack status`")


@app.command("simulate")
def simulate(
    seed: int = typer.Option(7, help="Same seed and --start: same market, byte for byte."),
    rate: float = typer.Option(4.0, help="Simulated ticks per second of wall time (a tick is "
                               "250 ms of market: 4 is real time, 0 as fast as possible)."),
    duration: float | None = typer.Option(None, help="Seconds of simulated market, then "
                                          "stop (default: until stopped)."),
    symbols: int = typer.Option(24, help="Symbols, in 4 correlated clusters."),
    start: str | None = typer.Option(None, help="Simulated start time, RFC 3339 (default: "
                                     "now, to the second)."),
) -> None:
    """A simulated market and desks, no data needed.

    Correlated clusters, news events, thin weekends, strategies with different heat
    profiles (a spread book at 2.5x, an altcoin book at 5x, a scalper at 10x), equity
    following P&L.
    """
    from datetime import UTC, datetime

    from heatmap.ingest.simulator import MarketSimulator, SimulatorConfig
    from heatmap.schema import rfc3339_to_ms

    if start is None:
        begin = datetime.now(UTC).replace(microsecond=0)
    else:
        try:
            begin = datetime.fromtimestamp(rfc3339_to_ms(start) / 1000, tz=UTC)
        except ValueError as error:
            raise bad_option(f"{error} (e.g. 2026-01-02T03:04:05Z)", "--start") from error
    config = SimulatorConfig(seed=seed, symbols=symbols, start=begin)
    speed = rate * config.tick_interval_ms / 1000.0

    def source(_topics: Topics, _stop: pipeline.StopFlag) -> Iterator[pipeline.Message]:
        return MarketSimulator(config).events(duration)

    _run("ingest-simulate", source, speed=speed)


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
    progress, task = file_progress(
        [*files, *(path for path in (positions, accounts) if path is not None)], console)

    def source(topics: Topics,
               _stop: pipeline.StopFlag) -> Iterator[pipeline.Message | pipeline.Rejected]:
        for count, item in enumerate(
                pipeline.recorded_files(files, positions, accounts, topics, stats)):
            if count % 2048 == 0:
                progress.update(task, completed=stats.bytes_read)
            yield item
        progress.update(task, completed=stats.bytes_read)

    with progress:
        _run("ingest-replay", source, speed, conflate_ms)


@app.command("positions")
def positions(
    stdin: bool = typer.Option(..., "--stdin", help="Read JSON lines from standard input."),
) -> None:
    """Positions and account equity from another program (JSON lines on stdin)."""
    if not stdin:
        raise bad_option("only --stdin is supported", "--stdin")

    def source(topics: Topics,
               stop: pipeline.StopFlag) -> Iterator[pipeline.Message | pipeline.Rejected]:
        lines = pipeline.interruptible_lines(sys.stdin.buffer, stop)
        return pipeline.json_lines(lines, topics.positions, topics.accounts)

    _run("ingest-positions", source, source_stops_itself=True)


@app.command("exchange")
def exchange(
    exchange_id: str = typer.Argument(..., help="binance, bybit or kraken."),
    symbols: str = typer.Option(..., help="Comma-separated ccxt symbols settled in USDT, e.g. "
                                "BTC/USDT:USDT,ETH/USDT:USDT (Kraken spot: BTC/USDT)."),
    account: str | None = typer.Option(None, help="Our name for the exchange account; its "
                                       "positions and equity are polled (needs API keys)."),
    desk: str | None = typer.Option(None, help="Desk of that account."),
    poll_s: float = typer.Option(1.0, "--poll-s", help="Seconds between polls."),
    sandbox: bool = typer.Option(False, help="Use the exchange's test network."),
    conflate_ms: int = typer.Option(0, "--conflate-ms", help=CONFLATE_HELP),
) -> None:
    """Exchange tickers (and, with API keys, positions and equity) through ccxt."""
    from heatmap.ingest.exchanges import (
        ExchangeCredentials,
        ExchangeSource,
        ExchangeUnavailable,
        make_exchange,
    )

    for label, name in (("account", account), ("desk", desk)):
        if name is not None and not valid_name(name):
            raise UsageFailed(f"--{label} must be {NAME_RULE}")
    failed_permanently: list[str] = []
    configured = IngestSettings().exchange_credentials()
    credentials = ExchangeCredentials(*configured) if configured else None
    try:
        client = make_exchange(exchange_id, credentials, sandbox=sandbox)
        polled = ExchangeSource(client, [s.strip() for s in symbols.split(",") if s.strip()],
                                account, desk=desk)
    except ValueError as error:
        raise UsageFailed(f"{error}; see `heat ingest exchange --help`") from error

    def source(_topics: Topics, stop: pipeline.StopFlag) -> Iterator[pipeline.Message]:
        backoff_s = poll_s
        while not stop.stopped:
            try:
                yield from polled.poll_prices()
                if account is not None:
                    yield from polled.poll_account()
                backoff_s = poll_s
            except ExchangeUnavailable as error:
                # The message carries no credentials; transient failures back off and retry.
                log.warning("exchange unavailable", extra={"exchange": error.exchange_id,
                                                           "error": error.message,
                                                           "transient": error.transient})
                if not error.transient:
                    failed_permanently.append(error.message)
                    return
                backoff_s = min(backoff_s * 2, 60.0)
            stop.event.wait(backoff_s)

    _run(f"ingest-{exchange_id}", source, conflate_ms=conflate_ms)
    if failed_permanently:  # e.g. rejected keys: a supervisor must see a failure
        raise CommandFailed(f"{exchange_id}: {failed_permanently[0]}")
