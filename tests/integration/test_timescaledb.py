"""The TimescaleDB layer on a real TimescaleDB: compressed history, real-time rollups, jobs,
the same read API as plain PostgreSQL, and what ``HEAT_TIMESCALEDB`` does on each server.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from heatmap.db.writer import HeatBatch, HeatWriter
from heatmap.settings.database import READER_ROLE, WRITER_ROLE
from heatmap.stack import postgres
from support.sample_frames import BAR_MS, engine_frames

HYPERTABLES = ("frames", "frame_positions", "frame_clusters")


def _snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of the frame tables, in key order (text, so values compare exactly)."""
    with psycopg.connect(url) as connection:
        return {table: connection.execute(
            psycopg.sql.SQL("SELECT t::text FROM heat.{} AS t ORDER BY 1").format(
                psycopg.sql.Identifier(table))).fetchall() for table in HYPERTABLES}


def _compress_all(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        chunks = [row[0] for table in HYPERTABLES for row in connection.execute(
            "SELECT show_chunks(%s::regclass)", (f"heat.{table}",))]
        for chunk in chunks:
            connection.execute("SELECT compress_chunk(%s::regclass, if_not_compressed => true)",
                               (chunk,))
        return len(chunks)


def _compressed_chunks(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute(
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_schema = 'heat' AND hypertable_name = ANY(%s) AND is_compressed",
            (list(HYPERTABLES),)).fetchone()[0]


def test_rewriting_compressed_history_stays_idempotent(timescale_migrated) -> None:
    settings = timescale_migrated
    frames = engine_frames(n_bars=120)
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write(HeatBatch(frames=frames))
    before = _snapshot(settings.admin_url())
    chunks = _compress_all(settings.admin_url())
    assert chunks > 0 and _compressed_chunks(settings.admin_url()) == chunks

    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write(HeatBatch(frames=frames))  # a replay of the same history
        writer.write(HeatBatch(frames=frames[: len(frames) // 2]))

    assert _snapshot(settings.admin_url()) == before


def test_a_frame_written_now_is_in_the_hourly_rollup_at_once(timescale_migrated) -> None:
    settings = timescale_migrated
    now_ms = int(time.time() * 1000) // BAR_MS * BAR_MS
    frames = engine_frames(n_bars=5, account="acct-now", start_ms=now_ms - 4 * BAR_MS)
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write(HeatBatch(frames=frames))

    with psycopg.connect(settings.role_url(READER_ROLE)) as reader:
        rollup = reader.execute(
            "SELECT sum(frames) FROM heat_api.frame_metrics_1h "
            "WHERE book = 'acct-now' AND bucket >= now() - INTERVAL '3 hours'").fetchone()[0]
    assert rollup == sum(1 for frame in frames if frame.account == "acct-now")


def _rollup_watermarks(connection: psycopg.Connection) -> dict[str, str]:
    """How far each continuous aggregate is materialized (TimescaleDB's own watermark)."""
    return dict(connection.execute(
        "SELECT user_view_name, _timescaledb_functions.to_timestamp("
        "_timescaledb_functions.cagg_watermark(mat_hypertable_id))::text "
        "FROM _timescaledb_catalog.continuous_agg").fetchall())


def test_compression_retention_and_refresh_jobs_run(timescale_migrated) -> None:
    settings = timescale_migrated
    now_ms = int(time.time() * 1000) // BAR_MS * BAR_MS
    old = engine_frames(n_bars=30, account="acct-old", start_ms=now_ms - 10 * 86_400_000)
    recent = engine_frames(n_bars=30, account="acct-new", start_ms=now_ms - 3 * 3_600_000)
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write(HeatBatch(frames=old + recent))  # old enough to compress, not to drop
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        jobs = dict(connection.execute(
            "SELECT job_id, proc_name FROM timescaledb_information.jobs "
            "WHERE hypertable_schema = 'heat' ORDER BY job_id").fetchall())
        assert set(jobs.values()) == {
            "policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"}
        before = _rollup_watermarks(connection)
        # Refresh, then compress, then retain: the order a day of policy runs has.
        for proc in ("policy_refresh_continuous_aggregate", "policy_compression",
                     "policy_retention"):
            for job_id in (job for job, name in jobs.items() if name == proc):
                connection.execute("CALL run_job(%s)", (job_id,))
        after = _rollup_watermarks(connection)
    assert _compressed_chunks(settings.admin_url()) > 0
    assert len(_snapshot(settings.admin_url())["frames"]) == len(old) + len(recent)
    assert after["frame_metrics_1h_cagg"] != before["frame_metrics_1h_cagg"]
    assert not after["frame_metrics_1h_cagg"].endswith(" BC")  # materialized up to an hour ago


def _api_shape(url: str) -> dict[str, list[tuple[str, str]]]:
    """Every ``heat_api`` relation's columns with types, and every function's signature."""
    with psycopg.connect(url) as connection:
        shape: dict[str, list[tuple[str, str]]] = {}
        for relation, column, data_type in connection.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'heat_api' ORDER BY table_name, ordinal_position"):
            shape.setdefault(relation, []).append((column, data_type))
        for name, arguments, result in connection.execute(
                "SELECT p.proname, pg_get_function_arguments(p.oid), "
                "pg_get_function_result(p.oid) FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'heat_api' "
                "ORDER BY 1, 2"):
            shape[f"{name}()"] = [(arguments, result)]
        return shape


def test_the_read_api_is_the_same_on_both_databases(postgresql_migrated,
                                                      timescale_migrated) -> None:
    plain = _api_shape(postgresql_migrated.admin_url())
    timescale = _api_shape(timescale_migrated.admin_url())
    assert plain and plain == timescale


@pytest.fixture
def unpreloaded_server(timescaledb_server, tmp_path: Path):
    """A server with the TimescaleDB extension installed but not preloaded."""
    from conftest import throwaway_cluster

    with throwaway_cluster(timescaledb_server.cluster.bin_dir, tmp_path,
                           preload_timescaledb=False) as cluster:
        yield postgres.admin_url(cluster)


def _migrate(url: str, mode: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HEAT_DATABASE_URL": url, "HEAT_TIMESCALEDB": mode,
           "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "heatmap.cli.main", "db", "migrate"],
                          capture_output=True, text=True, env=env, timeout=120)


def test_heat_timescaledb_setting_on_a_server_without_preload(unpreloaded_server) -> None:
    required = _migrate(unpreloaded_server, "require")
    assert required.returncode == 1
    assert "Traceback" not in required.stderr + required.stdout
    assert [line for line in required.stderr.splitlines() if line.strip()] == [
        "error: HEAT_TIMESCALEDB=require, but the timescaledb extension is installed "
        "but not preloaded (add it to shared_preload_libraries and restart PostgreSQL)"]

    automatic = _migrate(unpreloaded_server, "auto")
    assert automatic.returncode == 0, automatic.stderr
    notices = [line for line in automatic.stdout.splitlines() if "plain PostgreSQL" in line]
    assert notices == ["applying the plain PostgreSQL layer only: the timescaledb extension is "
                       "installed but not preloaded (add it to shared_preload_libraries and "
                       "restart PostgreSQL)"]
    assert "Traceback" not in automatic.stderr
    with psycopg.connect(unpreloaded_server) as connection:
        assert connection.execute(
            "SELECT count(*) FROM public.heat_schema_migrations WHERE series = 'timescale'"
        ).fetchone() == (0,)
        assert connection.execute("SELECT to_regclass('heat_api.frames')").fetchone()[0]


def test_heat_timescaledb_off_keeps_a_timescaledb_server_plain(timescaledb_server) -> None:
    from conftest import new_database

    with new_database(timescaledb_server) as url:
        off = _migrate(url, "off")
        assert off.returncode == 0, off.stderr
        assert "HEAT_TIMESCALEDB=off" in off.stdout
        with psycopg.connect(url) as connection:
            assert connection.execute(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone() == (0,)


def test_frames_are_decoded_back_verbatim_from_compressed_chunks(timescale_migrated) -> None:
    settings = timescale_migrated
    frames = engine_frames(n_bars=10)
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write(HeatBatch(frames=frames))
    _compress_all(settings.admin_url())
    with psycopg.connect(settings.role_url(READER_ROLE)) as reader:
        stored = reader.execute("SELECT count(*), sum(correlated_exposure) FROM heat_api.frames"
                                ).fetchone()
    assert stored[0] == len(frames)
    assert stored[1] == pytest.approx(sum(f.correlated_exposure for f in frames), rel=1e-12)
