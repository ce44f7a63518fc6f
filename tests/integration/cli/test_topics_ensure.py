"""``heat topics ensure`` against the session's broker, as an init job runs it: only the
connection and topic settings, no home directory, no state directory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.stack import kafka
from heatmap.stack.kafka_topics import partitions
from heatmap.stack.local import StackState
from heatmap.topics import topic_specs

HEAT = (sys.executable, "-m", "heatmap.cli.main")
TOPIC_COUNT = len(topic_specs(TopicSettings(prefix="")))


@pytest.fixture
def prefix(stack: StackState) -> Iterator[str]:
    """A topic prefix of this test's own; its topics are deleted afterwards."""
    chosen = f"ensure-{uuid.uuid4().hex[:8]}."
    yield chosen
    kafka.delete_topics(KafkaConnection(bootstrap_servers=stack.kafka_bootstrap), chosen)


def ensure(stack: StackState, prefix: str, tmp_path: Path, *args: str, **settings: str
           ) -> subprocess.CompletedProcess[str]:
    """``heat topics ensure`` with no home and a state directory it could not create."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HEAT_", "XDG_"))}
    env.update({"HOME": "/nonexistent", "HEAT_STATE_DIR": "/etc/hostname/heat",
                "HEAT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "HEAT_TOPIC_PREFIX": prefix,
                **settings})
    return subprocess.run([*HEAT, "topics", "ensure", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)


def one_line(completed: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in completed.stderr, completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    return lines[0]


def test_creates_then_finds_every_topic(stack: StackState, prefix: str, tmp_path: Path
                                        ) -> None:
    specs = topic_specs(TopicSettings(prefix=prefix))
    first = ensure(stack, prefix, tmp_path)
    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    assert first.stdout.splitlines() == [
        f"created {spec.name}: {partitions(spec.partitions)}, replication 1" for spec in specs]
    again = ensure(stack, prefix, tmp_path)
    assert (again.returncode, again.stderr) == (0, ""), again.stderr
    assert again.stdout.splitlines() == [
        f"exists  {spec.name}: {partitions(spec.partitions)}, replication 1" for spec in specs]
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_a_topic_with_fewer_partitions_than_configured_is_reported(
        stack: StackState, prefix: str, tmp_path: Path) -> None:
    assert ensure(stack, prefix, tmp_path).returncode == 0
    more = ensure(stack, prefix, tmp_path, HEAT_TOPIC_PRICES_PARTITIONS="12")
    assert more.returncode == 1
    differing = [line for line in more.stdout.splitlines() if not line.startswith("exists")]
    assert differing == [f"differs {prefix}prices: 6 partitions, replication 1 "
                         "(configured 12 partitions)"]
    assert one_line(more) == f"error: 1 of {TOPIC_COUNT} topics differs: see the lines above"


def test_check_creates_nothing(stack: StackState, prefix: str, tmp_path: Path) -> None:
    checked = ensure(stack, prefix, tmp_path, "--check")
    assert checked.returncode == 1
    assert [line.split()[0] for line in checked.stdout.splitlines()] == ["missing"] * TOPIC_COUNT
    assert one_line(checked) == (f"error: {TOPIC_COUNT} of {TOPIC_COUNT} topics missing: "
                                 "see the lines above")
    names = kafka.topic_names(KafkaConnection(bootstrap_servers=stack.kafka_bootstrap))
    assert not any(name.startswith(prefix) for name in names)


def test_more_replicas_than_brokers_is_refused_per_topic(
        stack: StackState, prefix: str, tmp_path: Path) -> None:
    refused = ensure(stack, prefix, tmp_path, HEAT_TOPIC_REPLICATION_FACTOR="3",
                     HEAT_TOPIC_MIN_INSYNC_REPLICAS="2")
    assert refused.returncode == 1
    lines = refused.stdout.splitlines()
    assert len(lines) == TOPIC_COUNT and all(line.startswith("failed  ") for line in lines), lines
    assert "replication 3" in lines[0]
    assert one_line(refused) == (f"error: {TOPIC_COUNT} of {TOPIC_COUNT} topics failed: "
                                 "see the lines above")
