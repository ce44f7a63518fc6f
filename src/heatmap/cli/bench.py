"""``heat bench``: throughput benchmarks with same-run baselines, as a table and JSON."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed, bad_option
from heatmap.settings.database import DatabaseSettings
from heatmap.settings.kafka import KafkaConnection, KafkaSettings

app = typer.Typer(help="Benchmarks; each reports ratios against a baseline from the same run.",
                  no_args_is_help=True)
console = Console()

ENGINE_TARGETS = {"corr_updates_200": 5000.0, "account_frames": 2000.0, "speedup": 100.0}
INGEST_TARGETS = {"records": 50_000.0, "vs_raw": 0.7}
STORAGE_TARGETS = {"writer": 100_000.0, "vs_executemany": 10.0, "vs_raw_copy": 0.5,
                   "history_ms": 50.0, "compression_ratio": 0.5}


def results_table(title: str) -> Table:
    """The measure / value / target table every benchmark prints."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    return table


def _write_json(path: Path | None, benchmark: str, figures: dict[str, object]) -> None:
    if path is None:
        return
    payload = {"benchmark": benchmark, "python": platform.python_version(),
               "machine": platform.machine(), **figures}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"results -> {path}")


@app.command("engine")
def engine(
    size: str = typer.Option("full", help="full (reference size) or small (CI smoke run)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
    seed: int = typer.Option(7, help="Random seed of the synthetic market and books."),
) -> None:
    """Correlation updates/s, account-frames/s and the naive pandas baseline."""
    from heatmap.bench import engine as engine_bench  # numpy/scipy: only when benchmarking

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
    _write_json(json_out, "engine", engine_bench.as_dict(result))


@app.command("storage")
def storage(
    size: str = typer.Option("full", help="full (reference size) or small (CI smoke run)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
) -> None:
    """Writer rows/s vs executemany and raw COPY; hourly history query latency; compression.

    Runs in scratch databases created (and dropped) through HEAT_DATABASE_URL. On
    TimescaleDB it also times the history on the plain PostgreSQL schema and measures
    the compression of a synthetic desk's frames.
    """
    from heatmap.bench import storage as storage_bench

    if size not in storage_bench.SIZES:
        raise bad_option(f"size must be one of {sorted(storage_bench.SIZES)}", "--size")
    database_url = checks.database_url(DatabaseSettings())
    with console.status(f"Running the storage benchmark ({size})"):
        result = storage_bench.run(database_url, size)
    spec = storage_bench.SIZES[size]
    table = results_table(f"heat storage ({size})")
    table.add_row("frame-position rows/s through the writer (idempotent merge)",
                  f"{result.writer_rows_per_s:,.0f}", f">= {STORAGE_TARGETS['writer']:,.0f}")
    table.add_row("rows/s, psycopg executemany INSERT", f"{result.executemany_rows_per_s:,.0f}",
                  "")
    table.add_row("rows/s, raw binary COPY into an unindexed table",
                  f"{result.raw_copy_rows_per_s:,.0f}", "")
    table.add_row("writer vs executemany (same run)", f"{result.writer_vs_executemany:.1f}x",
                  f">= {STORAGE_TARGETS['vs_executemany']:.0f}x")
    table.add_row("writer vs raw COPY (same run)", f"{result.writer_vs_raw_copy:.2f}x",
                  f">= {STORAGE_TARGETS['vs_raw_copy']:.1f}x")
    history = (f"{spec.history_days} days of frames every {spec.frame_every_s} s "
               f"({result.history_frames:,} frames)")
    if result.history_plain_query_ms is None:
        table.add_row(f"hourly history query, {history}", f"{result.history_query_ms:,.1f} ms", "")
    else:
        table.add_row(f"hourly history query, {history}: continuous aggregate, real time for "
                      f"the newest {result.history_realtime_frames:,} frames",
                      f"{result.history_query_ms:,.1f} ms",
                      f"<= {STORAGE_TARGETS['history_ms']:.0f} ms")
        table.add_row("same query, plain PostgreSQL schema (view over raw frames, same run)",
                      f"{result.history_plain_query_ms:,.1f} ms", "")
        table.add_row("history speed-up vs plain PostgreSQL (same run)",
                      f"{result.history_speedup_vs_plain:,.0f}x", "")
    for name, figures in result.compression.items():
        table.add_row(f"compressed / uncompressed bytes, {name} ({figures.rows:,} rows, "
                      f"{figures.chunks} chunks, {figures.uncompressed_bytes / 2**20:,.0f} MiB)",
                      f"{figures.ratio:.3f}", f"<= {STORAGE_TARGETS['compression_ratio']:.1f}")
    console.print(table)
    if result.compression_volume:
        console.print(f"compression volume: {result.compression_volume}")
    for note in result.notes:
        console.print(f"note: {note}")
    _write_json(json_out, "storage", storage_bench.as_dict(result))


@app.command("ingest")
def ingest(
    size: str = typer.Option("full", help="full (200,000 records) or small (CI smoke run)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
) -> None:
    """Price records/s through the ingest producer vs raw KafkaProducer.send of bytes.

    Uses scratch topics on HEAT_KAFKA_BOOTSTRAP (deleted afterwards).
    """
    from heatmap.bench import ingest as ingest_bench

    if size not in ingest_bench.SIZES:
        raise bad_option(f"size must be one of {sorted(ingest_bench.SIZES)}", "--size")
    bootstrap = KafkaSettings().bootstrap_servers
    checks.kafka_ready(KafkaConnection(bootstrap_servers=bootstrap))
    with console.status(f"Running the ingest benchmark ({size})"):
        result = ingest_bench.run(bootstrap, size)
    table = results_table(f"heat ingest ({size}, {result.records:,} price records)")
    table.add_row("price records/s through the ingest producer",
                  f"{result.producer_records_per_s:,.0f}",
                  f">= {INGEST_TARGETS['records']:,.0f}")
    table.add_row("records/s, raw KafkaProducer.send of pre-encoded bytes",
                  f"{result.raw_records_per_s:,.0f}", "")
    table.add_row("producer vs raw (same run)", f"{result.producer_vs_raw:.2f}x",
                  f">= {INGEST_TARGETS['vs_raw']:.1f}x")
    table.add_row("simulator events/s generated (no Kafka)",
                  f"{result.simulator_events_per_s:,.0f}", "")
    table.add_row("simulator vs ingest producer (same run)",
                  f"{result.simulator_vs_producer:.1f}x", "> 1x")
    console.print(table)
    _write_json(json_out, "ingest", ingest_bench.as_dict(result))


PIPELINE_TARGETS = {"ticks_per_s": 20_000.0, "vs_baseline": 0.5, "kafka_p99_ms": 250.0,
                    "database_p99_ms": 1000.0}


@app.command("pipeline")
def pipeline(
    quick: bool = typer.Option(False, "--quick", help="A short run (about 3 minutes): fewer "
                               "ticks, one bar close, a smaller capacity grid."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
    figures: str = typer.Option("throughput,latency,failover,capacity", "--figures",
                                help="Which figures to measure, comma-separated."),
    profile: Path | None = typer.Option(None, "--profile", help="Profile the processor "
                                        "(py-spy) and the engine host (cProfile) into DIR."),
    logs: Path | None = typer.Option(None, "--logs", help="Keep the services' logs in DIR "
                                     "(default: a temporary directory, removed after a "
                                     "run that succeeds)."),
) -> None:
    """`heat process` and `heat sink` end to end: throughput, latency, failover; capacity.

    Runs real `heat process` and `heat sink` children on HEAT_KAFKA_BOOTSTRAP and scratch
    databases on the server of HEAT_DATABASE_URL, under topic prefixes of its own
    (deleted afterwards). Every figure comes with a baseline from the same run.
    """
    import shutil
    import tempfile

    from heatmap.bench import pipeline as pipeline_bench
    from heatmap.bench.profiles import py_spy_path
    from heatmap.cli.bench_pipeline import print_results

    chosen = [name.strip() for name in figures.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(pipeline_bench.FIGURES))
    if unknown or not chosen:
        raise bad_option(f"figures must be among {', '.join(pipeline_bench.FIGURES)}",
                         "--figures")
    if profile is not None and py_spy_path() is None:
        raise bad_option("py-spy is not installed: pip install py-spy", "--profile")
    needs_services = set(chosen) != {"capacity"}
    bootstrap = KafkaSettings().bootstrap_servers
    database = DatabaseSettings()
    admin_url = ""
    if needs_services:
        checks.kafka_ready(KafkaConnection(bootstrap_servers=bootstrap))
        admin_url = checks.database_url(database)
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    log_dir = logs or Path(tempfile.mkdtemp(prefix="heat-bench-pipeline-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    spec_name = "quick" if quick else "full"
    with console.status("Running the pipeline benchmark") as status:
        def step(message: str) -> None:
            status.update(message)
            console.log(message)

        bench = pipeline_bench.Bench(
            bootstrap=bootstrap, admin_url=admin_url,
            writer_password=database.role_password("heat_writer"), logs=log_dir,
            profile_dir=profile, step=step)
        result = pipeline_bench.run(bench, spec_name, chosen)
    print_results(console, result, PIPELINE_TARGETS)
    _write_json(json_out, "pipeline", pipeline_bench.as_dict(result))
    if result.failed:
        raise CommandFailed(f"{', '.join(result.failed)} not measured ("
                            f"{'; '.join(result.failed.values())}); service logs kept in "
                            f"{log_dir}")
    if logs is None:
        shutil.rmtree(log_dir, ignore_errors=True)



WHATIF_TARGETS = {"p99_ms": 5.0, "requests_per_s": 1000.0}


@app.command("whatif")
def whatif(
    duration_s: float = typer.Option(20.0, "--duration", help="Seconds of what-if load."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Concurrent clients "
                                    "(one keep-alive connection each)."),
    ticks_per_s: float = typer.Option(5000.0, "--ticks", help="Live ticks/s fed meanwhile."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
    logs: Path | None = typer.Option(None, "--logs", help="Keep the processor's log in DIR."),
) -> None:
    """POST /v1/whatif over HTTP against a live `heat process`, and frames_for in process.

    Runs a `heat process` child on HEAT_KAFKA_BOOTSTRAP under a topic prefix of its own
    (deleted afterwards), fed live ticks while the clients run.
    """
    import tempfile

    from heatmap.bench import whatif as whatif_bench

    bootstrap = KafkaSettings().bootstrap_servers
    checks.kafka_ready(KafkaConnection(bootstrap_servers=bootstrap))
    log_dir = logs or Path(tempfile.mkdtemp(prefix="heat-bench-whatif-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    from heatmap.bench.pipeline import Bench

    with console.status("Running the what-if benchmark") as status:
        def step(message: str) -> None:
            status.update(message)
            console.log(message)

        bench = Bench(bootstrap=bootstrap, admin_url="", writer_password=None, logs=log_dir,
                      step=step)
        result = whatif_bench.run(bench, duration_s=duration_s, concurrency=concurrency,
                                  ticks_per_s=ticks_per_s)
    latency = result.latency
    table = results_table(f"what-if over HTTP: {result.account} ({result.timeframe}), "
                           f"{result.shape}, {result.live_ticks_per_s:,.0f} ticks/s live, "
                           f"{result.concurrency} clients")
    table.add_row("requests/s (one worker)", f"{result.requests_per_s:,.0f}",
                  f">= {WHATIF_TARGETS['requests_per_s']:,.0f}")
    if latency is not None:
        table.add_row("latency p50 / p99 / max", f"{latency.p50_ms:.2f} / "
                      f"{latency.p99_ms:.2f} / {latency.max_ms:.1f} ms",
                      f"p99 <= {WHATIF_TARGETS['p99_ms']:g} ms")
    table.add_row("failed requests", f"{result.errors:,}", "0")
    table.add_row("baseline: frames_for (3 timeframes) per s, in process",
                  f"{result.frames_for_per_s:,.0f}", "")
    table.add_row("what-if requests / frames_for calls", f"{result.whatif_vs_frames_for:.2f}x",
                  "")
    table.add_row("facade copy per step: prices / book changed / bar closed",
                  f"{result.step_copy_prices_us:,.0f} / {result.step_copy_book_us:,.0f} / "
                  f"{result.step_copy_bar_us:,.0f} us", "")
    table.add_row("processor input lag at the end (records)",
                  f"{result.input_lag_max_records:,.0f}", "")
    console.print(table)
    _write_json(json_out, "whatif", whatif_bench.as_dict(result))
    if result.errors:
        raise CommandFailed(f"{result.errors} what-if requests failed; the processor's log "
                            f"is in {log_dir}")
