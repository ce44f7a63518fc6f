"""``heat process`` with ``HEAT_ALERT_CONFIG``: a desk's alerts carry and obey that desk's
thresholds, the other desks' the defaults; a bad file stops the worker with one line per
error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from support.heat_pipeline import (
    PIPELINE_END,
    Pipeline,
    RecordedInputs,
    ingest,
    recorded_inputs,
)
from support.heat_services import service_env
from support.waiting import wait_until

pytestmark = pytest.mark.integration

CONFIG = """
[desk."beta"]
cluster_concentration_warning = 0.5
cluster_concentration_critical = 0.7
"""


def _levels(url: str) -> dict[str | None, set[tuple[float, float, float]]]:
    """Per desk, the (threshold, warning, critical) of its concentration alerts."""
    levels: dict[str | None, set[tuple[float, float, float]]] = {}
    with psycopg.connect(url) as connection:
        for desk, threshold, warning, critical in connection.execute(
                "SELECT desk, threshold, warning_threshold, critical_threshold "
                "FROM heat_api.alerts WHERE kind = 'cluster_concentration'"):
            levels.setdefault(desk, set()).add((threshold, warning, critical))
    return levels


def test_a_desks_thresholds_reach_its_alerts(running: Pipeline, pipeline_inputs: RecordedInputs,
                                            tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text(CONFIG)
    producer = ingest(pipeline_inputs, running.topics, running.bootstrap,
                      tmp_path / "ingest.log")
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]
    running.process(HEAT_ALERT_CONFIG=str(config))
    running.sink()
    url = running.database.admin_url()

    def both_desks() -> dict[str | None, set[tuple[float, float, float]]] | None:
        got = _levels(url)
        return got if {"alpha", "beta"} <= got.keys() else None

    levels = wait_until(both_desks, 240, interval_s=1.0,
                        message="no concentration alerts of both desks")
    assert {(warning, critical) for _, warning, critical in levels["beta"]} == {(0.5, 0.7)}
    assert {threshold for threshold, _, _ in levels["beta"]} <= {0.5, 0.7}
    assert {(warning, critical) for _, warning, critical in levels["alpha"]} == {(0.2, 0.25)}


def test_a_bad_file_stops_the_worker_with_one_line_per_error(tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text('[desk."beta"]\nmin_frames = 0\ncluster_concentration_warn = 1\n')
    env = service_env("127.0.0.1:1", "unused.", HEAT_ALERT_CONFIG=str(config))
    completed = subprocess.run([sys.executable, "-m", "heatmap.cli.main", "process"], env=env,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"error: HEAT_ALERT_CONFIG: {config}: desk.\"beta\".min_frames: input should be "
        "greater than or equal to 1, not 0",
        f"{config}: desk.\"beta\".cluster_concentration_warn: unknown key"]


QUIET_BETA = '[desk."beta"]\ncluster_concentration_warning = 5.0\n' \
             'cluster_concentration_critical = 6.0\n'
CHANGE_AT = "2018-01-11T12"


def _latest_frame_ms(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT max(ts) FROM heat_api.frames").fetchone()
    return 0 if row is None or row[0] is None else int(row[0].timestamp() * 1000)


def _beta_concentration(url: str) -> list[tuple[int, float, float]]:
    with psycopg.connect(url) as connection:
        return [(int(ts.timestamp() * 1000), warning, critical)
                for ts, warning, critical in connection.execute(
                    "SELECT ts, warning_threshold, critical_threshold FROM heat_api.alerts "
                    "WHERE desk = 'beta' AND kind = 'cluster_concentration' ORDER BY ts")]


def test_a_file_changed_while_the_processor_runs_applies_from_the_next_bar(
        running: Pipeline, tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text(QUIET_BETA)
    before = recorded_inputs(tmp_path / "before", CHANGE_AT)
    after = recorded_inputs(tmp_path / "after", PIPELINE_END, start=CHANGE_AT)
    processor = running.process(HEAT_ALERT_CONFIG=str(config))
    running.sink()
    producer = ingest(before, running.topics, running.bootstrap, tmp_path / "ingest-1.log")
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]
    url = running.database.admin_url()
    wait_until(lambda: _latest_frame_ms(url) >= before.last_input_ms - 300_000, 240,
               interval_s=1.0, message="the first part was not applied")
    config.write_text("")  # beta's books go back to the built-in thresholds
    wait_until(lambda: "alert configuration staged" in processor.log_text(), 30,
               interval_s=0.5, message="the change was not staged")
    producer = ingest(after, running.topics, running.bootstrap, tmp_path / "ingest-2.log")
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]
    alerts = wait_until(lambda: _beta_concentration(url), 240, interval_s=1.0,
                        message="no concentration alert of desk beta after the change")
    # None while the quiet file applied; from the first bar after the change, the defaults.
    assert min(ts_ms for ts_ms, _, _ in alerts) > before.last_input_ms
    assert {(warning, critical) for _, warning, critical in alerts} == {(0.2, 0.25)}
