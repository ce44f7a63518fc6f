"""``heat stack`` as a user runs it: up, up again, env, crash recovery, down, restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from heatmap.settings.kafka import TopicSettings
from heatmap.stack.ports import free_port
from heatmap.topics import topic_specs
from support.waiting import wait_until

HEAT = [sys.executable, "-m", "heatmap.cli.main"]


def _heat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run([*HEAT, *args], env=env, capture_output=True, text=True,
                               timeout=240)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def _exported(env_output: str) -> dict[str, str]:
    # Evaluate the export lines in a real shell, exactly as `eval "$(heat stack env)"`.
    script = env_output + '\nprintf "%s\\n%s\\n" "$HEAT_KAFKA_BOOTSTRAP" "$HEAT_DATABASE_URL"'
    bootstrap, url = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                                    check=True).stdout.splitlines()
    return {"bootstrap": bootstrap, "url": url}


def _our_processes(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "status").read_text()
        except OSError:
            continue
        if marker in cmdline and "State:\tZ" not in state:
            pids.append(int(proc.name))
    return pids


def test_stack_lifecycle(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = {key: value for key, value in os.environ.items()
           if key not in ("HEAT_KAFKA_BOOTSTRAP", "HEAT_DATABASE_URL")}
    env.update({"HEAT_STATE_DIR": str(state_dir), "HEAT_KAFKA_PORT": str(free_port()),
                "HEAT_KAFKA_CONTROLLER_PORT": str(free_port()),
                "HEAT_POSTGRES_PORT": str(free_port()), "HEAT_KAFKA_HEAP_MB": "384",
                "HEAT_POSTGRES_FSYNC": "false", "HEAT_TOPIC_PREFIX": "life."})
    try:
        started = time.monotonic()
        _heat(env, "stack", "up")
        cold_start_s = time.monotonic() - started
        endpoints = _exported(_heat(env, "stack", "env").stdout)
        kafka_pid = int((state_dir / "kafka" / "kafka.pid").read_text())

        # Idempotent: a second `up` keeps the same broker process.
        _heat(env, "stack", "up")
        assert int((state_dir / "kafka" / "kafka.pid").read_text()) == kafka_pid
        topics = len(topic_specs(TopicSettings(prefix="")))
        assert f"{topics}/{topics} topics" in _heat(env, "stack", "status").stdout

        producer = KafkaProducer(bootstrap_servers=endpoints["bootstrap"], acks="all",
                                 max_request_size=16 * 1024 * 1024)
        producer.send("life.prices", key=b"BTCUSDT", value=b'{"kept": true}').get(timeout=30)
        # Checkpoints are several MB: their topic takes records far above the broker's 1 MiB.
        checkpoint = os.urandom(12 * 1024 * 1024)
        producer.send("life.checkpoints", key=b"engine", value=checkpoint).get(timeout=60)
        producer.close()
        reader = KafkaConsumer(bootstrap_servers=endpoints["bootstrap"],
                               consumer_timeout_ms=10_000, auto_offset_reset="earliest")
        reader.assign([TopicPartition("life.checkpoints", 0)])
        assert [record.value for record in reader] == [checkpoint]
        reader.close()
        with psycopg.connect(endpoints["url"], autocommit=True) as connection:
            connection.execute("CREATE TABLE kept (id int)")

        # A crash leaves a stale pid file; `up` notices and starts a new broker.
        os.kill(kafka_pid, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{kafka_pid}/cmdline").exists()
                   or not Path(f"/proc/{kafka_pid}/cmdline").read_bytes(), timeout_s=30)
        _heat(env, "stack", "up")
        assert int((state_dir / "kafka" / "kafka.pid").read_text()) != kafka_pid

        _heat(env, "stack", "down")
        assert _our_processes(str(state_dir)) == []
        assert subprocess.run([*HEAT, "stack", "status"], env=env,
                              capture_output=True).returncode != 0

        # Data survives down/up: the record and the table are still there.
        _heat(env, "stack", "up")
        assert _exported(_heat(env, "stack", "env").stdout) == endpoints
        consumer = KafkaConsumer(bootstrap_servers=endpoints["bootstrap"],
                                 consumer_timeout_ms=10_000, auto_offset_reset="earliest")
        partitions = [TopicPartition("life.prices", p) for p in range(6)]
        consumer.assign(partitions)
        values = [record.value for record in consumer]
        consumer.close()
        assert values == [b'{"kept": true}']
        with psycopg.connect(endpoints["url"]) as connection:
            assert connection.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    finally:
        subprocess.run([*HEAT, "stack", "down", "--purge"], env=env, capture_output=True,
                       timeout=120)
    assert _our_processes(str(state_dir)) == []
    print(f"cold start with cached jars: {cold_start_s:.1f} s")
    assert cold_start_s < 120
