"""The Faust apps of ``heat process`` and ``heat sink`` take acks and the replication
factor of their own topics from the shared Kafka settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from heatmap.process import app as process_app
from heatmap.process.settings import ProcessSettings
from heatmap.settings.kafka import KafkaSettings, ProducerSettings, TopicSettings
from heatmap.sink import app as sink_app
from heatmap.sink.settings import SinkSettings
from heatmap.topics import Topics

CLUSTER = TopicSettings(prefix="t.", replication_factor=3, min_insync_replicas=2)


@pytest.mark.parametrize(("producer", "faust_acks"), [
    (ProducerSettings(), -1), (ProducerSettings(acks="1", idempotence=False), 1)])
def test_faust_apps_follow_the_kafka_settings(producer: ProducerSettings, faust_acks: int,
                                              tmp_path: Path) -> None:
    kafka = KafkaSettings(bootstrap="127.0.0.2:9092", topics=CLUSTER, producer=producer)
    topics = Topics.from_settings(CLUSTER)
    observer: Any = None  # not reached: the apps are built, never started
    worker = process_app.build_app(ProcessSettings(kafka=kafka), topics, 19402,
                                   str(tmp_path / "process"), observer)
    sink, _ = sink_app.build_app(SinkSettings(kafka=kafka), topics, "postgresql://x/y", 19401,
                                 str(tmp_path / "sink"), on_failure=lambda _: None)
    for built in (worker.app, sink):
        assert built.conf.topic_replication_factor == 3
        assert built.conf.producer_acks == faust_acks
