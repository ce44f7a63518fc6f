"""Refresh windows of the rollups after a backfill, and ``heat db refresh-rollups`` errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from heatmap.cli.errors import describe
from heatmap.cli.main import app
from heatmap.db.rollups import chunk_runs, refresh_windows


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2018, 1, day, hour, minute, tzinfo=UTC)


NOW = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)


DAYS = [(at(day), at(day + 1)) for day in range(1, 20)]  # daily chunks of Jan 1..19


def chunks(*days: int) -> list[tuple[datetime, datetime]]:
    return [(at(day), at(day + 1)) for day in days]


def test_the_window_is_the_whole_utc_days_around_what_was_written() -> None:
    assert refresh_windows(at(10, 23, 15), at(11, 0, 45), DAYS, NOW) == [(at(10), at(12))]
    assert refresh_windows(at(10), at(10), DAYS, NOW) == [(at(10), at(11))]


def test_the_window_never_starts_before_the_oldest_raw_chunk() -> None:
    assert refresh_windows(at(10, 5), at(12, 5), chunks(11, 12, 13), NOW) == [(at(11), at(13))]
    assert refresh_windows(at(1), at(3), chunks(11, 12), NOW) == []  # all of it dropped


def test_the_windows_skip_chunks_dropped_between_others() -> None:
    """Retention by creation time drops live days while an older backfill stays."""
    kept = chunks(10, 11, 12, 16, 17)
    assert refresh_windows(at(10, 5), at(17, 5), kept, NOW) == [(at(10), at(13)),
                                                                (at(16), at(18))]
    assert refresh_windows(None, None, kept, NOW) == [(at(10), at(13)), (at(16), at(18))]
    assert refresh_windows(at(13), at(15, 23), kept, NOW) == []


def test_touching_chunks_make_one_run() -> None:
    assert chunk_runs([(at(3), at(4)), (at(1), at(2)), (at(2), at(3)), (at(6), at(7))]) == [
        (at(1), at(4)), (at(6), at(7))]


def test_the_window_ends_where_every_refresh_policy_looks() -> None:
    today = datetime(2026, 3, 5, tzinfo=UTC)
    live = [(today - timedelta(days=2), today + timedelta(days=1))]
    assert refresh_windows(today - timedelta(days=2), NOW, live, NOW) == [
        (today - timedelta(days=2), today)]
    assert refresh_windows(today, NOW, live, NOW) == []  # the policies cover today


def test_no_chunks_nothing_to_refresh() -> None:
    assert refresh_windows(at(10), None, [], NOW) == []


@pytest.mark.parametrize(("arguments", "environment", "message"), [
    (["--from", "2018-01-10"], {"HEAT_DATABASE_URL": None},
     'error: HEAT_DATABASE_URL is not set; for the local stack: eval "$(heat stack env)"'),
    (["--from", "yesterday"], {"HEAT_DATABASE_URL": "postgresql://127.0.0.1:1/heat"},
     "error: --from/--to: bad timestamp 'yesterday': give RFC 3339 times or dates"),
    (["--from", "2018-01-12", "--to", "2018-01-10"],
     {"HEAT_DATABASE_URL": "postgresql://127.0.0.1:1/heat"},
     "error: --from 2018-01-12 is after --to 2018-01-10"),
])
def test_refresh_rollups_errors_are_one_line(arguments: list[str],
                                             environment: dict[str, str | None],
                                             message: str) -> None:
    result = CliRunner(env={"COLUMNS": "400", **environment}).invoke(
        app, ["db", "refresh-rollups", *arguments])
    problem = describe(result.exception)  # what `heat` prints for it, and its exit code
    assert problem is not None and f"error: {problem.line}" == message
    assert problem.exit_code == 2  # usage: a setting or an option
