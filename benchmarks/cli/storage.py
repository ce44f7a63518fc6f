"""``heat-bench storage``: the database writer against executemany and raw COPY, the
hourly history query, and TimescaleDB's compression."""

from __future__ import annotations

from pathlib import Path

import typer

from benchmarks.cli.results import console, results_table, write_json
from heatmap.cli import checks
from heatmap.cli.errors import bad_option
from heatmap.settings.database import DatabaseSettings

STORAGE_TARGETS = {"writer": 100_000.0, "vs_executemany": 10.0, "vs_raw_copy": 0.5,
                   "history_ms": 50.0, "compression_ratio": 0.5}


def storage(
    size: str = typer.Option("full", help="full (reference size) or small (CI smoke run)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
) -> None:
    """Writer rows/s vs executemany and raw COPY; hourly history query latency; compression.

    Runs in scratch databases created (and dropped) through HEAT_DATABASE_URL. On
    TimescaleDB it also times the history on the plain PostgreSQL schema and measures
    the compression of a synthetic desk's frames.
    """
    from benchmarks import storage as storage_bench

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
    write_json(json_out, "storage", storage_bench.as_dict(result))
