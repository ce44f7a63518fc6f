"""Storage benchmark, in scratch databases created (and dropped) on one server.

- Writes: frame-position rows/s through the writer, against per-row ``executemany``
  INSERT and raw binary COPY into an unindexed table, same run, same database.
- History: the 30-day, one-account, hourly history of ``heat_api.frame_metrics_1h``
  over 1-second frames. On TimescaleDB the hourly continuous aggregate is first
  brought to the state its refresh policy keeps it in (materialized up to the
  policy's end offset, so only the newest hour is aggregated from raw rows in
  real time; older aggregate chunks compressed by their policy); the plain
  PostgreSQL schema (a view over raw rows) answers the same query in a second
  scratch database on the same server as the baseline.
- Compression (TimescaleDB only): a synthetic desk's volume (``storage_volume``)
  compressed by the layer's own compression policies; compressed / uncompressed
  bytes (heap, indexes and TOAST) per hypertable.

TimescaleDB's background jobs are paused in the scratch databases, so nothing
runs behind the measurements; the bench runs the policies itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.scratch import scratch_database, scratch_settings
from benchmarks.storage_volume import VolumeSpec, fill
from heatmap.db import migrations, tables
from heatmap.db.writer import HeatWriter
from heatmap.settings.database import WRITER_ROLE, DatabaseSettings

HISTORY_BOOK = "acct-h"
HISTORY_AGGREGATE = "heat.frame_metrics_1h_cagg"
HISTORY_QUERY = ("SELECT bucket, correlated_exposure_avg, max_cluster_concentration_max "
                 "FROM heat_api.frame_metrics_1h WHERE book_kind = 'account' "
                 "AND book = %s AND timeframe = '1h' AND bucket >= %s AND bucket < %s "
                 "ORDER BY bucket")
# Hypertables (and the minute rollup) whose compression is measured, by relation.
COMPRESSED = {"frames": "heat.frames", "frame_positions": "heat.frame_positions",
              "frame_clusters": "heat.frame_clusters", "prices": "heat.prices",
              "frame_metrics_1m": "heat.frame_metrics_1m_cagg"}


# The desk whose frames are compressed at size "full": one day of 1-minute bars, so the
# 1-day chunks of frames, frame_clusters and prices are full (1.73 M frame-position rows).
# Each book is its own compression segment, so more accounts add segments, not a
# different ratio (100 accounts measured the same to within 0.003).
FULL_VOLUME = VolumeSpec(accounts=20, positions=20, symbols=200, hours=24)


@dataclass(frozen=True)
class StorageBenchSize:
    rows: int = 200_000
    batch_rows: int = 10_000
    executemany_rows: int = 20_000
    history_days: int = 30
    frame_every_s: int = 1
    volume: VolumeSpec = FULL_VOLUME


SIZES = {
    "full": StorageBenchSize(),
    "small": StorageBenchSize(rows=20_000, batch_rows=5_000, executemany_rows=2_000,
                              history_days=1, frame_every_s=10,
                              volume=VolumeSpec(accounts=4, positions=20, symbols=200,
                                                hours=4)),
}


@dataclass(frozen=True)
class CompressionFigures:
    """One hypertable after its compression policy ran; bytes include indexes and TOAST."""

    rows: int
    chunks: int
    uncompressed_bytes: int
    compressed_bytes: int

    @property
    def ratio(self) -> float:
        """Compressed over uncompressed bytes (below 1: smaller)."""
        return self.compressed_bytes / self.uncompressed_bytes


@dataclass
class StorageBenchResult:
    size: str
    database: str = ""
    writer_rows_per_s: float = 0.0
    executemany_rows_per_s: float = 0.0
    raw_copy_rows_per_s: float = 0.0
    writer_vs_executemany: float = 0.0
    writer_vs_raw_copy: float = 0.0
    history_frames: int = 0
    history_query_ms: float = 0.0
    history_rows: int = 0
    # TimescaleDB only: frames the real-time part aggregated from raw rows, and the
    # same query on the plain PostgreSQL schema (same server, same run).
    history_realtime_frames: int | None = None
    history_plain_query_ms: float | None = None
    history_speedup_vs_plain: float | None = None
    compression_volume: str | None = None
    compression: dict[str, CompressionFigures] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _row(connection: psycopg.Connection, query: str,
         params: Sequence[object] | Mapping[str, object] = ()) -> tuple[Any, ...]:
    """The single row a query returns."""
    row = connection.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {query!r}")
    return row


def _timescaledb_version(connection: psycopg.Connection) -> str | None:
    row = connection.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return None if row is None else row[0]


def _pause_jobs(connection: psycopg.Connection) -> None:
    """Unschedule the layer's policies (refresh, compression, retention) in this database."""
    connection.execute("SELECT alter_job(job_id, scheduled => false) "
                       "FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL")


