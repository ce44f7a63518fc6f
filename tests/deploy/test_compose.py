"""``docker compose up`` of the production stack, proven against the running containers.

The tests share one stack and run in file order: the later ones (a killed processor,
``down`` then ``up``, a third replica) change it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka import errors as aiokafka_errors
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka import errors as kafka_errors
from psycopg import sql
from pydantic import SecretStr

from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.stack.kafka import topic_names
from heatmap.topics import Topics
from support.compose_stack import (
    REPO,
    SECRETS,
    ComposeStack,
    active_and_standbys,
    http_get,
    process_health,
)
from support.topic_records import read_briefly
from support.waiting import wait_until

# The first test builds every image and starts the stack (minutes on a fresh machine).
pytestmark = pytest.mark.timeout(2400)

PREFIX = TopicSettings().prefix
TOPICS = Topics.from_settings()
FRAME_TABLES = ("frames", "frame_positions", "frame_clusters", "alerts", "prices")


def kafka(stack: ComposeStack) -> KafkaConnection:
    return stack.kafka_connection("admin")


def row_counts(stack: ComposeStack) -> dict[str, int]:
    with psycopg.connect(stack.admin_database_url, connect_timeout=10) as connection:
        return {table: connection.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier("heat", table))).fetchone()[0] for table in FRAME_TABLES}


def end_offsets(stack: ComposeStack) -> dict[str, int]:
    """Sum of each product topic's end offsets (what a restart must keep)."""
    consumer = KafkaConsumer(**kafka(stack).kafka_python())
    try:
        totals = {}
        for topic in TOPICS.__dict__.values():
            partitions = [TopicPartition(topic, p)
                          for p in consumer.partitions_for_topic(topic) or ()]
            totals[topic] = sum(consumer.end_offsets(partitions).values())
        return totals
    finally:
        consumer.close()


def frames_in_topic(stack: ComposeStack) -> int:
    return end_offsets(stack)[TOPICS.heat_frames]


