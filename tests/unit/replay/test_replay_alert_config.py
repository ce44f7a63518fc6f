"""`heat replay --alert-config`: a desk's thresholds from the file change that desk's alerts
and only those; a bad file stops the replay with one line per error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.heat_pipeline import PIPELINE_END, recorded_inputs

CONFIG = """
[desk."beta"]
cluster_concentration_warning = 5.0
cluster_concentration_critical = 6.0
timeframes = ["1h"]
"""


def _replay(inputs_args: list[str], folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "heatmap.cli.main", "replay", *inputs_args, "--bar", "5m",
         "--timeframes", "1h,4h,1d", "--out", str(folder / "frames.jsonl"),
         "--alerts", str(folder / "alerts.jsonl"), *extra],
        capture_output=True, text=True, timeout=600)


def _alerts(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "alerts.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_desks_thresholds_change_its_alerts_only(tmp_path: Path) -> None:
    inputs = recorded_inputs(tmp_path / "inputs", PIPELINE_END)
    (tmp_path / "plain").mkdir()
    (tmp_path / "configured").mkdir()
    config = tmp_path / "alerts.toml"
    config.write_text(CONFIG)
    assert _replay(inputs.args(), tmp_path / "plain").returncode == 0
    completed = _replay(inputs.args(), tmp_path / "configured", "--alert-config", str(config))
    assert completed.returncode == 0, completed.stderr
    plain, configured = _alerts(tmp_path / "plain"), _alerts(tmp_path / "configured")

    def beta(alert: dict) -> bool:
        return alert["desk"] == "beta"

    # Other desks' books alert as without the file.
    assert [a for a in configured if not beta(a)] == [a for a in plain if not beta(a)]
    # Beta's books: no concentration alert at the raised levels, nothing beyond 1h.
    assert any(a["kind"] == "cluster_concentration" for a in plain if beta(a))
    assert not any(a["kind"] == "cluster_concentration" for a in configured if beta(a))
    assert {a["timeframe"] for a in configured if beta(a)} == {"1h"}
    assert {(a["warning_threshold"], a["critical_threshold"])
            for a in configured if beta(a) and a["kind"] == "regime_break"} == {(0.3, None)}


def test_a_bad_file_stops_the_replay_with_one_line_per_error(tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text('[defaults]\nmin_frame = 2\n[desk."beta"]\nregime_break = "high"\n')
    prices = tmp_path / "AAABTC.csv"
    prices.write_text("timestamp,close\n2018-01-10T00:00:00Z,1.0\n")
    positions = tmp_path / "positions.csv"
    positions.write_text("timestamp,account,symbol,qty\n")
    completed = _replay(["--prices", str(prices), "--positions", str(positions)], tmp_path,
                        "--alert-config", str(config))
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"error: {config}: defaults.min_frame: unknown key",
        f"{config}: desk.\"beta\".regime_break: input should be a valid number, not 'high'"]
