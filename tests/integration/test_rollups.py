"""Backfilled history in the 1m/1h/1d rollups: after ``refresh_rollups`` (and so after
``heat replay --to-db``) the rollup views equal the same aggregation over the raw frames,
on TimescaleDB (continuous aggregates) and on plain PostgreSQL (plain views).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from heatmap.db.rollups import refresh_rollups
from heatmap.db.writer import HeatBatch, HeatWriter
from heatmap.settings.database import READER_ROLE, WRITER_ROLE
from support.sample_frames import BAR_MS, engine_frames

ROOT = Path(__file__).parents[2]
DAY_MS = 86_400_000
DAY = timedelta(days=1)

# The plain views' aggregations (0002_api.sql), computed straight from the raw rows.
DIRECT = {
    "frame_metrics": """
        SELECT date_bin({width}, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
               book_kind, book, timeframe, params_hash, count(*) AS frames,
               avg(correlated_exposure), max(correlated_exposure),
               max(max_cluster_concentration), min(effective_bets), max(var99_1d),
               max(regime_break), min(liq_distance), avg(gross), avg(net)
        FROM heat_api.frames GROUP BY 1, 2, 3, 4, 5""",
    "cluster_metrics": """
        SELECT date_bin({width}, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
               book_kind, book, timeframe, params_hash, cluster, count(*) AS frames,
               avg(concentration), max(concentration), max(stress_concentration),
               min(liq_sigma)
        FROM heat_api.frame_clusters GROUP BY 1, 2, 3, 4, 5, 6""",
}
KEY_COLUMNS = {"frame_metrics": 6, "cluster_metrics": 7}  # bucket .. frames
WIDTHS = {"1m": "1 minute", "1h": "1 hour", "1d": "1 day"}


def _rollup_and_direct(url: str, rollup: str, resolution: str
                       ) -> tuple[list[tuple], list[tuple]]:
    """Rows of ``heat_api.<rollup>_<resolution>`` and of the same aggregation over the raw
    rows, both sorted; each row is its key and count, then its values."""
    with psycopg.connect(url) as connection:
        view = connection.execute(sql.SQL("SELECT * FROM heat_api.{}").format(
            sql.Identifier(f"{rollup}_{resolution}"))).fetchall()
        direct = connection.execute(sql.SQL(DIRECT[rollup]).format(
            width=sql.Literal(WIDTHS[resolution]))).fetchall()
    return sorted(view, key=str), sorted(direct, key=str)


def _assert_same_rows(view: list[tuple], direct: list[tuple], key_columns: int) -> None:
    """Same keys and counts exactly; averages may differ in the last bits (summation order)."""
    assert [row[:key_columns] for row in view] == [row[:key_columns] for row in direct]
    for view_row, direct_row in zip(view, direct, strict=True):
        for got, expected in zip(view_row[key_columns:], direct_row[key_columns:], strict=True):
            assert got == expected or (  # NULL is None on both sides
                isinstance(got, float) and isinstance(expected, float)
                and (math.isclose(got, expected, rel_tol=1e-9)
                     or (math.isnan(got) and math.isnan(expected)))), (view_row, direct_row)


def _rollups_match(url: str, resolutions: tuple[str, ...] = tuple(WIDTHS),
                   before: datetime | None = None) -> None:
    """Every rollup view equals the direct aggregation (in buckets before ``before``)."""
    for rollup, key_columns in KEY_COLUMNS.items():
        for resolution in resolutions:
            view, direct = _rollup_and_direct(url, rollup, resolution)
            if before is not None:
                view, direct = ([row for row in rows if row[0] < before]
                                for rows in (view, direct))
            assert direct, f"nothing to compare in {rollup}_{resolution}"
            _assert_same_rows(view, direct, key_columns)


def _run_refresh_policies(admin_url: str) -> None:
    """Run every rollup refresh policy once, in the foreground (as the scheduler would)."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        jobs = [row[0] for row in connection.execute(
            "SELECT job_id FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_refresh_continuous_aggregate'")]
        assert len(jobs) == 6
        for job_id in jobs:
            connection.execute("CALL run_job(%s)", (job_id,))


def _materialized_within_two_days(admin_url: str) -> dict[str, bool]:
    """Whether each aggregate's watermark (how far it is materialized) is recent."""
    with psycopg.connect(admin_url) as connection:
        return dict(connection.execute(
            "SELECT user_view_name, _timescaledb_functions.to_timestamp("
            "_timescaledb_functions.cagg_watermark(mat_hypertable_id)) "
            "> now() - INTERVAL '2 days' FROM _timescaledb_catalog.continuous_agg").fetchall())


def _write(settings, frames) -> None:
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write(HeatBatch(frames=frames))


def _now_ms() -> int:
    return int(time.time() * 1000) // BAR_MS * BAR_MS


