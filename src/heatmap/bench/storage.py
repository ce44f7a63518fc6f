"""Storage benchmark: frame-position rows/s through the writer, against per-row
``executemany`` INSERT and raw binary COPY into an unindexed table, in the same run
on the same database; and the latency of a 30-day, one-account, hourly history
query over 1-second frames.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from heatmap.db import migrations, tables
from heatmap.db.writer import HeatWriter
from heatmap.settings.database import WRITER_ROLE, DatabaseSettings


@dataclass(frozen=True)
class StorageBenchSize:
    rows: int = 200_000
    batch_rows: int = 10_000
    executemany_rows: int = 20_000
    history_days: int = 30
    frame_every_s: int = 1


SIZES = {
    "full": StorageBenchSize(),
    "small": StorageBenchSize(rows=20_000, batch_rows=5_000, executemany_rows=2_000,
                              history_days=1, frame_every_s=10),
}


@dataclass
class StorageBenchResult:
    size: str
    writer_rows_per_s: float = 0.0
    executemany_rows_per_s: float = 0.0
    raw_copy_rows_per_s: float = 0.0
    writer_vs_executemany: float = 0.0
    writer_vs_raw_copy: float = 0.0
    history_frames: int = 0
    history_query_ms: float = 0.0
    history_rows: int = 0
    notes: list[str] = field(default_factory=list)


def _position_rows(count: int, start: datetime, book: str) -> list[tuple]:
    """Distinct frame-position rows: 20 symbols per 1-second frame."""
    rows = []
    for n in range(count):
        ts = start + timedelta(seconds=n // 20)
        symbol = f"S{n % 20:02d}USDT"
        rows.append((ts, "account", book, "1h", "bar", "bench", symbol, None, 1.5, 100.0,
                     150.0, 0.015, 0.01, 0.05, 0.0001, "S00USDT", "core", 0.5, False, 0.1))
    return rows


def _frame_rows(count: int, start: datetime, every_s: int, book: str) -> list[tuple]:
    return [(start + timedelta(seconds=n * every_s), "account", book, "1h", "bar", "bench",
             book, None, 1e6, 1.2, 0.4, 0.6 + (n % 97) / 1000, 0.7, 3.1, 0.2, 0.3, 2.5, 1e4,
             0.5, 0.1, False, 0.2, False, "{}") for n in range(count)]


def _scratch_database(admin_url: str) -> tuple[str, str]:
    name = f"heat_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def run(admin_url: str, size_name: str = "full") -> StorageBenchResult:
    size = SIZES[size_name]
    result = StorageBenchResult(size=size_name)
    name, url = _scratch_database(admin_url)
    try:
        settings = DatabaseSettings(database_url=url, writer_password=secrets.token_urlsafe(16),
                              writer_url=None)
        migrations.migrate(settings)
        start = datetime(2026, 1, 1, tzinfo=UTC)
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

            frames = size.history_days * 86400 // size.frame_every_s
            history_start = start - timedelta(days=size.history_days)
            frame_table = tables.FRAMES
            frame_columns = sql.SQL(", ").join(map(sql.Identifier, frame_table.column_names))
            with connection.cursor() as cursor, cursor.copy(sql.SQL(
                    "COPY heat.frames ({}) FROM STDIN (FORMAT BINARY)").format(
                        frame_columns)) as copy:
                copy.set_types(frame_table.column_types)
                for row in _frame_rows(frames, history_start, size.frame_every_s, "acct-h"):
                    copy.write_row(row)
            connection.commit()
            connection.execute("ANALYZE heat.frames")
            result.history_frames = frames
            query = ("SELECT bucket, correlated_exposure_avg, max_cluster_concentration_max "
                     "FROM heat_api.frame_metrics_1h WHERE book_kind = 'account' "
                     "AND book = %s AND timeframe = '1h' AND bucket >= %s AND bucket < %s "
                     "ORDER BY bucket")
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                fetched = connection.execute(query, ("acct-h", history_start, start)).fetchall()
                timings.append(time.perf_counter() - started)
            result.history_query_ms = min(timings) * 1000
            result.history_rows = len(fetched)
        result.writer_vs_executemany = result.writer_rows_per_s / result.executemany_rows_per_s
        result.writer_vs_raw_copy = result.writer_rows_per_s / result.raw_copy_rows_per_s
        if not migrations.status(settings)[1].usable:
            result.notes.append("plain PostgreSQL: the hourly rollup is a view over raw frames "
                                "(TimescaleDB serves it from a continuous aggregate)")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
    return result


def as_dict(result: StorageBenchResult) -> dict[str, object]:
    return asdict(result)
