"""Retention on a TimescaleDB whose job scheduler runs, as in production: a backfill of
2018 outlives every job, a live chunk older than its window goes, ``off`` means no policy,
and ``heat db migrate`` follows changed settings. Plain PostgreSQL keeps every row and
still shows the windows.

Jobs run with ``CALL run_job`` for every job of the database, after the scheduler had its
go. In this build (TimescaleDB 2.28.3 of shared/timescaledb on PostgreSQL 15) the
scheduler does start every policy in a background worker as soon as it is added, but
each run there fails at once ("cannot drop portal "" while it is being set up", in
``timescaledb_information.job_errors``): what the scheduler would run is run in the
foreground instead, in the order a day of policy runs has.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import DatabaseServer, new_database, settings_for
from heatmap.db import drops, migrations, retention
from heatmap.db.rollups import refresh_rollups
from heatmap.db.writer import HeatBatch, HeatWriter
from heatmap.schema import Price
from heatmap.settings.database import WRITER_ROLE
from support.sample_frames import BAR_MS, engine_frames
from support.waiting import wait_until

ROOT = Path(__file__).parents[2]
DAY_MS = 86_400_000
RAW_TABLES = ("prices", "positions", "account_equity", "frames", "frame_positions",
              "frame_clusters", "correlations", "alerts")
ROLLUP_VIEWS = tuple(f"{rollup}_{resolution}" for rollup in ("frame_metrics", "cluster_metrics")
                     for resolution in ("1m", "1h", "1d"))
# Refresh first, then compress, then retain: the order a day of policy runs has.
JOB_ORDER = ("policy_refresh_continuous_aggregate", "policy_compression", "policy_retention")


@pytest.fixture
def scheduled(scheduled_timescaledb_server: DatabaseServer) -> Iterator[Any]:
    """A migrated database (default settings) on the TimescaleDB server whose scheduler
    runs; the scheduler has started this database's jobs once."""
    with new_database(scheduled_timescaledb_server) as url:
        settings = settings_for(url)
        migrations.migrate(settings)
        wait_until(lambda: _every_job_started(url), timeout_s=60, interval_s=0.2,
                   message="the scheduler did not start the database's jobs")
        yield settings


def _every_job_started(url: str) -> bool:
    with psycopg.connect(url) as connection:
        return bool(connection.execute(
            "SELECT count(*) > 0 AND bool_and(s.last_run_started_at IS NOT NULL) "
            "FROM timescaledb_information.jobs j "
            "JOIN timescaledb_information.job_stats s USING (job_id) "
            "WHERE j.hypertable_schema = 'heat'").fetchone()[0])


def _run_every_job(url: str) -> int:
    """Run every job of schema heat once, in :data:`JOB_ORDER`; how many ran."""
    with psycopg.connect(url, autocommit=True) as connection:
        jobs = connection.execute(
            "SELECT job_id, proc_name FROM timescaledb_information.jobs "
            "WHERE hypertable_schema = 'heat'").fetchall()
        assert {proc for _, proc in jobs} == set(JOB_ORDER)
        for proc in JOB_ORDER:
            for job_id in sorted(job for job, name in jobs if name == proc):
                connection.execute("CALL run_job(%s)", (job_id,))
    return len(jobs)


def _counts(url: str) -> dict[str, int]:
    """Rows of every raw table and of every rollup view."""
    with psycopg.connect(url) as connection:
        raw = {table: connection.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier("heat", table))).fetchone()[0] for table in RAW_TABLES}
        rollups = {view: connection.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier("heat_api", view))).fetchone()[0] for view in ROLLUP_VIEWS}
    return {**raw, **rollups}


def _replay_files(tmp_path: Path, end: str) -> list[str]:
    """The real 5-minute bars and the replay books, rows before ``end``; as arguments."""

    def until(path: Path) -> str:
        header, *rows = path.read_text().splitlines()
        target = tmp_path / path.name
        target.write_text("\n".join([header, *(row for row in rows if row < end)]) + "\n")
        return str(target)

    books = ROOT / "tests" / "data" / "replay"
    return ["--prices", *(until(path) for path in sorted((ROOT / "data" / "binance-5m").glob(
        "*.csv"))), "--positions", until(books / "positions.csv"),
        "--accounts", until(books / "accounts.csv")]


def _replay_to_db(settings: Any, files: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**{name: value for name, value in os.environ.items()
              if not name.startswith("HEAT_")},
           "HEAT_DATABASE_URL": settings.admin_url(),
           "HEAT_WRITER_PASSWORD": settings.role_password(WRITER_ROLE), "COLUMNS": "400"}
    completed = subprocess.run(
        [sys.executable, "-m", "heatmap.cli.main", "replay", *files, "--bar", "5m",
         "--timeframes", "1h", "--to-db"], env=env, capture_output=True, text=True,
        timeout=600)
    assert completed.returncode == 0, completed.stderr
    return completed


