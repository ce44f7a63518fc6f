"""``heat-bench whatif``: ``POST /v1/whatif`` over HTTP against a live ``heat process``,
against ``frames_for`` in process."""

from __future__ import annotations

from pathlib import Path

import typer

from benchmarks.cli.results import console, results_table, write_json
from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed
from heatmap.settings.kafka import KafkaConnection, KafkaSettings

WHATIF_TARGETS = {"p99_ms": 5.0, "requests_per_s": 1000.0}


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

    from benchmarks import whatif as whatif_bench

    bootstrap = KafkaSettings().bootstrap_servers
    checks.kafka_ready(KafkaConnection(bootstrap_servers=bootstrap))
    log_dir = logs or Path(tempfile.mkdtemp(prefix="heat-bench-whatif-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    from benchmarks.pipeline import Bench

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
    write_json(json_out, "whatif", whatif_bench.as_dict(result))
    if result.errors:
        raise CommandFailed(f"{result.errors} what-if requests failed; the processor's log "
                            f"is in {log_dir}")
