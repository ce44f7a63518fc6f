"""Every SQL query of the dashboards, their variables and annotations, and of the Grafana
alert rules runs as ``heat_reader`` on a replay of the real data (``heat replay
--to-db``), with Grafana's macros and variables expanded, on plain PostgreSQL and on
TimescaleDB: it returns the columns its panel reads, and rows.

The replayed books include one whose desk and account names hold quotes, spaces and
non-Latin scripts: the dashboards are exercised on that book."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from heatmap.grafana import alerts, generate, live_heat
from heatmap.grafana.datasources import POSTGRES_UID
from heatmap.grafana.live_heat import ANNOTATION_COLUMNS
from heatmap.settings.database import READER_ROLE
from support.grafana_dashboards import annotation_queries, dashboards, panel_queries, variables
from support.grafana_macros import QueryContext, expand_sql
from support.heat_pipeline import RecordedInputs, recorded_inputs, replay_to_db

pytestmark = pytest.mark.integration

# Two days of the real 5-minute bars: a day of warm-up, then positions, clusters, alerts.
END = "2018-01-12T00:00"
RANGE = (datetime(2018, 1, 11, tzinfo=UTC), datetime(2018, 1, 12, tzinfo=UTC))
INTERVAL_S = 900
# A book named the way real desks name things: quotes, spaces, CJK, emoji.
DESK = 'desk "o\'brien", 東京'
ACCOUNT = "o'brien 币安人生 🚀"
MIRRORED = "acct-a1"
# The desk's own concentration lines (the other desks keep the defaults, 0.20 / 0.25).
DESK_LINES = (0.22, 0.3)
ALERT_CONFIG = (f'[desk."{DESK.replace(chr(34), chr(92) + chr(34))}"]\n'
                f"cluster_concentration_warning = {DESK_LINES[0]}\n"
                f"cluster_concentration_critical = {DESK_LINES[1]}\n")


def _mirror(path: Path, column: str) -> None:
    """Copy ``MIRRORED``'s rows of a CSV under ``ACCOUNT`` (and its desk as ``DESK``)."""
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    fields = list(rows[0].keys())
    extra = [{**row, column: ACCOUNT, **({"desk": DESK} if "desk" in row else {})}
             for row in rows if row[column] == MIRRORED]
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows + extra, key=lambda row: row["timestamp"]))
    path.write_text(out.getvalue())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> RecordedInputs:
    recorded = recorded_inputs(tmp_path_factory.mktemp("grafana-inputs"), END)
    _mirror(recorded.positions, "account")
    _mirror(recorded.accounts, "account")
    return recorded


