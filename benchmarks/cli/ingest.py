"""``heat-bench ingest``: price records/s through the ingest producer against raw
``KafkaProducer.send`` of pre-encoded bytes."""

from __future__ import annotations

from pathlib import Path

import typer

from benchmarks.cli.results import console, results_table, write_json
from heatmap.cli import checks
from heatmap.cli.errors import bad_option
from heatmap.settings.kafka import KafkaConnection, KafkaSettings

INGEST_TARGETS = {"records": 50_000.0, "vs_raw": 0.7}


def ingest(
    size: str = typer.Option("full", help="full (200,000 records) or small (CI smoke run)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
) -> None:
    """Price records/s through the ingest producer vs raw KafkaProducer.send of bytes.

    Uses scratch topics on HEAT_KAFKA_BOOTSTRAP (deleted afterwards).
    """
    from benchmarks import ingest as ingest_bench

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
    write_json(json_out, "ingest", ingest_bench.as_dict(result))
