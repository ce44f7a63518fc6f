"""The core guarantee: recorded inputs through Kafka, ``heat process`` and ``heat sink``
leave the database exactly as ``heat replay --to-db`` of the same files does (frames,
frame positions, clusters, alerts and correlations, compared by natural key with identical
values, for every frame before the last input time), whether the input is in Kafka before
the processor starts or arrives while it runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from heat_pipeline import (
    Pipeline,
    RecordedInputs,
    assert_same_rows,
    ingest,
    pipeline,
    wait_for_outputs,
)
from waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def running(stack, migrated, tmp_path: Path) -> Iterator[Pipeline]:
    yield from pipeline(stack.kafka_bootstrap, migrated, tmp_path)


def test_input_in_kafka_before_the_processor_starts(
        running: Pipeline, pipeline_inputs: RecordedInputs, pipeline_expected: dict,
        tmp_path: Path) -> None:
    inputs, expected = pipeline_inputs, pipeline_expected
    producer = ingest(inputs, running.topics, running.bootstrap, tmp_path / "ingest.log")
    assert producer.process.wait(timeout=300) == 0, producer.log()[-3000:]
    running.process()
    running.sink()
    assert_same_rows(wait_for_outputs(running, expected, inputs.last_input_ms), expected)


def test_input_arriving_while_the_processor_runs(
        running: Pipeline, pipeline_inputs: RecordedInputs, pipeline_expected: dict,
        tmp_path: Path) -> None:
    inputs, expected = pipeline_inputs, pipeline_expected
    processor = running.process()
    running.sink()
    wait_until(lambda: processor.health()[1].get("phase") == "live", timeout_s=60,
               message="the processor did not go live")
    producer = ingest(inputs, running.topics, running.bootstrap, tmp_path / "ingest.log")
    assert producer.process.wait(timeout=300) == 0, producer.log()[-3000:]
    assert_same_rows(wait_for_outputs(running, expected, inputs.last_input_ms), expected)
