"""Retention of the TimescaleDB layer: the policies ``HEAT_RETENTION_*`` ask for, applied on
every ``heat db migrate`` and shown by ``heat db status`` (what a write would lose to
them: :mod:`heatmap.db.drops`).

A retention policy drops whole chunks by their *creation* time (``drop_created_before``):
a chunk goes once it was loaded longer ago than its window, whatever the times of its
rows. Live data is then dropped about one window after it was written, like an age-based
policy, while a backfill of old history (a replay of 2018) is kept for the window from the
day it was loaded instead of being dropped by the next run. A window of ``off`` means no
policy. The 1m/1h/1d rollups (continuous aggregates) keep their rows after the raw frames
are dropped: their refresh policies never look back further than the raw frames are kept
(see :func:`refresh_start_offset`), and their own retention is off unless configured.

Policies are compared with the settings on every migration and replaced where they
differ, so changing a window and running ``heat db migrate`` again is enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from heatmap.settings.database import RETENTION_GROUPS, DatabaseSettings, RetentionGroup

SCHEMA = "heat"
# The relations each retention setting covers.
RETENTION_TABLES: dict[RetentionGroup, tuple[str, ...]] = {
    "prices": ("prices",),
    "frames": ("frames", "frame_positions", "frame_clusters", "correlations"),
    "events": ("positions", "account_equity", "alerts"),
    "deadletters": ("deadletters",),
    "rollups": ("frame_metrics_1m_cagg", "frame_metrics_1h_cagg", "frame_metrics_1d_cagg",
                "cluster_metrics_1m_cagg", "cluster_metrics_1h_cagg",
                "cluster_metrics_1d_cagg"),
}
# Chunk interval of the rollups' sources (frames, frame_clusters; 0001_hypertables.sql).
SOURCE_CHUNK_INTERVAL = timedelta(days=1)


class RetentionError(RuntimeError):
    """A retention setting the database cannot apply; the message says which and why."""


@dataclass(frozen=True)
class RefreshPolicy:
    """A rollup's refresh policy as 0002_continuous_aggregates.sql defines it.

    Each run recomputes ``[now - start_offset, now - end_offset)``; TimescaleDB wants
    that window to hold at least two buckets.
    """

    aggregate: str
    bucket: timedelta
    start_offset: timedelta
    end_offset: timedelta
    schedule: timedelta

    @property
    def shortest_start_offset(self) -> timedelta:
        return self.end_offset + 2 * self.bucket


_MINUTE, _HOUR, _DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
REFRESH_POLICIES = tuple(
    RefreshPolicy(f"{rollup}_{name}_cagg", bucket, start, end, schedule)
    for rollup in ("frame_metrics", "cluster_metrics")
    for name, bucket, start, end, schedule in (
        ("1m", _MINUTE, _DAY, _MINUTE, 5 * _MINUTE),
        ("1h", _HOUR, 3 * _DAY, _HOUR, 30 * _MINUTE),
        ("1d", _DAY, 7 * _DAY, _HOUR, _HOUR)))


@dataclass(frozen=True)
class RetentionStatus:
    """One relation's configured window and the policy the database has.

    ``policy`` is ``"creation time"`` or ``"data age"`` (what the policy drops by) or
    None (no policy); ``policy_window`` its window as the server prints it.
    """

    group: RetentionGroup
    relation: str
    window: str | None
    policy: str | None = None
    policy_window: str | None = None
    next_run: datetime | None = None


def _value(connection: psycopg.Connection, query: LiteralString,
           params: tuple[Any, ...] | dict[str, Any] = ()) -> Any:
    row = connection.execute(query, params).fetchone()
    return None if row is None else row[0]


def has_timescaledb(connection: psycopg.Connection) -> bool:
    return bool(_value(connection, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"))


@dataclass(frozen=True)
class Window:
    """A retention window: as configured (passed to the server as is, so '3 years' stays
    three calendar years) and as the server reads it."""

    text: str
    interval: timedelta


def checked_windows(connection: psycopg.Connection, settings: DatabaseSettings
                    ) -> dict[RetentionGroup, Window | None]:
    """Each group's window (None: off); one line naming the variable when one is not a
    positive interval."""
    windows: dict[RetentionGroup, Window | None] = {}
    for group in RETENTION_GROUPS:
        text = settings.retention_window(group)
        if text is None:
            windows[group] = None
            continue
        variable = f"HEAT_RETENTION_{group.upper()}"
        try:
            with connection.transaction():
                interval = _value(connection, "SELECT %s::interval", (text,))
        except psycopg.DataError as error:
            raise RetentionError(f"{variable}={text!r} is not an interval: give e.g. "
                                 "'180 days' or 'off'") from error
        if not isinstance(interval, timedelta) or interval <= timedelta(0):
            raise RetentionError(f"{variable}={text!r} must be a positive interval or 'off'")
        windows[group] = Window(text, interval)
    return windows


def refresh_start_offset(policy: RefreshPolicy, frames_window: timedelta | None) -> timedelta:
    """How far back a rollup's refresh policy may look when raw frames are kept
    ``frames_window`` (None: forever).

    A refresh over a range whose raw chunks were dropped deletes the rollup rows there
    (TimescaleDB records a dropped chunk as changed). Live chunks are created when their
    first row arrives, so a chunk reaching into the refresh window was created less than
    ``start_offset`` plus one chunk interval ago: it is still kept while that is within
    ``frames_window``.
    """
    if frames_window is None:
        return policy.start_offset
    start_offset = min(policy.start_offset, frames_window - SOURCE_CHUNK_INTERVAL)
    if start_offset < policy.shortest_start_offset:
        needed = policy.shortest_start_offset + SOURCE_CHUNK_INTERVAL
        raise RetentionError(
            f"HEAT_RETENTION_FRAMES is shorter than the rollups need: {policy.aggregate} "
            f"refreshes from raw frames up to {_days(needed)} old; keep frames at least "
            "that long or set it to 'off'")
    return start_offset


def _days(interval: timedelta) -> str:
    """``3 days`` or ``3 days and 1 hour`` (whole hours; shorter parts are not needed)."""
    days, hours = interval.days, interval.seconds // 3600
    text = f"{days} day{'s' if days != 1 else ''}"
    return text + (f" and {hours} hour{'s' if hours != 1 else ''}" if hours else "")


def _managed(connection: psycopg.Connection, relation: str) -> bool:
    """Whether a relation of schema heat is a hypertable or a rollup (and so has jobs)."""
    return bool(_value(connection, """
        SELECT 1 FROM timescaledb_information.hypertables
        WHERE hypertable_schema = %(schema)s AND hypertable_name = %(name)s
        UNION ALL
        SELECT 1 FROM timescaledb_information.continuous_aggregates
        WHERE view_schema = %(schema)s AND view_name = %(name)s""",
        {"schema": SCHEMA, "name": relation}))


def _job(connection: psycopg.Connection, proc: str, relation: str
         ) -> tuple[int, dict[str, Any], datetime | None] | None:
    """(job id, config, next start) of the ``proc`` job of a relation of schema heat, if
    any (TimescaleDB names a rollup's jobs after the rollup, not its materialization)."""
    row = connection.execute(
        # A job not run yet starts at -infinity (as soon as the scheduler sees it),
        # which has no Python datetime.
        "SELECT job_id, config, CASE WHEN next_start = '-infinity' THEN now() "
        "ELSE next_start END "
        "FROM timescaledb_information.jobs "
        "WHERE proc_name = %s AND hypertable_schema = %s AND hypertable_name = %s",
        (proc, SCHEMA, relation)).fetchone()
    return None if row is None else (row[0], row[1] or {}, row[2])


def _same_interval(connection: psycopg.Connection, text: Any, interval: str | timedelta
                   ) -> bool:
    return text is not None and bool(_value(connection, "SELECT %s::interval = %s::interval",
                                            (str(text), interval)))


def _regclass(connection: psycopg.Connection, relation: str) -> str:
    """A relation of schema heat as regclass input text (quoted like an identifier)."""
    return sql.Identifier(SCHEMA, relation).as_string(connection)


def _set_retention(connection: psycopg.Connection, relation: str,
                   window: Window | None) -> bool:
    """Make ``relation``'s retention policy drop chunks created ``window`` ago (None: no
    policy); whether it changed."""
    if not _managed(connection, relation):
        return False
    job = _job(connection, "policy_retention", relation)
    if job is None and window is None:
        return False
    if job is not None and window is not None and set(job[1]) <= {
            "hypertable_id", "drop_created_before"} and _same_interval(
            connection, job[1].get("drop_created_before"), window.text):
        return False
    name = _regclass(connection, relation)
    connection.execute("SELECT remove_retention_policy(%s::regclass, if_exists => true)",
                       (name,))
    if window is not None:
        connection.execute("SELECT add_retention_policy(%s::regclass, "
                           "drop_created_before => %s::interval)", (name, window.text))
    return True


def _set_refresh(connection: psycopg.Connection, policy: RefreshPolicy,
                 start_offset: timedelta) -> bool:
    """Make a rollup's refresh policy look back ``start_offset``; whether it changed."""
    if not _managed(connection, policy.aggregate):
        return False
    job = _job(connection, "policy_refresh_continuous_aggregate", policy.aggregate)
    if job is not None and _same_interval(connection, job[1].get("start_offset"), start_offset):
        return False
    name = _regclass(connection, policy.aggregate)
    connection.execute("SELECT remove_continuous_aggregate_policy(%s::regclass, "
                       "if_exists => true)", (name,))
    connection.execute("SELECT add_continuous_aggregate_policy(%s::regclass, "
                       "start_offset => %s, end_offset => %s, schedule_interval => %s)",
                       (name, start_offset, policy.end_offset, policy.schedule))
    return True


def apply_policies(connection: psycopg.Connection, settings: DatabaseSettings) -> list[str]:
    """Replace every retention and rollup refresh policy that differs from the settings
    (TimescaleDB layer applied); the relations changed. One transaction."""
    windows = checked_windows(connection, settings)
    frames = windows["frames"]
    frames_interval = None if frames is None else frames.interval
    starts = {policy.aggregate: refresh_start_offset(policy, frames_interval)
              for policy in REFRESH_POLICIES}
    changed = []
    with connection.transaction():
        for policy in REFRESH_POLICIES:
            if _set_refresh(connection, policy, starts[policy.aggregate]):
                changed.append(f"{SCHEMA}.{policy.aggregate} refresh")
        for group, relations in RETENTION_TABLES.items():
            for relation in relations:
                if _set_retention(connection, relation, windows[group]):
                    changed.append(f"{SCHEMA}.{relation} retention")
    return changed


def status(connection: psycopg.Connection, settings: DatabaseSettings
           ) -> list[RetentionStatus]:
    """Every relation's configured window and, on TimescaleDB, its retention policy."""
    timescale = has_timescaledb(connection)
    result = []
    for group, relations in RETENTION_TABLES.items():
        for relation in relations:
            window = settings.retention_window(group)
            job = _job(connection, "policy_retention", relation) if timescale else None
            if job is None:
                result.append(RetentionStatus(group, relation, window))
                continue
            config = job[1]
            by_creation = "drop_created_before" in config
            result.append(RetentionStatus(
                group, relation, window, "creation time" if by_creation else "data age",
                str(config.get("drop_created_before" if by_creation else "drop_after")),
                job[2]))
    return result


def read_status(settings: DatabaseSettings) -> list[RetentionStatus]:
    """:func:`status` of the database of ``HEAT_DATABASE_URL``."""
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        return status(connection, settings)
