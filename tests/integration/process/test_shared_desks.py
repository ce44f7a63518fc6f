"""Two engines sharing the desks (``HEAT_ENGINE_DESKS``), each over all of the input with
its own group, transactional id, epochs and checkpoints, leave the database exactly as
``heat replay --to-db`` (one engine) does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.heat_pipeline import (
    Pipeline,
    RecordedInputs,
    assert_same_rows,
    ingest,
    wait_for_outputs,
)
from support.waiting import wait_until

pytestmark = pytest.mark.integration

# The test books' desks: alpha on one engine, beta on the other; the first listed also
# frames the accounts without a desk and publishes correlations and thresholds.
DESKS = json.dumps({"engine-alpha": ["alpha"], "engine-beta": ["beta"]})


def test_two_engines_sharing_the_desks_write_what_one_engine_writes(
        running: Pipeline, pipeline_inputs: RecordedInputs, pipeline_expected: dict,
        tmp_path: Path) -> None:
    """Both engines commit epochs into the same topics (keyed by engine); one is killed
    after its first frames and a new worker of it resumes from its own records."""
    inputs, expected = pipeline_inputs, pipeline_expected
    producer = ingest(inputs, running.topics, running.bootstrap, tmp_path / "ingest.log")
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]
    alpha, beta = (running.process(HEAT_ENGINE_NAME=name, HEAT_ENGINE_DESKS=DESKS)
                   for name in ("engine-alpha", "engine-beta"))
    running.sink()
    wait_until(lambda: beta.metrics().get("heat_process_frames_total", 0.0) > 0,
               timeout_s=120, message="engine-beta committed no frames")
    beta_frames = beta.metrics().get("heat_process_frames_total", 0.0)
    beta.kill()
    beta = running.process(HEAT_ENGINE_NAME="engine-beta", HEAT_ENGINE_DESKS=DESKS)
    assert_same_rows(wait_for_outputs(running, expected, inputs.last_input_ms), expected)
    frames = [alpha.metrics().get("heat_process_frames_total", 0.0), beta_frames]
    assert all(count > 0 for count in frames), frames  # each framed its share
    assert beta.health().get("phase") == "live"  # resumed from its own epochs
    correlations = [engine.metrics().get("heat_process_correlation_snapshots_total", 0.0)
                    for engine in (alpha, beta)]
    assert correlations[0] > 0 and correlations[1] == 0, correlations
