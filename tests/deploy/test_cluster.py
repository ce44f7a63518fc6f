"""The three-broker overlay (``docker-compose.cluster.yml``): the real bars through
ingest, two processor replicas and the sink while the broker leading the engine's own
topics is killed and later restarted; the database must equal ``heat replay --to-db``
of the same files, nothing lost and nothing duplicated."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient
from psycopg import sql
from pydantic import SecretStr

from heatmap.db import migrations
from heatmap.settings.database import DatabaseSettings
from heatmap.settings.kafka import KafkaConnection
from heatmap.topics import Topics
from support.compose_stack import ComposeStack, start_stack
from support.heat_pipeline import (
    BAR,
    PIPELINE_END,
    TIMEFRAMES,
    assert_same_rows,
    output_counts,
    output_rows,
    recorded_inputs,
    replay_to_db,
    row_differences,
)
from support.waiting import wait_until

pytestmark = pytest.mark.timeout(2400)

BROKERS = {1: "kafka", 2: "kafka-2", 3: "kafka-3"}
INPUTS_IN_CONTAINER = "/inputs"


@pytest.fixture(scope="module")
def cluster(standin_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ComposeStack]:
    # The simulator stays off: the test's own ingest replays the real bars.
    # Replication makes partitions readable at different moments, more so on two busy
    # cores: the processors wait 5 s for a quiet partition, so the applied order is the
    # event-time order replay uses, through the broker's death and a takeover too.
    settings = {**standin_images, "HEAT_BAR_INTERVAL": BAR, "HEAT_TIMEFRAMES": TIMEFRAMES,
                "HEAT_IDLE_AFTER_MS": "5000"}
    stack = start_stack("heat-deploy-cluster", settings,
                        ("docker-compose.yml", "docker-compose.cluster.yml"),
                        tmp_path_factory.mktemp("cluster"), without=("ingest",))
    yield stack
    stack.run("down", "-v", "--remove-orphans", check=False)


def host_kafka(stack: ComposeStack) -> KafkaConnection:
    """The admin on every broker's published listener."""
    bootstrap = ",".join(f"127.0.0.1:{stack.env[name]}" for name in (
        "HEAT_KAFKA_HOST_PORT", "HEAT_KAFKA_2_HOST_PORT", "HEAT_KAFKA_3_HOST_PORT"))
    return stack.kafka_connection("admin", bootstrap)


def leader_of(stack: ComposeStack, topic: str) -> int:
    admin = KafkaAdminClient(**host_kafka(stack).kafka_python())
    try:
        (described,) = admin.describe_topics([topic])
        return int(described["partitions"][0]["leader_id"])
    finally:
        admin.close()


def expected_database(stack: ComposeStack, inputs: Any) -> DatabaseSettings:
    """A second database in the same server, filled by ``heat replay --to-db``."""
    with psycopg.connect(stack.admin_database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("replayed")))
    settings = DatabaseSettings(
        database_url=SecretStr(stack.database_url("replayed")),
        writer_password=SecretStr(stack.env["HEAT_WRITER_PASSWORD"]),
        reader_password=SecretStr(stack.env["HEAT_READER_PASSWORD"]))
    migrations.migrate(settings)
    replay_to_db(inputs, settings, host_kafka(stack).bootstrap_servers)
    return settings


def ingest_in_container(stack: ComposeStack, inputs: Any, folder: Path
                        ) -> subprocess.Popen[str]:
    """``heat ingest replay --speed 0`` of ``inputs`` in an ingest container."""
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)  # the image's user reads them
    args = [argument.replace(str(folder), INPUTS_IN_CONTAINER) for argument in inputs.args()]
    return subprocess.Popen(
        stack.command("run", "--rm", "--no-deps", "-v", f"{folder}:{INPUTS_IN_CONTAINER}:ro",
                      "ingest", "replay", *args, "--speed", "0"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"})


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True)


def test_a_killed_broker_loses_and_duplicates_nothing(cluster: ComposeStack,
                                                      tmp_path: Path) -> None:
    inputs = recorded_inputs(tmp_path / "inputs", PIPELINE_END)
    expected_settings = expected_database(cluster, inputs)
    expected = output_rows(expected_settings.admin_url(), inputs.last_input_ms)
    want = {table: len(rows) for table, rows in expected.items()}
    url = cluster.admin_database_url

    ingest = ingest_in_container(cluster, inputs, tmp_path / "inputs")
    # The broker leading the engine's applied order: its loss moves the processor's
    # transactions, the sink's reads and the ingest's writes to the other two.
    victim = BROKERS[leader_of(cluster, Topics.from_settings().sequence)]
    wait_until(lambda: output_counts(url, inputs.last_input_ms)["frames"] > 0, 300,
               interval_s=1, message="no frames stored before the broker kill")
    (victim_container,) = cluster.containers(victim)
    # Held down until the test restarts it (Docker would restart it at once).
    docker("update", "--restart=no", victim_container)
    docker("kill", victim_container)
    stored_at_kill = output_counts(url, inputs.last_input_ms)["frames"]
    wait_until(lambda: output_counts(url, inputs.last_input_ms)["frames"] > stored_at_kill,
               300, interval_s=1, message=lambda: f"nothing stored with {victim} down: "
               f"{cluster.logs('process')[-3000:]}")
    assert ingest.wait(timeout=600) == 0, ingest.stdout.read() if ingest.stdout else ""
    docker("start", victim_container)
    docker("update", "--restart=unless-stopped", victim_container)
    cluster.wait_healthy([victim], timeout_s=300)

    def complete() -> bool:
        return output_counts(url, inputs.last_input_ms) == want

    wait_until(complete, 600, interval_s=2, message=lambda: (
        f"stored {output_counts(url, inputs.last_input_ms)}, expected {want}; "
        f"{row_differences(output_rows(url, inputs.last_input_ms), expected)}"))
    assert_same_rows(output_rows(url, inputs.last_input_ms), expected)
    print(f"killed {victim} (leader of the applied order); stored {want}")
