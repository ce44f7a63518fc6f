"""Static checks of the migration files (no database needed)."""

from __future__ import annotations

import sqlparse

from heatmap.db import migrations


def test_series_are_numbered_and_load() -> None:
    core = migrations.load("core")
    assert [m.version for m in core] == list(range(1, len(core) + 1))
    timescale = migrations.load("timescale")
    assert [m.version for m in timescale] == list(range(1, len(timescale) + 1))


def test_every_timescale_statement_splits_cleanly() -> None:
    for migration in migrations.load("timescale"):
        statements = [s for s in sqlparse.split(migration.sql)
                      if sqlparse.format(s, strip_comments=True).strip()]
        assert statements, migration.label
        assert all(s.rstrip().endswith(";") for s in statements), migration.label


def test_continuous_aggregates_run_outside_a_transaction() -> None:
    by_name = {m.name: m for m in migrations.load("timescale")}
    assert not by_name["continuous_aggregates"].in_transaction
    assert by_name["hypertables"].in_transaction


def test_every_rollup_view_is_replaced_by_the_timescale_layer() -> None:
    api = migrations.load("core")[1].sql
    layer = migrations.load("timescale")[1].sql
    for name in ("frame_metrics", "cluster_metrics"):
        for resolution in ("1m", "1h", "1d"):
            view = f"heat_api.{name}_{resolution}"
            assert f"CREATE VIEW {view} " in api
            assert f"CREATE OR REPLACE VIEW {view} " in layer