def test_a_backfill_of_2018_outlives_every_job(scheduled, tmp_path: Path) -> None:
    settings = scheduled
    url = settings.admin_url()
    completed = _replay_to_db(settings, _replay_files(tmp_path, "2018-01-13"))
    assert "warning" not in completed.stderr  # creation-time retention drops none of it
    before = _counts(url)
    assert all(before.values()), before

    assert _run_every_job(url) > 20
    with psycopg.connect(url) as connection:
        compressed = connection.execute(
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_schema = 'heat' AND is_compressed").fetchone()[0]
    assert compressed > 0  # the jobs did run: 2018 is old enough to compress
    assert _counts(url) == before
    print(f"rows before and after every job: {before}")


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000) // BAR_MS * BAR_MS


def _write(settings: Any, batch: HeatBatch) -> None:
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write(batch)


def _prices(start_ms: int, bars: int) -> list[Price]:
    return [Price(symbol="BTCUSDT", ts=datetime.fromtimestamp((start_ms + bar * BAR_MS) / 1000,
                                                             tz=UTC),
                  price=100.0 + bar, source="test") for bar in range(bars)]


def test_a_live_chunk_older_than_its_window_is_dropped(
        scheduled_timescaledb_server: DatabaseServer) -> None:
    with new_database(scheduled_timescaledb_server) as url:
        settings = settings_for(url, retention_prices="1 second")
        migrations.migrate(settings)
        _write(settings, HeatBatch(prices=_prices(_now_ms() - 10 * BAR_MS, 10),
                                   frames=engine_frames(n_bars=10, start_ms=_now_ms())))

        def chunks_older_than_the_window() -> bool:
            with psycopg.connect(url) as connection:
                return bool(connection.execute(
                    "SELECT bool_and(chunk_creation_time < now() - INTERVAL '1 second') "
                    "FROM timescaledb_information.chunks "
                    "WHERE hypertable_schema = 'heat' AND hypertable_name = 'prices'"
                ).fetchone()[0])

        wait_until(chunks_older_than_the_window, timeout_s=30)
        _run_every_job(url)
        counts = _counts(url)
        assert counts["prices"] == 0
        assert counts["frames"] > 0  # 180 days


def _retention_jobs(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url) as connection:
        return dict(connection.execute(
            "SELECT hypertable_name, config - 'hypertable_id' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_schema = 'heat'").fetchall())


def _refresh_starts(url: str) -> dict[str, str]:
    with psycopg.connect(url) as connection:
        return dict(connection.execute(
            "SELECT hypertable_name, config ->> 'start_offset' "
            "FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_refresh_continuous_aggregate'").fetchall())


def test_off_means_no_policy_and_migrate_follows_the_settings(
        timescaledb_server: DatabaseServer) -> None:
    with new_database(timescaledb_server) as url:
        migrations.migrate(settings_for(url))
        jobs = _retention_jobs(url)
        frames_group = retention.RETENTION_TABLES["frames"]
        assert set(jobs) == {table for group, tables in retention.RETENTION_TABLES.items()
                             if group != "rollups" for table in tables}  # rollups: off
        assert jobs["frames"] == {"drop_created_before": "180 days"}

        # A database migrated before: age-based policies, found by the replay's check.
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("SELECT remove_retention_policy('heat.frames')")
            connection.execute("SELECT add_retention_policy('heat.frames', "
                               "drop_after => INTERVAL '180 days')")
            found = drops.age_drops(connection, datetime(2018, 1, 10, tzinfo=UTC))
            assert [drop.relation for drop in found] == ["heat.frames"]
            assert drops.age_drops(connection, datetime.now(UTC)) == []

        migrations.migrate(settings_for(url, retention_frames="off",
                                        retention_rollups="2 years"))
        jobs = _retention_jobs(url)
        assert not set(frames_group) & set(jobs)
        assert all(jobs[rollup] == {"drop_created_before": "2 years"}
                   for rollup in retention.RETENTION_TABLES["rollups"])
        assert jobs["prices"] == {"drop_created_before": "90 days"}

        migrations.migrate(settings_for(url, retention_frames="5 days"))
        jobs = _retention_jobs(url)
        assert all(jobs[table] == {"drop_created_before": "5 days"} for table in frames_group)
        assert not set(retention.RETENTION_TABLES["rollups"]) & set(jobs)
        # The rollups never refresh from chunks a 5-day retention may have dropped.
        assert _refresh_starts(url) == {
            "frame_metrics_1m_cagg": "1 day", "frame_metrics_1h_cagg": "3 days",
            "frame_metrics_1d_cagg": "4 days", "cluster_metrics_1m_cagg": "1 day",
            "cluster_metrics_1h_cagg": "3 days", "cluster_metrics_1d_cagg": "4 days"}