def _policy(connection: psycopg.Connection, procedure: str,
            relation: str) -> tuple[int, dict[str, object]]:
    """Job id and config of the ``procedure`` policy of a hypertable or continuous aggregate.

    The jobs view names an aggregate's policies by the aggregate (TimescaleDB 2.2x) or by
    its materialization hypertable (older releases): either matches.
    """
    schema, name = relation.split(".")
    row = connection.execute(
        "SELECT j.job_id, j.config FROM timescaledb_information.jobs j "
        "LEFT JOIN timescaledb_information.continuous_aggregates c "
        "  ON c.materialization_hypertable_schema = j.hypertable_schema "
        " AND c.materialization_hypertable_name = j.hypertable_name "
        "WHERE j.proc_name = %(procedure)s "
        "  AND (%(schema)s, %(name)s) IN ((j.hypertable_schema, j.hypertable_name), "
        "                                (c.view_schema, c.view_name))",
        {"procedure": procedure, "schema": schema, "name": name}).fetchone()
    if row is None:
        raise RuntimeError(f"{relation} has no {procedure} job")
    return row[0], row[1]


def _run_compression_policy(connection: psycopg.Connection, relation: str) -> None:
    """Run the compression policy of a hypertable or continuous aggregate once, now."""
    job_id, _ = _policy(connection, "policy_compression", relation)
    connection.execute("CALL run_job(%s)", (job_id,))


def _refresh_like_policy(connection: psycopg.Connection, aggregate: str, start: datetime,
                         present: datetime) -> datetime:
    """Materialize ``aggregate`` from ``start`` as its refresh policy leaves it at ``present``.

    A policy that has run all along has materialized everything older than its end
    offset before the present; newer buckets are served in real time from raw rows.
    Returns the window's end (``present`` minus the end offset).
    """
    _, config = _policy(connection, "policy_refresh_continuous_aggregate", aggregate)
    window_end: datetime = _row(connection, "SELECT %s::timestamptz - %s::interval",
                                (present, config["end_offset"]))[0]
    # CALL with composed literals: the window's types are then resolved by the server.
    connection.execute(sql.SQL("CALL refresh_continuous_aggregate({}, {}, {})").format(
        sql.Literal(aggregate), sql.Literal(start), sql.Literal(window_end)))
    return window_end


