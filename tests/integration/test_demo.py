"""``heat demo --duration N`` as a user runs it: a stack of its own (simulator), or the
running stack (replay of the real bars); frames, clusters and alerts in the database,
PNGs on disk, and nothing it started left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from conftest import DatabaseServer, new_database
from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka as kafka_broker
from heatmap.stack import postgres
from heatmap.stack.local import LocalStack, StackState
from heatmap.stack.ports import free_port
from heatmap.stack.settings import StackSettings
from support.heat_pipeline import recorded_inputs

HEAT = [sys.executable, "-m", "heatmap.cli.main"]
MARKER = "HEAT_DEMO_TEST_RUN"


def _demo(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run([*HEAT, "demo", *args], env=env, cwd=cwd, capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


def _environment(run: str, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEAT_")}
    env.update({MARKER: run, "HEAT_POSTGRES_FSYNC": "false", "HEAT_KAFKA_HEAP_MB": "384",
                **settings})
    return env


def _processes_of(run: str) -> list[str]:
    """Live processes started with this run's marker in their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"{MARKER}={run}".encode() in environ and "State:\tZ" not in status:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def _counts(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as connection:
        counts = {table: connection.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier("heat", table))).fetchone()[0]  # type: ignore[index]
            for table in ("frames", "frame_positions", "frame_clusters", "alerts", "prices")}
        counts["firing"] = connection.execute(
            "SELECT count(*) FROM heat.alerts WHERE state = 'firing'").fetchone()[0]  # type: ignore[index]
    return counts


def test_demo_on_a_stack_of_its_own_with_the_simulator(tmp_path: Path) -> None:
    run = uuid.uuid4().hex
    state_dir = tmp_path / "state"
    env = _environment(run, HEAT_STATE_DIR=str(state_dir), HEAT_KAFKA_PORT=str(free_port()),
                       HEAT_KAFKA_CONTROLLER_PORT=str(free_port()),
                       HEAT_POSTGRES_PORT=str(free_port()), HEAT_WEB_PORT=str(free_port()))
    completed = _demo(env, tmp_path, "--duration", "15", "--speed", "60",
                      "--snapshot-every-min", "10", "--snapshot-dir", "shots")
    out = completed.stdout
    # Not a terminal: periodic plain status lines, the live page's address, what is kept.
    assert f"Live heat page: http://127.0.0.1:{env['HEAT_WEB_PORT']}/live" in out
    # With a token of the run to log in, revoked when the run stopped.
    assert "it asks for an API token: heat_" in out
    assert json.loads((tmp_path / "shots" / "api-tokens.json").read_text())["tokens"] == []
    assert out.count("] event ") >= 3 and "process healthy" in out
    assert "stopped kafka and postgres; their data is kept" in out, out
    assert _processes_of(run) == []
    state = StackState(**json.loads((state_dir / "stack.json").read_text()))
    stack = LocalStack(StackSettings(state_dir=state_dir))
    assert stack.kafka_pid() is None
    assert state.postgres_port is not None
    cluster = stack.postgres_cluster(state.postgres_port)
    assert postgres.pid(cluster) is None
    pictures = sorted((tmp_path / "shots").glob("*.png"))
    assert pictures and all(picture.stat().st_size > 10_000 for picture in pictures)
    assert (tmp_path / "shots" / "logs" / "process.log").exists()
    # The database kept the run: start its PostgreSQL again to look.
    postgres.start(cluster, timeout_s=60)
    try:
        counts = _counts(state.database_url)
    finally:
        postgres.stop(cluster, timeout_s=30)
    assert counts["frames"] > 100 and counts["frame_clusters"] > 100, counts
    assert counts["frame_positions"] > counts["frames"], counts
    assert counts["alerts"] > 0 and counts["firing"] > 0 and counts["prices"] > 0, counts
    assert f"{counts['frames']:,} frames" in out


def test_demo_replays_the_real_bars_on_the_running_stack(
        tmp_path: Path, stack: StackState, postgresql_server: DatabaseServer) -> None:
    run = uuid.uuid4().hex
    inputs = recorded_inputs(tmp_path / "inputs", "2018-01-12T06")
    with new_database(postgresql_server) as url:
        env = _environment(run, HEAT_STATE_DIR=str(tmp_path / "state"),
                           HEAT_KAFKA_BOOTSTRAP=stack.kafka_bootstrap, HEAT_DATABASE_URL=url)
        completed = _demo(env, tmp_path, "--replay", str(tmp_path / "inputs" / "prices"),
                          "--positions", str(inputs.positions), "--accounts",
                          str(inputs.accounts), "--speed", "0", "--duration", "15",
                          "--snapshot-every-min", "360", "--timeframe", "4h")
        counts = _counts(url)
    out = completed.stdout
    assert "the stack was already running and is left running" in out, out
    assert _processes_of(run) == []
    assert counts["frames"] > 1000 and counts["frame_clusters"] > 1000, counts
    assert counts["alerts"] > 0 and counts["firing"] > 0, counts
    # At least the last moment of the run, drawn for every account holding positions.
    pictures = sorted((tmp_path / "demo-snapshots").glob("201801*.png"))
    assert any(picture.name.endswith("-acct-b2.png") for picture in pictures), pictures
    # The session's broker still answers, without the run's own topics.
    names = kafka_broker.topic_names(KafkaConnection(bootstrap_servers=stack.kafka_bootstrap))
    assert names and not any(name.startswith("demo-") for name in names)
