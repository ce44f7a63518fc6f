"""Faults on the real pipeline (``heat ingest replay``, ``heat process``, ``heat sink``,
Kafka, PostgreSQL as real processes): the active processor killed -9 again and again,
the sink killed -9, PostgreSQL stopped for half a minute, the broker killed -9, and a
standby taking over from a killed worker. Every test ends with the database EQUAL to
``heat replay --to-db`` of the same files (the determinism test's comparison).

The input is in Kafka before the workers start, so the processor catches up at full
speed: each epoch then holds one engine step (2,000 events, about 200 bar closes) and
its frames, so a kill at almost any moment lands while bars close and frames are made.

Where the database plays no part in the fault (processor, sink and broker kills,
failover), the test runs on plain PostgreSQL only, to keep the suite's time: the sink
writes both kinds through the same writer, the determinism test compares the pipeline
with ``heat replay`` on both, and the sink's own tests kill it on both. The PostgreSQL
outage runs on both kinds. The broker test starts a broker of its own: the session's
broker serves the other tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heatmap.stack.services import HeatService
from support.heat_pipeline import (
    Pipeline,
    RecordedInputs,
    assert_same_rows,
    ingest,
    output_counts,
    pipeline,
    wait_for_outputs,
)
from support.heat_services import KafkaBroker, alive
from support.processor_workers import (
    FramesTopic,
    health,
    recoveries,
    summary,
    wait_epoch,
    wait_live,
)
from support.waiting import wait_until

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0  # how long PostgreSQL stays down
BROKER_DOWN_S = 35.0  # longer than the processor producer's 30 s request timeout
TAKEOVER_LIMIT_S = 15.0  # from kill -9 of the active worker to the standby's engine live
ONLY_POSTGRESQL = pytest.mark.parametrize("database_server", ["postgresql"], indirect=True)


def ingest_all(running: Pipeline, inputs: RecordedInputs, log_path: Path) -> None:
    """Every input record into Kafka, before any worker starts."""
    producer = ingest(inputs, running.topics, running.bootstrap, log_path)
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]


@ONLY_POSTGRESQL
def test_active_processor_killed_three_times(
        running: Pipeline, pipeline_inputs: RecordedInputs, pipeline_expected: dict,
        tmp_path: Path) -> None:
    """kill -9 of the only processor worker three times, restarted each time: right after
    a commit while the next bars close, inside an epoch's open transaction (some of its
    frames written, not committed), and right after a new owner's first commit.

    Every owner checkpoints its first epoch. The first two run with checkpoints once an
    hour, so their successors restore the first owner's checkpoint and replay the epoch
    committed after it (the aborted transaction is invisible); the last two checkpoint
    every second, and the last recovery restores the checkpoint committed just before
    the kill, with no epoch to replay."""
    ingest_all(running, pipeline_inputs, tmp_path / "ingest.log")
    running.sink()
    rarely = {"HEAT_CHECKPOINT_EVERY_S": "3600"}
    often = {"HEAT_CHECKPOINT_EVERY_S": "1"}
    frames = FramesTopic(running.bootstrap, running.topics.heat_frames)
    try:
        first = running.process(**rarely)
        wait_epoch(first, wait_live(first) + 2)
        first.kill()  # two epochs committed, the third one's bars closing

        second = running.process(**rarely)
        wait_live(second)
        before = frames.written()
        wait_until(lambda: alive(second) and frames.written() > before, timeout_s=60,
                   interval_s=0.005, message="the new owner wrote no frames")
        second.kill()  # its first transaction is open: frames written, not committed
        assert frames.committed() < frames.written(), "the kill missed the open transaction"

        third = running.process(**often)
        wait_epoch(third, wait_live(third) + 1)
        third.kill()  # right after its first commit, which carries a checkpoint

        last = running.process(**often)
        wait_live(last)  # the third may have stored everything already: wait for the takeover
        assert_same_rows(wait_for_outputs(running, pipeline_expected,
                                          pipeline_inputs.last_input_ms), pipeline_expected)
    finally:
        frames.close()
    taken_over = [recoveries(worker)[0] for worker in (second, third, last)]
    print("takeovers:", summary(taken_over))
    assert all(r["checkpoint"] for r in taken_over), taken_over
    assert [r["epochs_replayed"] > 0 for r in taken_over] == [True, True, False], taken_over


@ONLY_POSTGRESQL
def test_sink_killed_mid_stream(running: Pipeline, pipeline_inputs: RecordedInputs,
                                pipeline_expected: dict, tmp_path: Path) -> None:
    """kill -9 of the sink while frames stream in, restarted: its uncommitted offsets are
    read again and the idempotent writer stores every row exactly once."""
    ingest_all(running, pipeline_inputs, tmp_path / "ingest.log")
    running.process()
    sink = running.sink()
    url = running.database.admin_url()
    wait_until(lambda: alive(sink) and output_counts(url, pipeline_inputs.last_input_ms)[
        "frames"] > 0, timeout_s=120, interval_s=0.1, message="the sink stored no frame")
    sink.kill()
    stored = output_counts(url, pipeline_inputs.last_input_ms)
    assert stored["frames"] < len(pipeline_expected["frames"]), "the kill came too late"
    running.sink()
    assert_same_rows(wait_for_outputs(running, pipeline_expected,
                                      pipeline_inputs.last_input_ms), pipeline_expected)


def test_postgresql_stopped_while_the_pipeline_runs(
        running: Pipeline, pipeline_inputs: RecordedInputs, pipeline_expected: dict,
        database_server, tmp_path: Path) -> None:
    """The database server stopped for OUTAGE_S while frames stream (a sink transaction
    is usually cut off mid-COPY): the sink retries and must not exit, the processor goes
    on, and once the server is back the sink catches up. The session's server is started
    again whatever happens."""
    ingest_all(running, pipeline_inputs, tmp_path / "ingest.log")
    processor = running.process()
    sink = running.sink()
    url = running.database.admin_url()
    wait_until(lambda: alive(sink) and output_counts(url, pipeline_inputs.last_input_ms)[
        "frames"] > 0, timeout_s=120, interval_s=0.1, message="the sink stored no frame")
    database_server.stop()
    try:
        stopped_s = time.monotonic()
        epoch_at_stop = health(processor).get("epoch", 0)
        wait_until(lambda: (alive(processor) and alive(sink)
                            and time.monotonic() - stopped_s >= OUTAGE_S),
                   timeout_s=OUTAGE_S + 30, interval_s=0.5)
        assert health(processor)["epoch"] > epoch_at_stop, "the processor stalled"
    finally:
        database_server.start()
    back_s = time.monotonic()
    frames_when_back = output_counts(url, pipeline_inputs.last_input_ms)["frames"]
    wait_until(lambda: alive(sink) and output_counts(
        url, pipeline_inputs.last_input_ms)["frames"] > frames_when_back, timeout_s=120,
        interval_s=0.2, message="the sink stored nothing after PostgreSQL came back")
    writing_s = time.monotonic() - back_s
    assert_same_rows(wait_for_outputs(running, pipeline_expected,
                                      pipeline_inputs.last_input_ms), pipeline_expected)
    print(f"after PostgreSQL came back the sink wrote again in {writing_s:.1f} s and "
          f"caught up in {time.monotonic() - back_s:.1f} s")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test only (the session's broker serves other tests)."""
    broker = KafkaBroker(tmp_path / "kafka")
    try:
        broker.start()
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def on_own_broker(own_broker: KafkaBroker, migrated, tmp_path: Path) -> Iterator[Pipeline]:
    yield from pipeline(own_broker.bootstrap, migrated, tmp_path)


