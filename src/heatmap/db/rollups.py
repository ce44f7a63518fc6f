"""The 1m/1h/1d rollups after a backfill: refresh TimescaleDB's continuous aggregates over
the range that was written.

On TimescaleDB the rollups of ``heat_api`` are continuous aggregates. Their refresh
policies look back 1 day (1m), 3 days (1h) and 7 days (1d); rows written later for older
times (a replay of history, a recomputation with new parameters, a writer catching up
after a long outage) stay out of the rollups until that range is refreshed. On plain
PostgreSQL the rollups are plain views over the raw rows and need nothing.

A refresh recomputes only the buckets TimescaleDB recorded as changed inside the window,
so refreshing a wide window costs little where nothing was written. Windows never cover
a range whose raw chunks were dropped (see :func:`refresh_windows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

import psycopg

from heatmap.settings.database import DatabaseSettings

SCHEMA = "heat"
# Refresh windows are whole UTC days: a multiple of every rollup bucket (1 minute, 1 hour,
# 1 day), and the chunk interval of the rollups' sources (frames, frame_clusters), so a
# window starting at the oldest chunk starts on a bucket boundary too.
WINDOW_ALIGNMENT = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RollupRefreshError(RuntimeError):
    """A refresh failed; the message says what to do."""


@dataclass(frozen=True)
class RefreshWindow:
    """One continuous aggregate refreshed over ``[start, end)`` (aware UTC datetimes)."""

    aggregate: str
    start: datetime
    end: datetime


def _floor(moment: datetime, step: timedelta = WINDOW_ALIGNMENT) -> datetime:
    return _EPOCH + (moment - _EPOCH) // step * step


def _ceil(moment: datetime, step: timedelta = WINDOW_ALIGNMENT) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


def chunk_runs(chunks: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Chunk ranges ``[start, end)`` merged where they touch: the stretches of time that
    still have raw chunks, in order."""
    runs: list[tuple[datetime, datetime]] = []
    for start, end in sorted(chunks):
        if runs and start <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], end))
        else:
            runs.append((start, end))
    return runs


def refresh_windows(from_ts: datetime | None, to_ts: datetime | None,
                    chunks: list[tuple[datetime, datetime]], now: datetime
                    ) -> list[tuple[datetime, datetime]]:
    """The windows ``[start, end)`` that make rows written between ``from_ts`` and ``to_ts``
    (inclusive; None: unbounded) visible in an aggregate whose source has ``chunks``.

    Whole UTC days around the written range, only where raw chunks remain: TimescaleDB
    records dropped chunks (retention) as changed, and a refresh over them would delete
    the rollup rows kept after the raw rows are gone. Retention by creation time drops
    chunks out of time order (live days go while an older backfill stays), so the gaps
    can lie anywhere, not only before the oldest chunk. Each window ends at the start of
    the current day at the latest: everything later lies inside every refresh policy's
    window, and the bucket being written stays with the real-time part.
    """
    low = _floor(from_ts) if from_ts is not None else None
    high = _floor(now)
    if to_ts is not None:
        high = min(high, _floor(to_ts) + WINDOW_ALIGNMENT)
    windows = []
    for run_start, run_end in chunk_runs(chunks):
        start, end = _ceil(run_start), min(_floor(run_end), high)
        if low is not None:
            start = max(start, low)
        if start < end:
            windows.append((start, end))
    return windows


_AGGREGATES = """
    SELECT format('%%I.%%I', view_schema, view_name), hypertable_schema, hypertable_name,
           pg_has_role(view_owner, 'USAGE')
    FROM timescaledb_information.continuous_aggregates
    WHERE view_schema = %s
    ORDER BY view_name
"""
_CHUNKS = """
    SELECT range_start, range_end FROM timescaledb_information.chunks
    WHERE hypertable_schema = %s AND hypertable_name = %s
"""


def _value(connection: psycopg.Connection, query: LiteralString, params: tuple = ()) -> Any:
    """The one value of a one-row query."""
    row = connection.execute(query, params).fetchone()
    return None if row is None else row[0]


def _aggregates(connection: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(aggregate, source schema, source table) of every rollup; none without TimescaleDB.

    Only the aggregates' owner may refresh them (and see every chunk of their sources).
    """
    if not connection.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return []
    aggregates = connection.execute(_AGGREGATES, (SCHEMA,)).fetchall()
    for name, _, _, owned in aggregates:
        if not owned:
            raise RollupRefreshError(
                f"cannot refresh {name}: only its owner may; set HEAT_DATABASE_URL to the "
                "role that ran heat db migrate")
    return [(name, schema, table) for name, schema, table, _ in aggregates]


def refresh_rollups(settings: DatabaseSettings, from_ts: datetime | None = None,
                    to_ts: datetime | None = None) -> list[RefreshWindow]:
    """Refresh every rollup aggregate over the rows written from ``from_ts`` to ``to_ts``
    (aware datetimes, inclusive; None: from the oldest raw rows / up to now).

    Connects with the owner URL (``HEAT_DATABASE_URL``): TimescaleDB lets only the owner
    of an aggregate refresh it, and not from inside a function, so no grant or
    SECURITY DEFINER function can hand this to ``heat_writer``. Returns the windows
    refreshed: none on plain PostgreSQL, whose rollups are always current.
    """
    if from_ts is not None and to_ts is not None and from_ts > to_ts:
        raise ValueError(f"the range starts after it ends ({from_ts.isoformat()} > "
                         f"{to_ts.isoformat()})")
    refreshed = []
    # refresh_continuous_aggregate() refuses to run inside a transaction block.
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        now = _value(connection, "SELECT now()")
        for aggregate, source_schema, source_table in _aggregates(connection):
            chunks = connection.execute(_CHUNKS, (source_schema, source_table)).fetchall()
            for window in refresh_windows(from_ts, to_ts, chunks, now):
                connection.execute("CALL refresh_continuous_aggregate(%s, %s, %s)",
                                   (aggregate, *window))
                refreshed.append(RefreshWindow(aggregate, *window))
    return refreshed
