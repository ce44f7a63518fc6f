"""``heat alerts report`` as a user runs it, on a small alerts file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.alert_report.test_noise import SEQUENCE
from typer.testing import CliRunner

from heatmap.cli.main import app
from heatmap.schema import encode
from heatmap.stack.services import HEAT


def _alerts_file(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"".join(encode(alert) + b"\n" for alert in SEQUENCE))
    return path


def test_report_prints_tables_and_targets(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["alerts", "report", "--alerts",
                                      str(_alerts_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "Alert noise" in result.output
    assert "re-fire within 1 h <= 10%: NOT met (20.0%)" in result.output


def test_report_as_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["alerts", "report", "--json", "--alerts",
                                      str(_alerts_file(tmp_path))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kinds"][-1]["firings"] == 5
    assert report["leads"] == []


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # No database settings: the one that reads stored alerts must say what is missing.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("HEAT_") or "DATABASE" not in key}
    return subprocess.run([*HEAT, "alerts", "report", *args], capture_output=True, text=True,
                          timeout=60, env={**env, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_a_bad_line_is_one_line(tmp_path: Path) -> None:
    path = _alerts_file(tmp_path)
    path.write_bytes(path.read_bytes() + b'{"ts": 1}\n')
    result = run("--alerts", str(path))
    assert result.returncode == 1
    assert f"{path}:9: not an alert" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_prices_without_positions_is_a_usage_error(tmp_path: Path) -> None:
    prices = tmp_path / "ETHBTC.csv"
    prices.write_text("timestamp,close\n")
    result = run("--alerts", str(_alerts_file(tmp_path)), "--prices", str(prices))
    assert result.returncode == 2
    assert "give --prices and --positions together" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("args", "says"), [
    ([], "give --alerts FILE or --from-db"),
    (["--from-db", "--alerts", "ALERTS"], "give --alerts FILE or --from-db"),
    (["--alerts", "ALERTS", "--from", "2018-01-11"], "give them with --from-db"),
    (["--from-db", "--from", "yesterday"], "--from"),
    (["--from-db"], "HEAT_DATABASE_URL is not set"),
])
def test_where_the_alerts_come_from_is_checked(tmp_path: Path, args: list[str],
                                               says: str) -> None:
    path = str(_alerts_file(tmp_path))
    result = run(*(path if arg == "ALERTS" else arg for arg in args))
    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