def _measure_writes(url: str, settings: DatabaseSettings, size: StorageBenchSize, start: datetime,
                    result: StorageBenchResult) -> None:
    table = tables.FRAME_POSITIONS
    rows = _position_rows(size.rows, start, "acct-writer")
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write_rows([(table, rows[: size.batch_rows])])  # warm the pool
        timed = rows[size.batch_rows:]
        started = time.perf_counter()
        for i in range(0, len(timed), size.batch_rows):
            writer.write_rows([(table, timed[i:i + size.batch_rows])])
        result.writer_rows_per_s = len(timed) / (time.perf_counter() - started)

    columns = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
    with psycopg.connect(url) as connection:
        few = _position_rows(size.executemany_rows, start, "acct-executemany")
        insert = sql.SQL("INSERT INTO heat.frame_positions ({}) VALUES ({}) "
                         "ON CONFLICT DO NOTHING").format(
            columns, sql.SQL(", ").join(sql.Placeholder() * len(table.column_names)))
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.executemany(insert, few)
        connection.commit()
        result.executemany_rows_per_s = len(few) / (time.perf_counter() - started)

        connection.execute("CREATE TABLE raw_copy (LIKE heat.frame_positions)")
        connection.commit()
        copied = _position_rows(size.rows, start, "acct-copy")
        started = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy(sql.SQL(
                "COPY raw_copy ({}) FROM STDIN (FORMAT BINARY)").format(columns)) as copy:
            copy.set_types(table.column_types)
            for row in copied:
                copy.write_row(row)
        connection.commit()
        result.raw_copy_rows_per_s = len(copied) / (time.perf_counter() - started)
    result.writer_vs_executemany = result.writer_rows_per_s / result.executemany_rows_per_s
    result.writer_vs_raw_copy = result.writer_rows_per_s / result.raw_copy_rows_per_s


def _position_rows(count: int, start: datetime, book: str) -> list[tuple]:
    """Distinct frame-position rows: 20 symbols per 1-second frame."""
    rows = []
    for n in range(count):
        ts = start + timedelta(seconds=n // 20)
        symbol = f"S{n % 20:02d}USDT"
        rows.append((ts, "account", book, "1h", "bar", "bench", symbol, None, 1.5, 100.0,
                     150.0, 0.015, 0.01, 0.05, 0.0001, "S00USDT", "core", 0.5, False, 0.1))
    return rows


def _load_history(connection: psycopg.Connection, start: datetime, frames: int,
                  every_s: int) -> None:
    """``frames`` frames of one account, every ``every_s`` seconds from ``start``."""
    connection.execute(
        "INSERT INTO heat.frames SELECT %(start)s::timestamptz + n * %(every)s * INTERVAL '1 s', "
        "'account', %(book)s, '1h', 'bar', 'bench', %(book)s, NULL, 1e6, 1.2, 0.4, "
        "0.6 + (n %% 97) / 1000.0, 0.7, 3.1, 0.2, 0.3, 2.5, 1e4, 0.5, 0.1, false, 0.2, false, "
        "'{}' FROM generate_series(0, %(frames)s - 1) n",
        {"start": start, "every": every_s, "book": HISTORY_BOOK, "frames": frames})
    connection.commit()


def _time_history_query(url: str, start: datetime, end: datetime) -> tuple[float, int]:
    """Best of three runs of the history query, in ms; and the rows it returned."""
    with psycopg.connect(url) as connection:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            fetched = connection.execute(HISTORY_QUERY, (HISTORY_BOOK, start, end)).fetchall()
            timings.append(time.perf_counter() - started)
    return min(timings) * 1000, len(fetched)


def _measure_history(url: str, size: StorageBenchSize, end: datetime,
                     timescale: bool) -> tuple[float, int, int | None]:
    """Load the history, bring the rollup to its policy state; (ms, rows, real-time frames)."""
    frames = size.history_days * 86400 // size.frame_every_s
    start = end - timedelta(days=size.history_days)
    realtime_frames = None
    with psycopg.connect(url) as connection:
        _load_history(connection, start, frames, size.frame_every_s)
    with psycopg.connect(url, autocommit=True) as connection:
        if timescale:
            # The history ends at the present, as if the sink had just written it.
            window_end = _refresh_like_policy(connection, HISTORY_AGGREGATE, start, end)
            _run_compression_policy(connection, HISTORY_AGGREGATE)
            # Buckets that end after the window's end stay unmaterialized.
            realtime_from = window_end.astimezone(UTC).replace(minute=0, second=0,
                                                               microsecond=0)
            realtime_frames = int((end - realtime_from).total_seconds()) // size.frame_every_s
        connection.execute("ANALYZE")
    query_ms, rows = _time_history_query(url, start, end)
    return query_ms, rows, realtime_frames


def _measure_compression(url: str, spec: VolumeSpec) -> dict[str, CompressionFigures]:
    """Fill the volume old enough for every compression policy, run them, read the stats."""
    with psycopg.connect(url) as connection:
        # Old enough that every chunk holding it (the aggregates' included) ends
        # before the longest compress_after: the policies then compress all of it.
        start: datetime = _row(
            connection,
            "SELECT date_trunc('day', now() - (SELECT max((config ->> 'compress_after')::interval)"
            "  FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression')"
            " - (SELECT max(time_interval) FROM timescaledb_information.dimensions)"
            " - %s * INTERVAL '1 hour') - INTERVAL '1 day'", (spec.hours,))[0]
        rows = fill(connection, spec, start)
    end = start + timedelta(hours=spec.hours)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("CALL refresh_continuous_aggregate({}, {}, {})").format(
            sql.Literal(COMPRESSED["frame_metrics_1m"]), sql.Literal(start), sql.Literal(end)))
        rows["frame_metrics_1m"] = _row(
            connection,
            "SELECT count(*) FROM heat.frame_metrics_1m_cagg WHERE bucket >= %s AND bucket < %s",
            (start, end))[0]
        figures = {}
        for name, relation in COMPRESSED.items():
            _run_compression_policy(connection, relation)
            # An aggregate's statistics are those of its materialization hypertable.
            chunks, before, after = _row(
                connection,
                "SELECT number_compressed_chunks, before_compression_total_bytes, "
                "after_compression_total_bytes FROM hypertable_compression_stats(coalesce("
                "  (SELECT format('%%I.%%I', materialization_hypertable_schema, "
                "                 materialization_hypertable_name)"
                "   FROM timescaledb_information.continuous_aggregates"
                "   WHERE format('%%I.%%I', view_schema, view_name) = %(relation)s),"
                "  %(relation)s)::regclass)", {"relation": relation})
            figures[name] = CompressionFigures(rows[name], chunks, before, after)
    return figures


