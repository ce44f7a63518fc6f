"""An epoch's outputs as Kafka records: SPEC JSON the sink stores unchanged, keyed as the
contract says, natural keys in headers, dead letters in ingest's header format."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.process.epochs import decode_epoch, make_epoch
from heatmap.process.host import DeadLetter, EpochOutput
from heatmap.process.outputs import (
    MAX_DEADLETTER_BYTES,
    alert_levels_record,
    checkpoint_record,
    correlation_record,
    deadletter_record,
    epoch_records,
    frame_record,
)
from heatmap.process.sequencer import SourcePosition
from heatmap.schema import CorrelationSnapshot, Frame, ms_to_rfc3339
from heatmap.sink.batching import _alert_levels, _correlation, deadletter_of
from heatmap.topics import Topics
from support.sample_frames import engine_frames

TOPICS = Topics.from_settings()
SOURCE_TOPICS = [TOPICS.prices, TOPICS.accounts, TOPICS.positions]
T0 = 1_767_323_040_000


class Consumed(NamedTuple):
    """A record as the sink's batcher reads it back."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def test_frames_are_spec_json_keyed_by_account_or_desk() -> None:
    frames = engine_frames(n_bars=5, start_ms=T0)
    account_frame = next(frame for frame in frames if frame.account is not None)
    desk_frame = next(frame for frame in frames if frame.desk is not None and frame.account is None)
    for frame, kind, book in ((account_frame, b"account", account_frame.account),
                              (desk_frame, b"desk", desk_frame.desk)):
        record = frame_record(TOPICS, frame)
        assert record.topic == TOPICS.heat_frames
        assert msgspec.json.decode(record.value, type=Frame) == frame
        assert record.key == (book or "").encode()
        headers = dict(record.headers)
        assert headers["heat-book-kind"] == kind and headers["heat-book"] == record.key
        assert headers["heat-timeframe"] == frame.timeframe.encode()
        assert headers["heat-ts"] == frame.ts.encode()


def test_correlations_are_stored_as_the_snapshot() -> None:
    snapshot = CorrelationSnapshot(ts_ms=T0, timeframe="4h", params_hash="abc",
                                   symbols=["ADABTC", "ETHBTC", "XLMBTC"],
                                   rho=[0.5, -0.25, 0.125])
    record = correlation_record(TOPICS, snapshot)
    assert (record.topic, record.key) == (TOPICS.correlations, b"4h")
    assert dict(record.headers)["heat-ts"] == ms_to_rfc3339(T0).encode()
    assert _correlation(record.value) == snapshot


def test_alert_levels_are_keyed_by_desk_the_defaults_by_nothing() -> None:
    monitor = AlertMonitor(per_desk={"beta": AlertThresholds(regime_break=0.5)})
    defaults, beta = (alert_levels_record(TOPICS, levels) for levels in monitor.levels(T0))
    assert (defaults.topic, defaults.key, beta.key) == (TOPICS.alert_levels, b"", b"beta")
    assert dict(beta.headers)["heat-ts"] == ms_to_rfc3339(T0).encode()
    assert _alert_levels(beta.value) == monitor.levels(T0)[1]


def test_dead_letters_carry_the_original_bytes_and_the_reason() -> None:
    letter = DeadLetter(1, 41, b"acct-1", b'{"account": "acct-1"', "late for its key: x")
    record = deadletter_record(TOPICS, letter, SOURCE_TOPICS)
    assert (record.topic, record.key, record.value) == (TOPICS.deadletter, b"acct-1",
                                                        letter.value)
    row = deadletter_of(Consumed(record.topic, 0, 7, T0, record.key, record.value,
                                 record.headers))
    assert row.reason == f"{TOPICS.accounts} (process): late for its key: x"

    huge = DeadLetter(0, 1, None, b"x" * (MAX_DEADLETTER_BYTES + 10), "too big")
    record = deadletter_record(TOPICS, huge, SOURCE_TOPICS)
    assert len(record.value) == MAX_DEADLETTER_BYTES
    assert dict(record.headers)["heat-truncated-from"] == str(len(huge.value)).encode()


def test_an_epoch_transaction_starts_with_its_epoch_record() -> None:
    frames = engine_frames(n_bars=3, start_ms=T0)
    epoch = make_epoch(12, T0, [], [SourcePosition(0, ())] * 3)
    output = EpochOutput(epoch, frames=frames,
                         dead_letters=[DeadLetter(2, 0, None, b"?", "not JSON")])
    records = epoch_records(TOPICS, output, SOURCE_TOPICS, "engine")
    assert records[0].topic == TOPICS.sequence and records[0].key == b"engine"
    assert decode_epoch(records[0].value) == epoch
    assert [record.topic for record in records[1:]] == (
        [TOPICS.heat_frames] * len(frames) + [TOPICS.deadletter])

    saved = checkpoint_record(TOPICS, "engine", 12, 345, b"state")
    assert (saved.topic, saved.key, saved.value) == (TOPICS.checkpoints, b"engine", b"state")
    assert dict(saved.headers) == {"heat-epoch": b"12", "heat-sequence-offset": b"345"}
