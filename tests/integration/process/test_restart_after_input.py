"""The processor killed -9 after every input record is already in Kafka, then started
again: the restarted engine must apply everything still unapplied, and the database end
EQUAL to ``heat replay --to-db`` of the same files.

The shape of a real run that once stopped short: processor and sink start first, ``heat
ingest replay --speed 0`` produces four days of the real bars and the books, and the
processor is killed once the ingest has finished but before the engine has applied
everything. Kill moments: while the engine still catches up (after its first epoch),
inside an epoch's open transaction (frames written, not committed), and right after a
commit that carried a checkpoint.

On a quiet machine the engine keeps pace with the ingest, so "not applied yet" is made
certain rather than left to the machine's load: the live processor is frozen (SIGSTOP)
while the ingest produces, and thawed once everything is in Kafka. Its group session
and watchdog are set to outlast the freeze.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from support.heat_pipeline import (
    Pipeline,
    RecordedInputs,
    assert_same_rows,
    ingest,
    wait_for_outputs,
)
from support.heat_services import alive
from support.processor_workers import FramesTopic, health, recoveries, summary, wait_live
from support.waiting import wait_until

pytestmark = pytest.mark.integration

ONLY_POSTGRESQL = pytest.mark.parametrize("database_server", ["postgresql"], indirect=True)


@ONLY_POSTGRESQL
@pytest.mark.parametrize("moment", ["catching-up", "open-epoch", "after-checkpoint"])
def test_processor_killed_after_all_input_arrived(
        moment: str, running: Pipeline, restart_inputs: RecordedInputs,
        restart_expected: dict, tmp_path: Path) -> None:
    running.sink()
    settings = {"HEAT_CHECKPOINT_EVERY_S": "1" if moment == "after-checkpoint" else "3600",
                "HEAT_SESSION_TIMEOUT_S": "20", "HEAT_WATCHDOG_S": "300"}
    first = running.process(**settings)
    epoch = wait_live(first)
    frames = FramesTopic(running.bootstrap, running.topics.heat_frames)
    try:
        os.kill(first.pid, signal.SIGSTOP)
        try:
            producer = ingest(restart_inputs, running.topics, running.bootstrap,
                              tmp_path / "ingest.log")
            assert producer.process.wait(timeout=60) == 0, producer.log_text()[-3000:]
        finally:
            os.kill(first.pid, signal.SIGCONT)
        # catching-up: two epochs committed (the first carries the checkpoint, so the next
        # owner replays one); otherwise right after the first commit (with a checkpoint),
        # or inside the transaction after it (frames written, not committed).
        epochs = 2 if moment == "catching-up" else 1
        wait_until(lambda: health(first).get("epoch", 0) >= epoch + epochs, timeout_s=60,
                   interval_s=0.005, message="the processor committed no epoch")
        if moment == "open-epoch":
            wait_until(lambda: alive(first) and frames.written() > frames.committed(),
                       timeout_s=60, interval_s=0.002,
                       message="the processor opened no transaction with frames")
        first.kill()
        committed = frames.committed()
    finally:
        frames.close()
    # What the restarted engine must make: the frames the killed one had not committed.
    assert committed < len(restart_expected["frames"]), "the kill came after the last frame"
    second = running.process(**settings)
    wait_live(second)
    assert_same_rows(wait_for_outputs(running, restart_expected, restart_inputs.last_input_ms),
                     restart_expected)
    print(f"{moment}: takeover {summary(recoveries(second))}")
