"""Retention and refresh policies: how far the rollups may look back, what the layer's
files define, and role passwords sent as SCRAM verifiers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from heatmap.db import migrations
from heatmap.db.retention import (
    REFRESH_POLICIES,
    RETENTION_TABLES,
    RetentionError,
    refresh_start_offset,
)
from heatmap.settings.database import DatabaseSettings

DAY = timedelta(days=1)
BY_NAME = {policy.aggregate: policy for policy in REFRESH_POLICIES}


def test_without_raw_retention_the_policies_keep_their_windows() -> None:
    assert {name: refresh_start_offset(p, None) for name, p in BY_NAME.items()} == {
        name: p.start_offset for name, p in BY_NAME.items()}


def test_the_default_raw_window_leaves_the_policies_alone() -> None:
    for policy in REFRESH_POLICIES:
        assert refresh_start_offset(policy, 180 * DAY) == policy.start_offset


def test_a_short_raw_window_shortens_the_refresh_to_the_chunks_kept() -> None:
    """A chunk reaching into the refresh window was created at most start_offset plus one
    chunk interval ago: it must still be there."""
    one_day = BY_NAME["frame_metrics_1d_cagg"]
    assert refresh_start_offset(one_day, 5 * DAY) == 4 * DAY
    assert refresh_start_offset(BY_NAME["frame_metrics_1m_cagg"], 5 * DAY) == DAY


def test_a_raw_window_too_short_for_the_rollups_is_refused() -> None:
    with pytest.raises(RetentionError,
                       match=r"HEAT_RETENTION_FRAMES is shorter .* up to 3 days and 1 hour old"):
        refresh_start_offset(BY_NAME["frame_metrics_1d_cagg"], 2 * DAY)


def _interval(text: str) -> timedelta:
    number, unit = text.split()
    return timedelta(**{unit.rstrip("s") + "s": int(number)})


def test_the_policies_are_those_the_layer_file_defines() -> None:
    layer = migrations.load("timescale")[1].sql
    defined = {
        match["name"]: (_interval(match["start"]), _interval(match["end"]),
                        _interval(match["schedule"]))
        for match in re.finditer(
            r"add_continuous_aggregate_policy\('heat\.(?P<name>\w+)',\s*"
            r"start_offset => INTERVAL '(?P<start>[^']+)', end_offset => INTERVAL "
            r"'(?P<end>[^']+)',\s*schedule_interval => INTERVAL '(?P<schedule>[^']+)'", layer)}
    assert defined == {p.aggregate: (p.start_offset, p.end_offset, p.schedule)
                       for p in REFRESH_POLICIES}
    assert set(defined) == set(RETENTION_TABLES["rollups"])


class _Recorder:
    """Stands in for a migrator's connection: records statements; encrypts with libpq."""

    def __init__(self, pgconn: Any) -> None:
        self.pgconn = pgconn
        self.statements: list[str] = []

    def execute(self, statement: Any, params: Any = None) -> None:
        self.statements.append(statement.as_string(None))


@pytest.fixture
def pgconn() -> Any:
    # libpq computes SCRAM verifiers without asking the server: an unconnected handle works.
    handle = psycopg.pq.PGconn.connect_start(b"host=127.0.0.1 port=1 connect_timeout=1")
    yield handle
    handle.finish()


def test_role_passwords_are_sent_as_scram_verifiers(pgconn: Any) -> None:
    connection = _Recorder(pgconn)
    settings = DatabaseSettings(database_url="postgresql://a:b@h/heat", writer_url=None,
                                reader_url=None, writer_password="writer s3cret",
                                reader_password="reader-pw")
    migrations._set_role_passwords(connection, settings)  # type: ignore[arg-type]
    assert len(connection.statements) == 2
    for statement, role, password in zip(connection.statements, ("heat_writer", "heat_reader"),
                                         ("writer s3cret", "reader-pw"), strict=True):
        assert statement.startswith(f'ALTER ROLE "{role}" WITH LOGIN PASSWORD \'SCRAM-SHA-256$')
        assert password not in statement


def test_a_verifier_is_salted_per_call(pgconn: Any) -> None:
    connection = _Recorder(pgconn)
    first = migrations.scram_verifier(connection, "heat_writer", "pw")  # type: ignore[arg-type]
    second = migrations.scram_verifier(connection, "heat_writer", "pw")  # type: ignore[arg-type]
    assert first.startswith("SCRAM-SHA-256$4096:") and first != second