def run(admin_url: str, size_name: str = "full") -> StorageBenchResult:
    size = SIZES[size_name]
    result = StorageBenchResult(size=size_name)
    # Whole hours: the history then has exactly history_days * 24 hourly buckets.
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with scratch_database(admin_url) as url:
        settings = scratch_settings(url)
        migrations.migrate(settings)
        with psycopg.connect(url, autocommit=True) as connection:
            timescale = _timescaledb_version(connection)
            server = _row(connection, "SHOW server_version")[0]
            if timescale:
                _pause_jobs(connection)
        result.database = f"PostgreSQL {server.split()[0]}" + (
            f" + TimescaleDB {timescale}" if timescale else "")
        _measure_writes(url, settings, size, end - timedelta(days=1), result)
        result.history_frames = size.history_days * 86400 // size.frame_every_s
        result.history_query_ms, result.history_rows, result.history_realtime_frames = (
            _measure_history(url, size, end, timescale is not None))
    if not timescale:
        result.notes.append("plain PostgreSQL: the hourly rollup is a view over raw frames "
                            "(TimescaleDB serves it from a continuous aggregate)")
        return result
    with scratch_database(admin_url) as url:
        # The plain PostgreSQL schema.
        migrations.migrate(scratch_settings(url, timescaledb="off"))
        result.history_plain_query_ms, _, _ = _measure_history(url, size, end, timescale=False)
    result.history_speedup_vs_plain = result.history_plain_query_ms / result.history_query_ms
    result.notes.append("the plain-PostgreSQL baseline is the core schema alone (the rollup "
                        "a view over raw frames) in a scratch database on the same server")
    with scratch_database(admin_url) as url:
        migrations.migrate(scratch_settings(url))
        with psycopg.connect(url, autocommit=True) as connection:
            _pause_jobs(connection)
        result.compression = _measure_compression(url, size.volume)
        result.compression_volume = size.volume.describe()
    return result


def as_dict(result: StorageBenchResult) -> dict[str, object]:
    figures = asdict(result)
    figures["compression"] = {name: {**asdict(f), "ratio": f.ratio}
                              for name, f in result.compression.items()}
    return figures