@ONLY_POSTGRESQL
def test_broker_killed_and_restarted(
        own_broker: KafkaBroker, on_own_broker: Pipeline, pipeline_inputs: RecordedInputs,
        pipeline_expected: dict, tmp_path: Path) -> None:
    """kill -9 of the broker inside one of the processor's transactions (frames written,
    not committed); it stays down BROKER_DOWN_S, then starts on the same ports and data.
    Processor and sink are not restarted: the outage outlasts the processor producer's
    request timeout, so the engine's run fails and the supervisor recovers it from the
    committed state in the same process (the open transaction is aborted), while the
    sink's consumer reconnects; nothing is lost or repeated."""
    running = on_own_broker
    ingest_all(running, pipeline_inputs, tmp_path / "ingest.log")
    processor = running.process()
    sink = running.sink()
    wait_epoch(processor, wait_live(processor) + 1)
    frames = FramesTopic(running.bootstrap, running.topics.heat_frames)
    try:
        before = frames.written()
        wait_until(lambda: alive(processor) and frames.written() > before, timeout_s=60,
                   interval_s=0.005, message="the processor wrote no frames")
        own_broker.kill()  # inside the processor's transaction: frames written, uncommitted
    finally:
        frames.close()
    killed_s = time.monotonic()
    wait_until(lambda: (alive(processor) and alive(sink)
                        and time.monotonic() - killed_s >= BROKER_DOWN_S),
               timeout_s=BROKER_DOWN_S + 30, interval_s=0.5)
    own_broker.start()
    print(f"broker down for {time.monotonic() - killed_s:.1f} s")
    assert_same_rows(wait_for_outputs(running, pipeline_expected,
                                      pipeline_inputs.last_input_ms), pipeline_expected)
    takeovers = recoveries(processor)
    print("processor takeovers:", summary(takeovers))
    assert len(takeovers) == 2, "the supervisor did not recover the engine in the same process"


@ONLY_POSTGRESQL
def test_standby_takes_over_from_a_killed_worker(
        running: Pipeline, pipeline_inputs: RecordedInputs, pipeline_expected: dict,
        tmp_path: Path) -> None:
    """Two processor workers; kill -9 of the active one while it catches up: the standby's
    engine is live within TAKEOVER_LIMIT_S. The killed worker started again rejoins as a
    standby (the lease stays where it is) and the database ends equal."""
    ingest_all(running, pipeline_inputs, tmp_path / "ingest.log")
    running.sink()
    workers = [running.process(), running.process()]

    def roles() -> dict[str, HeatService] | None:
        by_role = {health(worker).get("role"): worker for worker in workers}
        return by_role if set(by_role) == {"active", "standby"} else None

    pair = wait_until(roles, timeout_s=90, message="no active and standby pair")
    active, standby = pair["active"], pair["standby"]
    wait_epoch(active, wait_live(active) + 1)
    active.kill()
    killed_s = time.monotonic()
    wait_until(lambda: health(standby).get("phase") == "live", timeout_s=60, interval_s=0.02,
               message="the standby did not take over")
    takeover_s = time.monotonic() - killed_s
    print(f"takeover: {takeover_s:.1f} s from kill -9 to the standby's engine live "
          f"({summary(recoveries(standby))[0]})")
    assert takeover_s <= TAKEOVER_LIMIT_S

    rejoined = running.process()
    wait_until(lambda: health(rejoined).get("role") == "standby", timeout_s=90,
               message="the restarted worker did not join as a standby")
    assert_same_rows(wait_for_outputs(running, pipeline_expected,
                                      pipeline_inputs.last_input_ms), pipeline_expected)
    assert (health(standby)["role"], health(standby)["phase"]) == ("active", "live")
    assert (health(rejoined)["role"], health(rejoined)["phase"]) == ("standby", "standby")
