"""Expected failures of every ``heat`` (and ``heat-bench``) command: one line on stderr
that says what to do.

Each command runs as a user runs it, in a subprocess, with Kafka and PostgreSQL
pointed at closed loopback ports (or at a listener that never answers) and a
fresh state directory. A failure must exit non-zero with exactly one non-empty
line on stderr, no traceback, naming the remedy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from heatmap.stack.ports import LOOPBACK, free_port

HEAT = (sys.executable, "-m", "heatmap.cli.main")
# heat-bench as run from the checkout (the benchmarks are not in the product's package).
HEAT_BENCH = (sys.executable, "-m", "benchmarks")
ROOT = Path(__file__).resolve().parents[3]
PRICES = str(ROOT / "data" / "binance-5m" / "ADABTC.csv")
POSITIONS = str(ROOT / "tests" / "data" / "replay" / "positions.csv")
ACCOUNTS = str(ROOT / "tests" / "data" / "replay" / "accounts.csv")
DEADLINE_S = 60
# Under kafka-python's own 30 s bootstrap timeout: waiting for that fails the test.
FAST_DEADLINE_S = 20


@dataclass(frozen=True)
class Case:
    """One failing command line, the environment it runs in, and the remedy it must name."""

    args: tuple[str, ...]
    remedy: str
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    exit_code: int = 1
    program: tuple[str, ...] = HEAT


REPLAY = ("replay", "--prices", PRICES, "--positions", POSITIONS)
COMPARE = ("compare", "--prices", PRICES, "--positions", POSITIONS)

CASES: dict[str, Case] = {
    # heat stack
    "stack status without a stack": Case(("stack", "status"), "heat stack up"),
    "stack env without a stack": Case(("stack", "env"), "heat stack up"),
    "stack up, external Kafka down": Case(("stack", "up"), "unset HEAT_KAFKA_BOOTSTRAP"),
    "stack up, no PostgreSQL programs": Case(
        ("stack", "up"), "HEAT_POSTGRES_BIN_DIR", env={"HEAT_POSTGRES_BIN_DIR": "/nonexistent"},
        unset=("HEAT_DATABASE_URL",)),
    "stack up, state dir under a file": Case(
        ("stack", "up"), "check the path", env={"HEAT_STATE_DIR": "/etc/hostname/heat"}),
    # heat topics
    "topics ensure, Kafka down": Case(("topics", "ensure"), "HEAT_KAFKA_BOOTSTRAP"),
    "topics ensure, more in-sync replicas than replicas": Case(
        ("topics", "ensure"), "HEAT_TOPIC_MIN_INSYNC_REPLICAS",
        env={"HEAT_TOPIC_MIN_INSYNC_REPLICAS": "2"}, exit_code=2),
    "stack up, bad port setting": Case(
        ("stack", "up"), "HEAT_KAFKA_PORT", env={"HEAT_KAFKA_PORT": "ninety"}, exit_code=2),
    # heat db
    "db migrate, database down": Case(("db", "migrate"), "HEAT_DATABASE_URL"),
    "db status, database down": Case(("db", "status"), "HEAT_DATABASE_URL"),
    "db migrate, no database URL": Case(("db", "migrate"), "heat stack env",
                                        unset=("HEAT_DATABASE_URL",), exit_code=2),
    "db migrate, malformed URL": Case(("db", "migrate"), "HEAT_DATABASE_URL",
                                      env={"HEAT_DATABASE_URL": "not a url"}, exit_code=2),
    "db migrate, bad pool setting": Case(("db", "migrate"), "HEAT_POOL_MAX_SIZE",
                                         env={"HEAT_POOL_MAX_SIZE": "many"}, exit_code=2),
    # heat replay
    "replay, price file missing": Case(
        ("replay", "--prices", "/nonexistent/BTCUSDT.csv", "--positions", POSITIONS, "--out",
         "{tmp}/frames.jsonl"), "--prices", exit_code=2),
    "replay, positions file missing": Case(
        ("replay", "--prices", PRICES, "--positions", "/nonexistent.csv", "--out",
         "{tmp}/frames.jsonl"), "heat replay --help", exit_code=2),
    "replay, price file without its columns": Case(
        ("replay", "--prices", ACCOUNTS, "--positions", POSITIONS, "--out", "{tmp}/f.jsonl"),
        "heat replay --help"),
    "replay, bad --bar": Case((*REPLAY, "--bar", "7x", "--out", "{tmp}/f.jsonl"), "--bar",
                              exit_code=2),
    "replay, bad --timeframes": Case((*REPLAY, "--timeframes", "1h,soon", "--out",
                                      "{tmp}/f.jsonl"), "--timeframes", exit_code=2),
    "replay, output is a directory": Case((*REPLAY, "--out", "{tmp}"), "give a file"),
    "replay, output not permitted": Case(
        (*REPLAY, "--out", "/sys/kernel/heat-frames.jsonl"), "permissions"),
    "replay, no output": Case(REPLAY, "--out", exit_code=2),
    "replay, unknown option": Case((*REPLAY, "--colour"), "heat replay --help", exit_code=2),
    "replay --to-db, database down": Case((*REPLAY, "--to-db"), "HEAT_DATABASE_URL"),
    "replay --to-db, no writer password": Case(
        (*REPLAY, "--to-db"), "HEAT_WRITER_URL", unset=("HEAT_WRITER_PASSWORD",), exit_code=2),
    # heat compare
    "compare, price file missing": Case(
        ("compare", "--prices", "/nonexistent/BTCUSDT.csv", "--positions", POSITIONS),
        "--prices", exit_code=2),
    "compare, bad --leverage": Case((*COMPARE, "--leverage", "5,lots"), "--leverage",
                                    exit_code=2),
    "compare, bad --rule": Case((*COMPARE, "--rule", "cap-heat=1"), "--rule", exit_code=2),
    "compare, heat timeframe not a timeframe": Case(
        (*COMPARE, "--heat-timeframe", "1w"), "--heat-timeframe", exit_code=2),
    "compare, picture not permitted": Case(
        (*COMPARE, "--png", "/sys/kernel/heat.png"), "permissions"),
    "compare, positions without their columns": Case(
        ("compare", "--prices", PRICES, "--positions", PRICES), "--help"),
    # heat ingest
    "ingest simulate, Kafka down": Case(("ingest", "simulate", "--duration", "1"),
                                        "HEAT_KAFKA_BOOTSTRAP"),
    "ingest simulate, bad --start": Case(("ingest", "simulate", "--start", "soon"), "--start",
                                         exit_code=2),
    "ingest simulate, bad log level": Case(("ingest", "simulate"), "HEAT_LOG_LEVEL",
                                           env={"HEAT_LOG_LEVEL": "LOUD"}, exit_code=2),
    "ingest simulate, bad metrics port": Case(("ingest", "simulate"), "HEAT_METRICS_PORT",
                                              env={"HEAT_METRICS_PORT": "http"}, exit_code=2),
    "ingest simulate, bad connect timeout": Case(
        ("ingest", "simulate"), "HEAT_CONNECT_TIMEOUT_S", env={"HEAT_CONNECT_TIMEOUT_S": "-1"},
        exit_code=2),
    "ingest replay, Kafka down": Case(("ingest", "replay", "--prices", PRICES),
                                      "HEAT_KAFKA_BOOTSTRAP"),
    "ingest replay, file missing": Case(("ingest", "replay", "--prices", "/nonexistent.csv"),
                                        "check the path"),
    "ingest positions, Kafka down": Case(("ingest", "positions", "--stdin"),
                                         "HEAT_KAFKA_BOOTSTRAP"),
    "ingest exchange, Kafka down": Case(("ingest", "exchange", "binance", "--symbols",
                                         "BTC/USDT:USDT"), "HEAT_KAFKA_BOOTSTRAP"),
    "ingest exchange, unknown exchange": Case(("ingest", "exchange", "mtgox", "--symbols",
                                               "BTC/USDT"), "heat ingest exchange --help",
                                              exit_code=2),
    # heat-bench
    "bench engine, bad size": Case(("engine", "--size", "huge"), "--size", exit_code=2,
                                   program=HEAT_BENCH),
    "bench storage, database down": Case(("storage", "--size", "small"), "HEAT_DATABASE_URL",
                                         program=HEAT_BENCH),
    "bench ingest, Kafka down": Case(("ingest", "--size", "small"), "HEAT_KAFKA_BOOTSTRAP",
                                     program=HEAT_BENCH),
}


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def _env(tmp_path: Path, port: int, case: Case | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEAT_")}
    env.update({
        "HEAT_STATE_DIR": str(tmp_path / "state"),
        "HEAT_KAFKA_BOOTSTRAP": f"{LOOPBACK}:{port}",
        "HEAT_DATABASE_URL": f"postgresql://heat_admin@{LOOPBACK}:{port}/heat",
        "HEAT_WRITER_PASSWORD": "writer-password",
        "HEAT_CONNECT_TIMEOUT_S": "2",
        "HEAT_START_TIMEOUT_S": "5",
    })
    if case is not None:
        env.update(case.env)
        for name in case.unset:
            env.pop(name, None)
        if case.program == HEAT_BENCH:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _heat(args: tuple[str, ...], env: dict[str, str], tmp_path: Path,
          deadline_s: float = DEADLINE_S, program: tuple[str, ...] = HEAT
          ) -> subprocess.CompletedProcess[str]:
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    return subprocess.run([*program, *argv], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=deadline_s, cwd=tmp_path)


def _one_line(completed: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert "Traceback" not in completed.stderr, completed.stderr
    assert len(lines) == 1, completed.stderr
    return lines[0]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_failure_is_one_line_naming_the_remedy(case: Case, closed_port: int,
                                               tmp_path: Path) -> None:
    completed = _heat(case.args, _env(tmp_path, closed_port, case), tmp_path,
                      program=case.program)
    line = _one_line(completed)
    assert completed.returncode == case.exit_code, line
    assert case.remedy in line, line


def test_silent_kafka_fails_within_the_connect_timeout(silent_port: int,
                                                       tmp_path: Path) -> None:
    env = {**_env(tmp_path, silent_port), "HEAT_CONNECT_TIMEOUT_S": "1"}
    completed = _heat(("ingest", "simulate", "--duration", "1"), env, tmp_path,
                      FAST_DEADLINE_S)
    line = _one_line(completed)
    assert completed.returncode == 1
    assert "no Kafka answer within 1 s" in line and "HEAT_KAFKA_BOOTSTRAP" in line, line


def test_silent_database_fails_within_the_connect_timeout(silent_port: int,
                                                          tmp_path: Path) -> None:
    env = {**_env(tmp_path, silent_port), "HEAT_CONNECT_TIMEOUT_S": "1"}
    completed = _heat(("db", "status"), env, tmp_path, FAST_DEADLINE_S)
    line = _one_line(completed)
    assert completed.returncode == 1
    assert "HEAT_DATABASE_URL" in line, line


def test_debug_log_level_shows_the_traceback(closed_port: int, tmp_path: Path) -> None:
    env = {**_env(tmp_path, closed_port), "HEAT_LOG_LEVEL": "DEBUG"}
    completed = _heat(("db", "migrate"), env, tmp_path)
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr
    assert completed.stderr.strip().splitlines()[-1].startswith("error: cannot reach PostgreSQL")


def test_missing_topics_are_named(stack, tmp_path: Path) -> None:
    env = {**_env(tmp_path, 1), "HEAT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
           "HEAT_TOPIC_PREFIX": "absent-"}
    completed = _heat(("ingest", "simulate", "--duration", "1"), env, tmp_path)
    line = _one_line(completed)
    assert completed.returncode == 1
    assert "absent-prices" in line and "heat stack up" in line, line


def test_refused_login_names_the_credentials(stack, tmp_path: Path) -> None:
    url = "postgresql://nobody:wrong@" + stack.database_url.split("@", 1)[1]
    env = {**_env(tmp_path, 1), "HEAT_DATABASE_URL": url}
    completed = _heat(("db", "status"), env, tmp_path)
    line = _one_line(completed)
    assert completed.returncode == 1
    assert "check the user and password in HEAT_DATABASE_URL" in line, line
