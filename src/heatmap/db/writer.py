"""The batch writer: one transaction per batch, idempotent, retried on connection loss.

Each batch is copied (binary COPY) into per-connection temporary staging
tables and merged with ``INSERT ... SELECT`` (falling back to ``ON CONFLICT DO
NOTHING`` when some rows exist already): fast like COPY, and writing the same
rows again changes nothing. When the
connection drops mid-batch, even during COMMIT, the whole batch is retried:
what had committed is skipped by the natural keys, so nothing is lost and
nothing is duplicated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from heatmap.db import tables
from heatmap.db.tables import CorrelationSnapshot, DeadLetter, Table
from heatmap.schema import Account, Alert, AlertLevels, Frame, Position, Price
from heatmap.settings.database import DatabaseSettings

log = logging.getLogger(__name__)


@dataclass
class HeatBatch:
    """Everything one write stores, in one transaction."""

    prices: list[Price] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    correlations: list[CorrelationSnapshot] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    alert_levels: list[AlertLevels] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)

    def time_range(self) -> tuple[datetime, datetime] | None:
        """The earliest and latest time of the rows this batch stores (None: none)."""
        times = [row[table.column_names.index("ts")] for table, rows in self.rows()
                 for row in rows]
        return (min(times), max(times)) if times else None

    def rows(self) -> list[tuple[Table, list[tuple]]]:
        frames, frame_positions, frame_clusters = tables.frame_rows(self.frames)
        return [
            (tables.PRICES, list(tables.price_rows(self.prices))),
            (tables.POSITIONS, list(tables.position_rows(self.positions))),
            (tables.ACCOUNT_EQUITY, list(tables.account_rows(self.accounts))),
            (tables.FRAMES, frames),
            (tables.FRAME_POSITIONS, frame_positions),
            (tables.FRAME_CLUSTERS, frame_clusters),
            (tables.CORRELATIONS, list(tables.correlation_rows(self.correlations))),
            (tables.ALERTS, list(tables.alert_rows(self.alerts))),
            (tables.ALERT_LEVELS, list(tables.alert_level_rows(self.alert_levels))),
            (tables.DEADLETTERS, list(tables.deadletter_rows(self.deadletters))),
        ]


def _last_per_key(table: Table, rows: list[tuple]) -> list[tuple]:
    """The last row of each natural key (a batch may carry a key twice: the later wins)."""
    indexes = table.key_indexes
    latest: dict[tuple, tuple] = {}
    for row in rows:
        latest[tuple(row[i] for i in indexes)] = row
    return list(latest.values()) if len(latest) != len(rows) else rows


def _on_conflict(table: Table) -> sql.Composable:
    if not table.replace:
        return sql.SQL(" ON CONFLICT DO NOTHING")
    keys = sql.SQL(", ").join(map(sql.Identifier, table.key))
    values = [c for c in table.column_names if c not in table.key]
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in values)
    # Only a changed row is rewritten: a plain repeat stays a no-op (and counts 0).
    stored = sql.SQL(", ").join(sql.Identifier("heat", table.name, c) for c in values)
    incoming = sql.SQL(", ").join(sql.Identifier("excluded", c) for c in values)
    return sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})").format(
        keys, updates, stored, incoming)


def _stage(table: Table) -> sql.Identifier:
    return sql.Identifier(f"stage_{table.name}")


def _create_staging(connection: psycopg.Connection) -> None:
    """Temporary staging tables of this connection (emptied at every commit)."""
    for table in tables.ALL_TABLES:
        connection.execute(sql.SQL(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS").format(_stage(table), sql.Identifier("heat", table.name)))
    connection.commit()


class HeatWriter:
    """Writes :class:`HeatBatch` es through a connection pool.

    Parameters
    ----------
    conninfo : str
        A ``heat_writer`` URL (never a superuser's).
    settings : DatabaseSettings
        Pool size and retry policy.
    """

    def __init__(self, conninfo: str, settings: DatabaseSettings | None = None) -> None:
        self.settings = settings or DatabaseSettings()
        self.pool = ConnectionPool(
            conninfo, min_size=self.settings.pool_min_size, max_size=self.settings.pool_max_size,
            configure=_create_staging, check=ConnectionPool.check_connection, open=True,
            name="heat-writer")
        self.retries = 0

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> HeatWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, batch: HeatBatch) -> dict[str, int]:
        """Store the batch; returns the rows newly inserted per table (0 for repeats)."""
        return self.write_rows([(table, rows) for table, rows in batch.rows() if rows])

    def write_rows(self, work: list[tuple[Table, list[tuple]]]) -> dict[str, int]:
        """Store rows already in table column order, in one transaction (see :meth:`write`)."""
        work = [(table, _last_per_key(table, rows)) for table, rows in work]
        if not work:
            return {}
        attempt = 0
        while True:
            try:
                return self._write_once(work)
            except psycopg.OperationalError as error:
                attempt += 1
                if attempt >= self.settings.retry_attempts:
                    raise
                self.retries += 1
                delay_s = self.settings.retry_backoff_s * 2 ** (attempt - 1)
                log.warning("database write failed (%s); retry %d in %.2f s", error, attempt,
                            delay_s)
                time.sleep(delay_s)

    def _write_once(self, work: Iterable[tuple[Table, list[tuple]]]) -> dict[str, int]:
        inserted: dict[str, int] = {}
        with self.pool.connection() as connection, connection.transaction():
            cursor = connection.cursor()
            for table, rows in work:
                stage = _stage(table)
                columns = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
                with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                        stage, columns)) as copy:
                    copy.set_types(table.column_types)
                    for row in rows:
                        copy.write_row(row)
                merge = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    sql.Identifier("heat", table.name), columns, columns, stage)
                try:
                    # New rows are the common case, and a plain INSERT is much cheaper than
                    # one with ON CONFLICT; a repeat falls back to the conflict rule.
                    with connection.transaction():
                        cursor.execute(merge)
                except psycopg.errors.UniqueViolation:
                    cursor.execute(merge + _on_conflict(table))
                inserted[table.name] = cursor.rowcount
        return inserted
