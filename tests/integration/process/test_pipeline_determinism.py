"""The core guarantee: recorded inputs through Kafka, ``heat process`` and ``heat sink``
leave the database exactly as ``heat replay --to-db`` of the same files does (frames,
frame positions, clusters, alerts and correlations, compared by natural key with identical
values, for every frame before the last input time), whether the input is in Kafka before
the processor starts or arrives while it runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaProducer

from heatmap.schema import Price, encode
from support.heat_pipeline import (
    Pipeline,
    RecordedInputs,
    assert_same_rows,
    ingest,
    wait_for_outputs,
)
from support.waiting import wait_until

pytestmark = pytest.mark.integration


def test_input_in_kafka_before_the_processor_starts(
        running: Pipeline, pipeline_inputs: RecordedInputs, pipeline_expected: dict,
        tmp_path: Path) -> None:
    inputs, expected = pipeline_inputs, pipeline_expected
    producer = ingest(inputs, running.topics, running.bootstrap, tmp_path / "ingest.log")
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]
    # Records produced past ingest's checks: the processor refuses them, nothing else.
    bad = KafkaProducer(bootstrap_servers=running.bootstrap)
    bad.send(running.topics.prices, key=b"ETHBTC", value=b'{"symbol": "ETHBTC", "price": ')
    bad.send(running.topics.prices, key=b"ETHBTC", value=encode(Price(
        symbol="ETHBTC", ts=datetime(2031, 1, 1, tzinfo=UTC), price=0.1, source="typo")))
    bad.close()
    running.process()
    running.sink()
    assert_same_rows(wait_for_outputs(running, expected, inputs.last_input_ms), expected)
    reasons = wait_until(lambda: deadletter_reasons(running.database.admin_url()), 60)
    assert len(reasons) == 2
    assert all(reason.startswith(f"{running.topics.prices} (process): ") for reason in reasons)
    assert any("more than a year after" in reason for reason in reasons)


def deadletter_reasons(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute(
            "SELECT reason FROM heat.deadletters ORDER BY kafka_offset")]


def test_input_arriving_while_the_processor_runs(
        running: Pipeline, pipeline_inputs: RecordedInputs, pipeline_expected: dict,
        tmp_path: Path) -> None:
    inputs, expected = pipeline_inputs, pipeline_expected
    processor = running.process()
    running.sink()
    wait_until(lambda: processor.health().get("phase") == "live", timeout_s=60,
               message="the processor did not go live")
    producer = ingest(inputs, running.topics, running.bootstrap, tmp_path / "ingest.log")
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]
    assert_same_rows(wait_for_outputs(running, expected, inputs.last_input_ms), expected)
