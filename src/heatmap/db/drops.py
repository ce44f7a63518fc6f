"""What retention would drop of a write before a full window from now: rows older than a
policy that drops by data age keeps, and rows going into chunks loaded earlier (retention
by creation time drops them with those chunks). ``heat replay --to-db`` says so in one
line before writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import psycopg

from heatmap.db.retention import SCHEMA, has_timescaledb

if TYPE_CHECKING:  # the writer loads only where a command writes
    from heatmap.db.writer import HeatBatch

T = TypeVar("T")


@dataclass(frozen=True)
class AgeDrop:
    """A relation whose policy drops rows by their time: rows before ``cutoff`` go at its
    next run."""

    relation: str
    drop_after: str
    cutoff: datetime

    def describe(self) -> str:
        return f"{self.relation} (by data age, {self.drop_after}: rows before " \
               f"{self.cutoff:%Y-%m-%d} at its next run)"


@dataclass(frozen=True)
class ChunkDrop:
    """A relation whose rows in a time range go into chunks loaded on ``loaded``: they are
    dropped with those chunks at ``dropped_at``, before a full window from now."""

    relation: str
    loaded: datetime
    dropped_at: datetime

    def describe(self) -> str:
        return f"{self.relation} (into chunks loaded {self.loaded:%Y-%m-%d}, dropped with " \
               f"them from {self.dropped_at:%Y-%m-%d})"


# What a write may lose, either way; each says so with describe().
Drop = AgeDrop | ChunkDrop


def age_drops(connection: psycopg.Connection, earliest: datetime) -> list[AgeDrop]:
    """Relations of schema heat whose retention drops rows by their time, where rows from
    ``earliest`` on would be dropped at the policy's next run (none without TimescaleDB).

    The layer's own policies drop by creation time; this finds any that do not (a policy
    added by hand, or one a migration has not replaced yet).
    """
    if not has_timescaledb(connection):
        return []
    rows = connection.execute("""
        SELECT hypertable_name, config ->> 'drop_after',
               now() - (config ->> 'drop_after')::interval
        FROM timescaledb_information.jobs
        WHERE proc_name = 'policy_retention' AND hypertable_schema = %s
          AND jsonb_typeof(config -> 'drop_after') = 'string'
        ORDER BY 1""", (SCHEMA,)).fetchall()
    return [AgeDrop(f"{SCHEMA}.{relation}", drop_after, cutoff)
            for relation, drop_after, cutoff in rows if earliest < cutoff]


def chunk_drops(connection: psycopg.Connection, first: datetime, last: datetime,
                margin: timedelta = timedelta(days=1)) -> list[ChunkDrop]:
    """Relations of schema heat whose rows from ``first`` to ``last`` would go into chunks
    loaded more than ``margin`` ago, and so leave with them before a full window from now.

    Retention by creation time keeps a chunk for its window from when it was created: rows
    written later into it (late data, a second replay of the same days) go with it. The
    margin leaves out today's live chunks and a replay repeated the same day.
    """
    if not has_timescaledb(connection):
        return []
    rows = connection.execute("""
        SELECT j.hypertable_name, min(c.chunk_creation_time),
               min(c.chunk_creation_time) + (j.config ->> 'drop_created_before')::interval
        FROM timescaledb_information.jobs j
        JOIN timescaledb_information.chunks c
          ON c.hypertable_schema = j.hypertable_schema
         AND c.hypertable_name = j.hypertable_name
        WHERE j.proc_name = 'policy_retention' AND j.hypertable_schema = %(schema)s
          AND jsonb_typeof(j.config -> 'drop_created_before') = 'string'
          AND c.range_end > %(first)s AND c.range_start <= %(last)s
        GROUP BY j.hypertable_name, j.config
        HAVING min(c.chunk_creation_time) < now() - %(margin)s
        ORDER BY 1""", {"schema": SCHEMA, "first": first, "last": last,
                        "margin": margin}).fetchall()
    return [ChunkDrop(f"{SCHEMA}.{relation}", loaded, dropped_at)
            for relation, loaded, dropped_at in rows]



@contextmanager
def checked_writes(write: Callable[[HeatBatch], T], url: str,
                   on_drops: Callable[[list[Drop]], None]
                   ) -> Iterator[Callable[[HeatBatch], T]]:
    """``write`` (of a backfill in time order), which before a batch is stored hands
    ``on_drops`` the relations where retention would drop some of it before a full window
    from now, once: rows older than an age-based policy keeps, rows going into chunks
    loaded earlier (see :func:`age_drops`, :func:`chunk_drops`).

    The first batch holds the backfill's earliest rows, so age is checked on it; chunks on
    every batch until something was found. Checks use one connection to the database of
    ``url`` while the context lasts (any role may read the job and chunk lists).
    """
    with psycopg.connect(url, autocommit=True) as connection:
        first_batch, said = True, False

        def checked_write(batch: HeatBatch) -> T:
            nonlocal first_batch, said
            times = None if said else batch.time_range()
            if times is not None:
                drops: list[Drop] = [
                    *(age_drops(connection, times[0]) if first_batch else []),
                    *chunk_drops(connection, *times)]
                first_batch = False
                if drops:
                    said = True
                    on_drops(drops)
            return write(batch)

        yield checked_write