def test_a_refresh_after_live_chunks_are_dropped_keeps_their_rollups(
        timescale_migrated) -> None:
    """Retention by creation time drops a live day while an older backfill stays: the
    refresh over everything must skip the dropped day, not recompute it as empty."""
    settings = timescale_migrated
    day_ms = _now_ms() // DAY_MS * DAY_MS
    backfill = engine_frames(n_bars=30, account="acct-2018",
                             start_ms=int(datetime(2018, 1, 10, 12, tzinfo=UTC).timestamp())
                             * 1000)
    dropped = engine_frames(n_bars=30, account="acct-dropped",
                            start_ms=day_ms - 20 * DAY_MS + 12 * 3_600_000)
    _write(settings, HeatBatch(frames=backfill + dropped))
    refresh_rollups(settings)
    query = "SELECT * FROM heat_api.frame_metrics_1h WHERE book = %s ORDER BY 1"
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        kept = {book: connection.execute(query, (book,)).fetchall()
                for book in ("acct-2018", "acct-dropped")}
        assert all(kept.values())
        for table in ("heat.frames", "heat.frame_clusters"):
            connection.execute("SELECT drop_chunks(%s::regclass, older_than => %s, "
                               "newer_than => %s)",
                               (table, datetime.now(UTC) - timedelta(days=10),
                                datetime.now(UTC) - timedelta(days=30)))
        windows = refresh_rollups(settings)
        assert {(w.start.year, w.end.year) for w in windows} == {(2018, 2018)}
        _run_every_job(settings.admin_url())
        assert {book: connection.execute(query, (book,)).fetchall()
                for book in kept} == kept


def _status(url: str, **settings: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HEAT_DATABASE_URL": url, "COLUMNS": "200",
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), **settings}
    completed = subprocess.run([sys.executable, "-m", "heatmap.cli.main", "db", "status"],
                               env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_db_status_shows_every_window(database_server: DatabaseServer,
                                      fresh_database: str) -> None:
    settings = {"HEAT_RETENTION_FRAMES": "off", "HEAT_RETENTION_PRICES": "45 days"}
    migrations.migrate(settings_for(fresh_database, retention_frames="off",
                                    retention_prices="45 days"))
    lines = {line.split()[1]: line for line in _status(fresh_database, **settings).splitlines()
             if line.startswith("│ heat.")}
    assert len(lines) == sum(len(tables) for tables in retention.RETENTION_TABLES.values())
    assert "HEAT_RETENTION_FRAMES" in lines["heat.frames"] and " off " in lines["heat.frames"]
    assert "45 days" in lines["heat.prices"]
    if database_server.kind == "timescaledb":
        assert "by creation time, 45 days" in lines["heat.prices"]
        assert "│ none " in lines["heat.frames"]
    else:
        assert all("plain PostgreSQL keeps every row" in line for line in lines.values())


def _age_chunks(connection: psycopg.Connection, table: str, days: int) -> int:
    """Make the chunks of ``heat.<table>`` look loaded ``days`` ago (as a superuser, in the
    catalog: nothing else sets a creation time); how many."""
    return connection.execute(
        "UPDATE _timescaledb_catalog.chunk c SET creation_time = now() - make_interval("
        "days => %s) FROM _timescaledb_catalog.hypertable h "
        "WHERE h.id = c.hypertable_id AND h.schema_name = 'heat' AND h.table_name = %s",
        (days, table)).rowcount


def test_replay_says_what_retention_would_drop_early(timescale_migrated,
                                                     tmp_path: Path) -> None:
    settings = timescale_migrated
    files = _replay_files(tmp_path, "2018-01-11T03")  # frames from 2018-01-11
    assert "warning" not in _replay_to_db(settings, files).stderr  # loaded now: kept

    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        # Loaded 100 days ago: rows replayed into those chunks again leave with them.
        assert _age_chunks(connection, "frames", 100) > 0
        connection.execute("SELECT remove_retention_policy('heat.prices')")
        connection.execute("SELECT add_retention_policy('heat.prices', "
                           "drop_after => INTERVAL '90 days')")
    completed = _replay_to_db(settings, files)
    loaded = datetime.now(UTC) - timedelta(days=100)
    warnings = [line for line in completed.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "warning: retention drops some of what this replay writes early: heat.prices (by data "
        f"age, 90 days: rows before {datetime.now(UTC) - timedelta(days=90):%Y-%m-%d} at its "
        f"next run); heat.frames (into chunks loaded {loaded:%Y-%m-%d}, dropped with them "
        f"from {loaded + timedelta(days=180):%Y-%m-%d}); see `heat db status` (`heat db "
        "migrate` replaces age-based policies)"]


def test_chunk_drops_name_only_chunks_loaded_before_and_in_range(timescale_migrated) -> None:
    settings = timescale_migrated
    start = datetime(2018, 1, 10, 12, tzinfo=UTC)
    _write(settings, HeatBatch(frames=engine_frames(n_bars=30, start_ms=int(
        start.timestamp()) * 1000)))
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        assert drops.chunk_drops(connection, start, start + timedelta(hours=1)) == []
        _age_chunks(connection, "frame_clusters", 10)
        [drop] = drops.chunk_drops(connection, start, start + timedelta(hours=1))
        assert drop.relation == "heat.frame_clusters"
        assert drop.dropped_at - drop.loaded == timedelta(days=180)
        assert drops.chunk_drops(connection, start + timedelta(days=2),
                                     start + timedelta(days=3)) == []