@pytest.fixture(scope="module")
def reader_url(database_server, inputs: RecordedInputs, stack,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from conftest import migrated_database

    config = tmp_path_factory.mktemp("grafana-alerts") / "alerts.toml"
    config.write_text(ALERT_CONFIG)
    with migrated_database(database_server) as settings:
        replay_to_db(inputs, settings, stack.kafka_bootstrap, "--alert-config", str(config))
        yield settings.role_url(READER_ROLE)


@dataclass
class Runner:
    connection: psycopg.Connection[Any]
    context: QueryContext

    def run(self, sql: str, **variables: str | list[str]) -> tuple[list[str], list[Any]]:
        context = QueryContext(self.context.time_from, self.context.time_to,
                               self.context.interval_s,
                               {**self.context.variables, **variables})
        cursor = self.connection.execute(expand_sql(sql, context).encode())
        assert cursor.description is not None
        return [d.name for d in cursor.description], cursor.fetchall()


def choose(runner: Runner, dashboard: dict[str, Any]) -> dict[str, str | list[str]]:
    """Each variable's value, chosen from its own query's result as Grafana offers it."""
    wanted = {"desk": DESK, "account": ACCOUNT, "timeframe": "1h", "lookback": "1 day"}
    chosen: dict[str, str | list[str]] = {}
    for variable in variables(dashboard):
        name = variable["name"]
        if variable["type"] == "custom":
            options = [v.strip() for v in variable["query"].split(",")]
        else:
            assert variable["datasource"]["uid"] == POSTGRES_UID
            runner.context = QueryContext(runner.context.time_from, runner.context.time_to,
                                          runner.context.interval_s, chosen)
            _, rows = runner.run(variable["query"])
            options = [row[0] for row in rows]
        assert options, f"variable {name} offers nothing"
        if variable.get("includeAll"):
            chosen[name] = options
        else:
            chosen[name] = wanted.get(name, options[0])
            assert chosen[name] in options, f"{name}: {chosen[name]!r} not in {options}"
    return chosen


@pytest.fixture
def reader(reader_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(reader_url, autocommit=True) as connection:
        yield connection


EXPECTED = {(e.dashboard_uid, e.panel_id, e.ref_id): e.columns
            for board in generate.boards() for e in board.expectations}


def test_every_panel_query_returns_its_columns_and_rows(reader) -> None:
    checked = 0
    for uid, dashboard in dashboards().items():
        runner = Runner(reader, QueryContext(*RANGE, INTERVAL_S))
        chosen = choose(runner, dashboard)
        runner.context = QueryContext(*RANGE, INTERVAL_S, chosen)
        for query in panel_queries(dashboard):
            if "rawSql" not in query.query:
                continue
            values = chosen.get(query.repeat or "", [""])
            for value in values if query.repeat else [""]:
                extra = {query.repeat: value} if query.repeat else {}
                columns, rows = runner.run(query.query["rawSql"], **extra)
                assert tuple(columns) == EXPECTED[(uid, query.panel_id, query.ref_id)], \
                    query.label
                assert rows, f"{query.label} ({extra}) returned no rows"
                if query.query["format"] == "time_series":
                    times = [row[0] for row in rows]
                    assert times == sorted(times), f"{query.label}: not sorted by time"
                checked += 1
        for target in annotation_queries(dashboard):
            columns, rows = runner.run(target["rawSql"])
            assert tuple(columns) == ANNOTATION_COLUMNS
            assert rows, f"{uid}: the alert annotation found no alerts"
    assert checked >= 20


def test_alert_rule_queries_return_labelled_series(reader) -> None:
    """Each SQL rule over the last 10 minutes of the data: a sorted time column, its
    label columns and one numeric value per row."""
    end = RANGE[1]
    context = QueryContext(end - timedelta(seconds=alerts.LOOKBACK_S), end, 60)
    sql_specs = [spec for spec in alerts.SPECS if spec.datasource_uid == POSTGRES_UID]
    assert len(sql_specs) == 5
    for spec, rule in zip(alerts.SPECS, alerts.api_rules(), strict=True):
        if spec.datasource_uid != POSTGRES_UID:
            continue
        cursor = reader.execute(expand_sql(rule["data"][0]["model"]["rawSql"], context).encode())
        assert cursor.description is not None
        assert tuple(d.name for d in cursor.description) == spec.columns, spec.uid
        rows = cursor.fetchall()
        assert rows, f"{spec.uid}: no rows in the last {alerts.LOOKBACK_S} s"
        assert [row[0] for row in rows] == sorted(row[0] for row in rows)
        assert all(isinstance(value, str) for row in rows for value in row[1:-1])


def test_the_desks_own_lines_draw_and_judge(reader) -> None:
    """The concentration panel draws the chosen desk's own lines, and the concentration
    rules measure each book against its own desk's critical line."""
    board = dashboards()[live_heat.UID]
    [lines] = [query for query in panel_queries(board)
               if query.panel_id == live_heat.CONCENTRATION_PANEL and query.ref_id == "B"]
    runner = Runner(reader, QueryContext(*RANGE, INTERVAL_S))
    for desk, expected in ((DESK, DESK_LINES), ("alpha", (0.2, 0.25))):
        _, rows = runner.run(lines.query["rawSql"], desk=desk)
        assert [tuple(row[1:]) for row in rows] == [expected, expected], desk
    end = RANGE[1]
    context = QueryContext(end - timedelta(seconds=alerts.LOOKBACK_S), end, 60)
    [critical] = [rule for rule in alerts.api_rules()
                  if rule["uid"] == "heat-cluster-concentration-critical"]
    measured = {(row[2], row[4]): row[-1] for row in reader.execute(
        expand_sql(critical["data"][0]["model"]["rawSql"], context).encode())
        if row[3] == "1h"}
    own = [ratio for (book, _), ratio in measured.items() if book == ACCOUNT]
    mirrored = [ratio for (book, _), ratio in measured.items() if book == MIRRORED]
    assert own and mirrored
    # The mirrored account holds the same positions in desk alpha (critical 0.25): the
    # same concentrations, judged against 0.3 instead.
    assert max(own) == pytest.approx(max(mirrored) * 0.25 / DESK_LINES[1], rel=1e-9)


def test_snapshot_pictures(reader_url: str, tmp_path: Path) -> None:
    """``heat snapshot``'s pictures of the book at a moment and over the range."""
    from heatmap.snapshot.render import NothingToDraw, Snapshot, render

    for name, span in (("moment", None), ("range", RANGE[1] - RANGE[0])):
        out = render(reader_url, Snapshot(ACCOUNT, "1h", RANGE[1], span),
                     tmp_path / f"{name}.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert out.stat().st_size > 10_000
    with pytest.raises(NothingToDraw):
        render(reader_url, Snapshot(ACCOUNT, "1h", RANGE[0] - timedelta(days=30)),
               tmp_path / "none.png")
