"""``heat demo`` options: each source's defaults, and wrong options in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from heatmap.demo.options import (
    EXAMPLE_BOOKS,
    REPLAY_SPEED,
    SIMULATOR_SPEED,
    DemoOptionError,
    resolve,
)
from heatmap.demo.services import run_prefix, writer_settings
from heatmap.settings.database import DatabaseSettings
from heatmap.stack.ports import free_port

ROOT = Path(__file__).parents[3]
BARS = ROOT / "data" / "binance-5m"


def _resolve(**given: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = dict(replay=None, positions=None, accounts=None, speed=None,
                                      duration_s=None, snapshot_every_min=None,
                                      snapshot_dir=Path("out"), timeframe="1h", seed=7)
    options.update(given)
    return resolve(**options)  # type: ignore[arg-type]


def test_the_simulator_runs_one_minute_bars_a_minute_per_second() -> None:
    options = _resolve()
    assert (options.source, options.bar, options.speed) == ("simulator", "1m", SIMULATOR_SPEED)
    assert options.snapshot_every_ms == 30 * 60_000


def test_a_replay_takes_the_example_books_of_the_recorded_bars() -> None:
    options = _resolve(replay=BARS, speed=0.0, snapshot_every_min=60.0)
    assert (options.source, options.bar, options.speed) == ("replay", "5m", 0.0)
    assert options.positions == EXAMPLE_BOOKS / "positions.csv"
    assert options.accounts == EXAMPLE_BOOKS / "accounts.csv"
    assert options.snapshot_every_ms == 3_600_000
    assert _resolve(replay=BARS).speed == REPLAY_SPEED


@pytest.mark.parametrize(("given", "message"), [
    ({"speed": -1.0}, "--speed"),
    ({"speed": 0.0}, "--speed 0"),
    ({"speed": float("nan")}, "--speed"),
    ({"duration_s": 0.0}, "--duration"),
    ({"snapshot_every_min": -5.0}, "--snapshot-every-min"),
    ({"timeframe": "2h"}, "--timeframe"),
    ({"positions": Path("p.csv")}, "--positions and --accounts go with --replay"),
    ({"replay": Path("no/such/folder")}, "--replay no/such/folder"),
    ({"replay": BARS, "positions": Path("no/such.csv")}, "--positions no/such.csv"),
])
def test_wrong_options_name_themselves(given: dict[str, object], message: str) -> None:
    with pytest.raises(DemoOptionError, match=message.replace("(", r"\(")):
        _resolve(**given)


def test_a_wrong_option_is_one_line_and_exit_code_2() -> None:
    result = subprocess.run([sys.executable, "-m", "heatmap.cli.main", "demo", "--speed", "-2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --speed -2: ") and "heat demo --help" in result.stderr


def test_the_sink_logs_in_as_the_writer_only_when_configured() -> None:
    owner = "postgresql://owner:pw@127.0.0.1:5432/heat"
    assert writer_settings(owner, DatabaseSettings(writer_password=None, writer_url=None,
                                                   writer_password_file=None)) == {
        "HEAT_WRITER_URL": owner}
    assert writer_settings(owner, DatabaseSettings(writer_password="w", writer_url=None)) == {
        "HEAT_WRITER_PASSWORD": "w"}


def test_every_run_has_topics_of_its_own() -> None:
    first, second = run_prefix(), run_prefix()
    assert first != second and first.startswith("demo-") and first.endswith(".")


def _demo_fails(tmp_path: Path, **settings: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEAT_")}
    env.update({"HEAT_STATE_DIR": str(tmp_path / "state"),
                "HEAT_KAFKA_PORT": str(free_port()), "HEAT_POSTGRES_PORT": str(free_port()),
                **settings})
    result = subprocess.run([sys.executable, "-m", "heatmap.cli.main", "demo",
                             "--duration", "5"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_without_postgresql_one_line_says_what_to_install(tmp_path: Path) -> None:
    line = _demo_fails(tmp_path, HEAT_POSTGRES_BIN_DIR=str(tmp_path / "no-postgres"))
    assert "install PostgreSQL 15" in line and "HEAT_POSTGRES_BIN_DIR" in line


def test_without_java_one_line_says_what_to_install(tmp_path: Path) -> None:
    line = _demo_fails(tmp_path, JAVA_HOME=str(tmp_path / "no-java"))
    assert "java not found: install a Java 17 runtime" in line


def test_a_busy_live_page_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _demo_fails(tmp_path, HEAT_WEB_PORT=str(port))
    assert f"port {port} on 127.0.0.1 is in use" in line and "HEAT_WEB_PORT" in line
