"""Refresh windows of the rollups after a backfill, and ``heat db refresh-rollups`` errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from heatmap.cli.errors import describe
from heatmap.cli.main import app
from heatmap.db.rollups import refresh_window


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2018, 1, day, hour, minute, tzinfo=UTC)


NOW = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)


def test_the_window_is_the_whole_utc_days_around_what_was_written() -> None:
    assert refresh_window(at(10, 23, 15), at(11, 0, 45), at(1), NOW) == (at(10), at(12))
    assert refresh_window(at(10), at(10), at(1), NOW) == (at(10), at(11))


def test_the_window_never_starts_before_the_oldest_raw_chunk() -> None:
    assert refresh_window(at(10, 5), at(12, 5), at(11), NOW) == (at(11), at(13))
    assert refresh_window(at(10, 5), at(12, 5), at(11, 6), NOW) == (at(12), at(13))
    assert refresh_window(at(1), at(3), at(11), NOW) is None  # all of it dropped since


def test_the_window_ends_where_every_refresh_policy_looks() -> None:
    today = datetime(2026, 3, 5, tzinfo=UTC)
    assert refresh_window(at(10), NOW, at(1), NOW) == (at(10), today)
    assert refresh_window(today, NOW, at(1), NOW) is None  # the policies cover today


def test_open_ends_mean_everything_stored() -> None:
    assert refresh_window(None, None, at(10, 0), NOW) == (at(10), datetime(2026, 3, 5,
                                                                          tzinfo=UTC))
    assert refresh_window(None, at(12, 1), at(10), NOW) == (at(10), at(13))
    assert refresh_window(at(10), None, None, NOW) is None  # no raw rows at all


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
