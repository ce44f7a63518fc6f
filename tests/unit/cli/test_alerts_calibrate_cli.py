"""``heat alerts calibrate`` as a user runs it, on the synthetic books of
tests/unit/alert_report/test_calibrate.py written as CSV files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.alert_report.test_calibrate import OPEN, PARAMS, messages
from typer.testing import CliRunner

from heatmap.cli.main import app
from heatmap.process.alert_config import load_alert_config
from heatmap.schema import Account, Position, Price
from heatmap.stack.services import HEAT


def _ts(message: Price | Position | Account) -> str:
    return message.ts.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("calibrate")
    prices = ["timestamp,symbol,price"]
    positions = ["timestamp,account,symbol,qty"]
    accounts = ["timestamp,account,equity,desk,maintenance_rate"]
    for m in messages():
        if isinstance(m, Price):
            prices.append(f"{_ts(m)},{m.symbol},{m.price!r}")
        elif isinstance(m, Position):
            positions.append(f"{_ts(m)},{m.account},{m.symbol},{m.qty!r}")
        else:
            accounts.append(f"{_ts(m)},{m.account},{m.equity!r},{m.desk},")
    for name, rows in (("prices", prices), ("positions", positions), ("accounts", accounts)):
        (folder / f"{name}.csv").write_text("\n".join(rows) + "\n")
    return ["--prices", str(folder / "prices.csv"), "--positions",
            str(folder / "positions.csv"), "--accounts", str(folder / "accounts.csv"),
            "--bar", "1m", "--timeframes", "15m,1h"]


def test_calibrate_prints_each_desk_and_writes_a_config(inputs: list[str],
                                                        tmp_path: Path) -> None:
    written = tmp_path / "alerts.toml"
    result = CliRunner().invoke(app, ["alerts", "calibrate", *inputs, "--write", str(written)])
    assert result.exit_code == 0, result.output
    assert "desk alpha: 2 books at 5x, 10x (1h frames)" in result.output
    assert "desk alpha: the warning before each event" in result.output
    assert "desk alpha: suggested cluster concentration" in result.output
    assert "every event warned" in result.output
    assert "desk beta: suggested" in result.output
    config = load_alert_config(written, PARAMS.timeframes)
    assert sorted(config.per_desk) == ["alpha", "beta"]


def test_calibrate_one_desk_as_json(inputs: list[str]) -> None:
    result = CliRunner().invoke(app, ["alerts", "calibrate", *inputs, "--desk", "alpha",
                                      "--json"])
    assert result.exit_code == 0, result.output
    calibration = json.loads(result.stdout)
    [alpha] = calibration["desks"]
    assert alpha["desk"] == "alpha"
    assert alpha["warns_every_event"]
    assert calibration["params"]["leverages"] == ["5x", "10x"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HEAT, "alerts", "calibrate", *args], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_an_unknown_desk_is_one_line(inputs: list[str]) -> None:
    result = run(*inputs, "--desk", "gamma")
    assert result.returncode == 2, result.stderr
    assert "--desk gamma: no book of the input is of that desk (desks: alpha, beta)" \
        in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_bad_alert_config_is_one_line(inputs: list[str], tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text("[defaults]\nmin_frame = 3\n")
    result = run(*inputs, "--alert-config", str(config))
    assert result.returncode == 2, result.stderr
    assert "defaults.min_frame: unknown key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_missing_price_files_are_one_line(inputs: list[str], tmp_path: Path) -> None:
    args = [str(tmp_path / "nothing.csv") if arg.endswith("prices.csv") else arg
            for arg in inputs]
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert "price files not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_positions_are_required(inputs: list[str]) -> None:
    result = run(*inputs[:2])
    assert result.returncode == 2, result.stderr
    assert "give --prices and --positions together" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_report_confirms_the_written_config(inputs: list[str], tmp_path: Path) -> None:
    """`heat alerts report` with the file calibrate wrote finds a critical alert before
    every liquidation and near miss, except those at a book's first frame (nothing can
    come before them; calibrate does not judge them either)."""
    written = tmp_path / "alerts.toml"
    assert CliRunner().invoke(app, ["alerts", "calibrate", *inputs, "--write",
                                    str(written)]).exit_code == 0
    no_alerts = tmp_path / "none.jsonl"
    no_alerts.write_text("")
    result = CliRunner().invoke(app, ["alerts", "report", "--alerts", str(no_alerts),
                                      *inputs, "--alert-config", str(written), "--json"])
    assert result.exit_code == 0, result.output
    leads = json.loads(result.stdout)["leads"]
    judged = [lead for lead in leads if lead["ts"] != OPEN.strftime("%Y-%m-%dT%H:%M:%S.000Z")]
    assert judged and any(lead["event"] == "liquidation" for lead in judged)
    assert all(lead["at_leverage_lead_h"] is not None and lead["at_leverage_lead_h"] > 0
               for lead in judged), judged