def _live_rollups_past_the_backfill(settings, database_kind: str) -> None:
    """Recent frames, and on TimescaleDB the refresh policies run once: every aggregate's
    watermark is then within a day or so of now, far above any backfilled history.

    The frames of two days ago are outside the minute policy's window: from then on the
    minute rollups miss them (compare those rollups over older buckets only)."""
    for start_ms in (_now_ms() - 3 * 3_600_000, _now_ms() - 2 * DAY_MS):  # in every window
        _write(settings, engine_frames(n_bars=30, account="acct-live", start_ms=start_ms))
    if database_kind == "timescaledb":
        _run_refresh_policies(settings.admin_url())
        recent = _materialized_within_two_days(settings.admin_url())
        assert len(recent) == 6 and all(recent.values()), recent


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch ms of a UTC time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


def _written_range(frames) -> tuple[datetime, datetime]:
    return (datetime.fromisoformat(min(frame.ts for frame in frames)),
            datetime.fromisoformat(max(frame.ts for frame in frames)))


def test_backfilled_history_reaches_the_rollups_after_a_refresh(timescale_migrated) -> None:
    settings = timescale_migrated
    reader_url = settings.role_url(READER_ROLE)
    _live_rollups_past_the_backfill(settings, "timescaledb")
    month_ago_ms = (_now_ms() - 30 * DAY_MS) // DAY_MS * DAY_MS + 23 * 3_600_000
    backfill = [  # each across a midnight, far below every watermark
        *engine_frames(n_bars=90, account="acct-2018", start_ms=_at(2018, 1, 10, 23, 15)),
        *engine_frames(n_bars=90, account="acct-month-ago", start_ms=month_ago_ms),
    ]
    _write(settings, backfill)

    # The policies alone never look that far back: the rollups miss the backfill.
    _run_refresh_policies(settings.admin_url())
    for rollup in KEY_COLUMNS:
        view, direct = _rollup_and_direct(reader_url, rollup, "1h")
        assert len(view) < len(direct), rollup

    refreshed = refresh_rollups(settings, *_written_range(backfill))
    assert {window.aggregate for window in refreshed} == {
        f"heat.{rollup}_{resolution}_cagg" for rollup in KEY_COLUMNS for resolution in WIDTHS}
    # Only the days that have raw chunks: the backfill's, not the month between.
    month_ago = datetime.fromtimestamp(month_ago_ms // DAY_MS * DAY_MS / 1000, tz=UTC)
    assert {(window.start, window.end) for window in refreshed} == {
        (datetime(2018, 1, 10, tzinfo=UTC), datetime(2018, 1, 12, tzinfo=UTC)),
        (month_ago, month_ago + 2 * DAY)}
    _rollups_match(reader_url, ("1h",))
    _rollups_match(reader_url, before=datetime.now(UTC) - 7 * DAY)


def _run_compression_policies(admin_url: str) -> int:
    """Compress what the policies would (raw chunks and the minute and hour rollups)."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for (job_id,) in connection.execute(
                "SELECT job_id FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_compression'").fetchall():
            connection.execute("CALL run_job(%s)", (job_id,))
        return connection.execute(
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE is_compressed AND hypertable_schema = '_timescaledb_internal'").fetchone()[0]


def test_history_rewritten_into_compressed_chunks_leaves_no_stale_rollup(
        timescale_migrated) -> None:
    settings = timescale_migrated
    first = engine_frames(n_bars=90, account="acct-a", start_ms=_at(2018, 1, 10, 23, 15))
    _write(settings, first)
    refresh_rollups(settings, *_written_range(first))
    assert _run_compression_policies(settings.admin_url()) > 0  # rollup chunks compressed too

    # A second account of the same desk in the same hours: the desk's rollup rows change.
    second = engine_frames(n_bars=60, account="acct-b", start_ms=_at(2018, 1, 10, 23, 40))
    _write(settings, second)
    view, direct = _rollup_and_direct(settings.role_url(READER_ROLE), "frame_metrics", "1h")
    assert view != direct  # stale until refreshed

    refresh_rollups(settings, *_written_range(second))
    _rollups_match(settings.role_url(READER_ROLE))


def test_a_refresh_keeps_the_rollups_of_dropped_raw_chunks(timescale_migrated) -> None:
    settings = timescale_migrated
    day_ms = _now_ms() // DAY_MS * DAY_MS
    _write(settings, engine_frames(n_bars=30, account="acct-dropped",
                                   start_ms=day_ms - 40 * DAY_MS + 12 * 3_600_000))
    _write(settings, engine_frames(n_bars=30, account="acct-kept",
                                   start_ms=day_ms - 20 * DAY_MS + 12 * 3_600_000))
    refresh_rollups(settings)  # everything stored
    query = "SELECT * FROM heat_api.frame_metrics_1h WHERE book = 'acct-dropped' ORDER BY 1"
    with psycopg.connect(settings.role_url(READER_ROLE)) as reader:
        kept = reader.execute(query).fetchall()
    assert kept

    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        for table in ("heat.frames", "heat.frame_clusters"):  # what retention does
            connection.execute("SELECT drop_chunks(%s::regclass, older_than => %s)",
                               (table, datetime.now(UTC) - 30 * DAY))
        refreshed = refresh_rollups(settings)  # starts at the oldest remaining chunk
        assert min(window.start for window in refreshed) == (
            datetime.fromtimestamp((day_ms - 20 * DAY_MS) / 1000, tz=UTC))
        with psycopg.connect(settings.role_url(READER_ROLE)) as reader:
            assert reader.execute(query).fetchall() == kept
        # Whereas a window over the dropped range would delete those rollup rows.
        connection.execute("CALL refresh_continuous_aggregate('heat.frame_metrics_1h_cagg', "
                           "NULL, now() - INTERVAL '7 days')")
        with psycopg.connect(settings.role_url(READER_ROLE)) as reader:
            assert reader.execute(query).fetchall() == []


def test_plain_postgresql_has_nothing_to_refresh(postgresql_migrated) -> None:
    _write(postgresql_migrated, engine_frames(n_bars=10, start_ms=_at(2018, 1, 10)))
    assert refresh_rollups(postgresql_migrated) == []


def _replay_files(tmp_path: Path) -> list[Path]:
    """The real 5-minute bars and the replay fixture of 2018-01-10..12."""

    def until_jan_13(path: Path) -> Path:
        header, *rows = path.read_text().splitlines()
        target = tmp_path / path.name
        target.write_text("\n".join([header, *(r for r in rows if r < "2018-01-13")]) + "\n")
        return target

    fixture = ROOT / "tests" / "data" / "replay"
    return [*(until_jan_13(path) for path in sorted((ROOT / "data" / "binance-5m").glob("*.csv"))),
            until_jan_13(fixture / "positions.csv"), until_jan_13(fixture / "accounts.csv")]


def test_replay_to_db_leaves_the_rollups_equal_to_the_raw_frames(database_server, migrated,
                                                                   tmp_path: Path) -> None:
    _live_rollups_past_the_backfill(migrated, database_server.kind)
    *prices, positions, accounts = _replay_files(tmp_path)
    env = {**{name: value for name, value in os.environ.items()
              if name not in ("HEAT_WRITER_URL", "HEAT_READER_URL")},
           "HEAT_DATABASE_URL": migrated.admin_url(),
           "HEAT_WRITER_PASSWORD": migrated.role_password(WRITER_ROLE), "COLUMNS": "400"}
    completed = subprocess.run(
        [sys.executable, "-m", "heatmap.cli.main", "replay", "--prices", *map(str, prices),
         "--positions", str(positions), "--accounts", str(accounts), "--bar", "5m",
         "--timeframes", "1h", "--to-db"],
        env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    refreshed = [line for line in completed.stderr.splitlines() if "rollups" in line]
    if database_server.kind == "timescaledb":
        # Frames from the first account update (2018-01-11) to the last bar (01-12 23:55).
        assert refreshed == ["rollups refreshed from 2018-01-11 to 2018-01-13"]
    else:
        assert refreshed == []
    reader_url = migrated.role_url(READER_ROLE)
    _rollups_match(reader_url, ("1h",))
    _rollups_match(reader_url, before=datetime(2018, 2, 1, tzinfo=UTC))


def _refresh_command(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HEAT_DATABASE_URL": database_url, "COLUMNS": "400",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "heatmap.cli.main", "db", "refresh-rollups",
                           *arguments], env=env, capture_output=True, text=True, timeout=300)


def test_heat_db_refresh_rollups_as_the_owner_only(timescale_migrated) -> None:
    settings = timescale_migrated
    _live_rollups_past_the_backfill(settings, "timescaledb")
    _write(settings, engine_frames(n_bars=90, account="acct-2018",
                                   start_ms=_at(2018, 1, 10, 23, 15)))

    as_writer = _refresh_command(settings.role_url(WRITER_ROLE), "--from", "2018-01-10")
    assert as_writer.returncode == 1
    assert len(as_writer.stderr.splitlines()) == 1 and "Traceback" not in as_writer.stderr
    assert as_writer.stderr == (
        "error: refresh-rollups failed: cannot refresh heat.cluster_metrics_1d_cagg: only its "
        "owner may; set HEAT_DATABASE_URL to the role that ran heat db migrate\n")

    as_owner = _refresh_command(settings.admin_url(), "--from", "2018-01-10T23:15:00Z",
                                "--to", "2018-01-11T00:44:00+00:00")
    assert as_owner.returncode == 0, as_owner.stderr
    assert as_owner.stdout.splitlines() == [
        "6 rollups refreshed from 2018-01-10 00:00 to 2018-01-12 00:00 UTC"]
    _rollups_match(settings.role_url(READER_ROLE), before=datetime.now(UTC) - 7 * DAY)