def test_compose_without_env_file_names_the_missing_secret(tmp_path: Path) -> None:
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    refused = subprocess.run(["docker-compose", "config", "-q"], cwd=tmp_path,
                             capture_output=True, text=True,
                             env={"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert refused.returncode != 0
    said = refused.stderr.strip().splitlines()
    assert len(said) == 1, said
    named = re.search(r"set (\w+) in \.env", said[0])
    assert named is not None and named[1] in SECRETS, said[0]


def test_every_service_is_healthy_and_init_exited_zero(compose: ComposeStack) -> None:
    (init,) = compose.containers("init", every=True)
    assert compose.state(init)["ExitCode"] == 0
    assert len(compose.containers("process")) == 2
    for service in ("kafka", "timescaledb", "prometheus", "alertmanager", "ingest", "process",
                    "sink"):
        for container in compose.containers(service):
            assert compose.health(container) == "healthy", service
            policy = compose.inspect(container)["HostConfig"]["RestartPolicy"]["Name"]
            assert policy == "unless-stopped", service


def test_init_created_the_topics_and_migrated(compose: ComposeStack) -> None:
    assert set(TOPICS.__dict__.values()) <= topic_names(kafka(compose))
    with psycopg.connect(compose.admin_database_url, connect_timeout=10) as connection:
        hypertables = {row[0] for row in connection.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables")}
        version = connection.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    assert {"frames", "prices", "alerts"} <= hypertables
    assert version == ("2.28.3",)


def test_each_key_is_its_servers_alone(compose: ComposeStack) -> None:
    def files(service: str, directory: str) -> dict[str, str]:
        """``name: "uid mode"`` of each file in ``directory`` of ``service``'s container."""
        listed = subprocess.run(["docker", "exec", compose.containers(service)[0], "find",
                                 directory, "-type", "f", "-exec", "stat", "-c", "%n %u %a",
                                 "{}", "+"], capture_output=True, text=True, check=True).stdout
        return {Path(name).name: f"{uid} {mode}"
                for name, uid, mode in (line.split() for line in listed.splitlines())}

    assert files("kafka", "/etc/kafka/tls") == {"broker.pem": "1000 600", "ca.pem": "0 644"}
    assert files("timescaledb", "/etc/heat/tls") == {
        "server.key": "70 600", "server.crt": "0 644", "ca.pem": "0 644"}
    for client in ("ingest", "process", "sink"):
        assert files(client, "/etc/heat/tls") == {"ca.pem": "0 644"}, client


def test_kafka_lets_in_only_its_users_each_to_its_own(compose: ComposeStack) -> None:
    """What the secure stack's integration test proves in detail, on the deployed broker:
    no credentials, TLS alone or a wrong password never bootstrap; a user outside its ACLs
    is refused; a desk's bot reads the frames."""
    bot = compose.kafka_connection("bot")
    plain = KafkaConnection(bootstrap_servers=compose.kafka_bootstrap)
    tls_only = KafkaConnection(bootstrap_servers=compose.kafka_bootstrap,
                               security_protocol="SSL", ssl_cafile=compose.ca_file())
    wrong = bot.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    for refused in (plain, tls_only, wrong):
        with pytest.raises(kafka_errors.KafkaTimeoutError, match="Unable to bootstrap"):
            KafkaAdminClient(**refused.kafka_python(), bootstrap_timeout_ms=5000,
                             request_timeout_ms=5000)
    group = f"{PREFIX}bot-deploy-test"
    with pytest.raises(aiokafka_errors.TopicAuthorizationFailedError):
        asyncio.run(read_briefly(bot, TOPICS.positions, group))
    with pytest.raises(aiokafka_errors.GroupAuthorizationFailedError):
        asyncio.run(read_briefly(bot, TOPICS.heat_frames, f"{PREFIX}sink"))
    wait_until(lambda: asyncio.run(read_briefly(bot, TOPICS.heat_frames, group)) > 0, 180,
               interval_s=1, message="the bot read no frame")


def test_the_database_takes_tls_clients_only(compose: ComposeStack) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(compose.database_url(sslmode="disable"), connect_timeout=10)
    with psycopg.connect(compose.admin_database_url, connect_timeout=10) as connection:
        (in_use,) = connection.execute(
            "SELECT count(*) FILTER (WHERE NOT ssl) FROM pg_stat_ssl s "
            "JOIN pg_stat_activity a USING (pid) WHERE a.client_addr IS NOT NULL").fetchone()
    # Every network connection open now (the sink's among them) is encrypted.
    assert in_use == 0


def test_simulated_ticks_become_frames_in_timescaledb(compose: ComposeStack) -> None:
    counts = wait_until(lambda: (c := row_counts(compose))["frames"] > 0 and c, 300,
                        interval_s=2,
                        message=lambda: f"no frames stored: {compose.logs('sink')[-3000:]}")
    assert counts["frame_positions"] > 0 and counts["prices"] > 0


def test_prometheus_scrapes_every_service(compose: ComposeStack) -> None:
    expected = {"heat-ingest": 1, "heat-process": 2, "heat-sink": 1}

    def scraped() -> dict[str, int]:
        answer = http_get(compose.url("HEAT_PROMETHEUS_HOST_PORT", "/api/v1/query"),
                          {"query": "up"}).json()
        up: dict[str, int] = {}
        for sample in answer["data"]["result"]:
            if sample["value"][1] == "1":
                job = sample["metric"]["job"]
                up[job] = up.get(job, 0) + 1
        return up

    wait_until(lambda: scraped() == expected, 180, interval_s=3,
               message=lambda: f"up == 1 by job: {scraped()}, expected {expected}")


def test_live_page_and_frames_answer_through_the_published_port(compose: ComposeStack) -> None:
    active, standbys = active_and_standbys(compose)
    active_port = compose.host_port(active, 9402)
    health = process_health(compose, active)
    assert health is not None
    # Each replica advertises its own container, not the address it listens on.
    assert health["url"] == f"http://{compose.hostname(active)}:9402"
    token = compose.create_token("deploy-test")
    refused = http_get(f"http://127.0.0.1:{active_port}/v1/books")
    assert refused.status == 401
    books = wait_until(lambda: http_get(f"http://127.0.0.1:{active_port}/v1/books",
                                        token=token).json().get("accounts"), 120, interval_s=1)
    book = books[0]["account"]
    query = {"account": book, "timeframe": "1h"}
    latest = http_get(f"http://127.0.0.1:{active_port}/v1/frames/latest", query, token=token)
    assert latest.status == 200 and latest.json()["account"] == book
    page = http_get(f"http://127.0.0.1:{active_port}/live")
    assert page.status == 200 and "text/html" in page.headers["content-type"]
    for standby in standbys:
        redirected = http_get(
            f"http://127.0.0.1:{compose.host_port(standby, 9402)}/v1/frames/latest", query,
            token=token)
        assert redirected.status == 307
        assert redirected.headers["location"].startswith(health["url"] + "/v1/frames/latest")


def test_a_stopped_sink_alerts_through_alertmanager(compose: ComposeStack) -> None:
    compose.run("stop", "sink")
    try:
        def sink_missing() -> list[dict[str, Any]]:
            alerts = http_get(compose.url("HEAT_ALERTMANAGER_HOST_PORT", "/api/v2/alerts")
                              ).json()
            return [alert for alert in alerts
                    if alert["labels"].get("alertname") == "HeatServiceMissing"
                    and alert["labels"].get("job") == "heat-sink"]

        (alert,) = wait_until(sink_missing, 300, interval_s=5,
                              message="Alertmanager never received HeatServiceMissing")
        assert alert["labels"]["severity"] == "critical"
    finally:
        compose.run("start", "sink")
        compose.wait_healthy(["sink"], timeout_s=120)


def test_killed_active_processor_is_replaced_within_15_s(compose: ComposeStack) -> None:
    active, _ = active_and_standbys(compose)
    before = frames_in_topic(compose)
    wait_until(lambda: frames_in_topic(compose) > before, 120, interval_s=0.5,
               message="no frames before the kill")
    killed_at = time.monotonic()
    subprocess.run(["docker", "kill", active], check=True, capture_output=True)
    at_kill = frames_in_topic(compose)
    wait_until(lambda: frames_in_topic(compose) > at_kill, 60, interval_s=0.25,
               message="frames did not resume after the active processor was killed")
    resumed_s = time.monotonic() - killed_at
    print(f"frames resumed {resumed_s:.1f} s after docker kill of the active processor")
    assert resumed_s <= 15
    new_active, _ = active_and_standbys(compose)
    assert new_active != active


def test_down_and_up_keeps_rows_topics_and_checkpoint(compose: ComposeStack) -> None:
    wait_until(lambda: row_counts(compose)["frames"] > 0, 120, interval_s=2)
    compose.run("stop", "ingest")  # nothing new while the contents are compared
    compose.wait_healthy(["process", "sink"], timeout_s=120)
    settled = wait_until(Settled(compose), 180, interval_s=5,
                         message="the pipeline did not settle after ingest stopped")
    offsets, rows = settled
    compose.run("down")  # volumes kept
    compose.run("up", "-d")
    compose.wait_healthy(["kafka", "timescaledb", "process", "sink"], timeout_s=600)
    after_offsets = end_offsets(compose)
    assert all(after_offsets[topic] >= offsets[topic] for topic in offsets), after_offsets
    assert after_offsets[TOPICS.checkpoints] > 0
    after_rows = row_counts(compose)
    assert all(after_rows[table] >= rows[table] for table in rows), (rows, after_rows)
    # The engine resumed from its checkpoint, not from the start of the inputs.
    active, _ = active_and_standbys(compose)
    took_over = wait_until(lambda: _recoveries(compose, active), 120, interval_s=1)
    assert took_over[-1]["checkpoint"], took_over


class Settled:
    """Called every few seconds: the readings once two in a row are the same."""

    def __init__(self, compose: ComposeStack) -> None:
        self.compose = compose
        self.previous: tuple[dict[str, int], dict[str, int]] | None = None

    def __call__(self) -> tuple[dict[str, int], dict[str, int]] | None:
        reading = end_offsets(self.compose), row_counts(self.compose)
        settled = reading == self.previous
        self.previous = reading
        return reading if settled else None


def _recoveries(compose: ComposeStack, container: str) -> list[dict[str, Any]]:
    """The processor's "committed state read" log lines (one per takeover)."""
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    lines = []
    for line in (logs.stdout + logs.stderr).splitlines():
        if '"committed state read"' in line:
            lines.append(json.loads(line[line.index("{"):]))
    return lines


def test_scale_process_to_three(compose: ComposeStack) -> None:
    compose.run("up", "-d", "--no-recreate", "--scale", "process=3")
    compose.wait_healthy(["process"], timeout_s=300)
    assert len(compose.containers("process")) == 3
    _, standbys = active_and_standbys(compose)
    assert len(standbys) == 2
