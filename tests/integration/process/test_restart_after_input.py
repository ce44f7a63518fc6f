"""The processor killed -9 after every input record is already in Kafka, then started
again: the restarted engine must apply everything still unapplied, and the database end
EQUAL to ``heat replay --to-db`` of the same files.

The shape of a real run that once stopped short: processor and sink start first, ``heat
ingest replay --speed 0`` produces four days of the real bars and the books, and the
processor is killed once the ingest has finished but before the engine has applied
everything. Kill moments: while the engine still catches up (no particular epoch),
inside an epoch's open transaction (frames written, not committed), and right after a
commit that carried a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.heat_pipeline import (
    Pipeline,
    RecordedInputs,
    assert_same_rows,
    ingest,
    pipeline,
    wait_for_outputs,
)
from support.heat_services import alive
from support.processor_workers import FramesTopic, health, recoveries, summary, wait_live
from support.waiting import wait_until

pytestmark = pytest.mark.integration

ONLY_POSTGRESQL = pytest.mark.parametrize("database_server", ["postgresql"], indirect=True)


@pytest.fixture
def running(stack, migrated, tmp_path: Path) -> Iterator[Pipeline]:
    yield from pipeline(stack.kafka_bootstrap, migrated, tmp_path)


def _watermark_ms(body: dict) -> int:
    return int(body.get("watermark_ms") or -1)


@ONLY_POSTGRESQL
@pytest.mark.parametrize("moment", ["catching-up", "open-epoch", "after-checkpoint"])
def test_processor_killed_after_all_input_arrived(
        moment: str, running: Pipeline, restart_inputs: RecordedInputs,
        restart_expected: dict, tmp_path: Path) -> None:
    running.sink()
    checkpoints = {"HEAT_CHECKPOINT_EVERY_S": "1" if moment == "after-checkpoint" else "3600"}
    first = running.process(**checkpoints)
    wait_live(first)
    producer = ingest(restart_inputs, running.topics, running.bootstrap,
                      tmp_path / "ingest.log")
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]
    frames = FramesTopic(running.bootstrap, running.topics.heat_frames)
    try:
        if moment == "open-epoch":
            before = frames.written()
            wait_until(lambda: alive(first) and frames.written() > before, timeout_s=60,
                       interval_s=0.005, message="the processor wrote no frames")
        elif moment == "after-checkpoint":
            epoch = health(first).get("epoch", 0)
            wait_until(lambda: health(first).get("epoch", 0) > epoch, timeout_s=60,
                       interval_s=0.005, message="the processor committed no epoch")
        unapplied = _watermark_ms(health(first)) < restart_inputs.last_input_ms
        first.kill()
    finally:
        frames.close()
    if not unapplied:
        pytest.skip("the engine applied everything before the kill (machine too fast)")
    second = running.process(**checkpoints)
    wait_live(second)
    assert_same_rows(wait_for_outputs(running, restart_expected, restart_inputs.last_input_ms),
                     restart_expected)
    print(f"{moment}: takeover {summary(recoveries(second))}")
