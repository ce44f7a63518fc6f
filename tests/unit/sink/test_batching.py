"""Consumed records into one batch: every topic decoded, bad records dead-lettered."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from heatmap.engine.alerts import AlertMonitor
from heatmap.schema import Account, Alert, Correlation, Position, Price, encode, ms_to_datetime
from heatmap.sink.batching import SinkBatcher
from heatmap.sink.price_sampling import PriceSampler
from heatmap.topics import Topics
from support.sample_frames import engine_frames

TOPICS = Topics.from_settings()


@dataclass
class Record:
    topic: str
    value: bytes | None
    offset: int = 0
    partition: int = 0
    timestamp: int = 1_700_000_000_000
    key: bytes | None = b"k"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def batcher(interval_ms: int = 0) -> SinkBatcher:
    return SinkBatcher(TOPICS, PriceSampler(interval_ms, 60_000))


def test_every_topic_lands_in_its_list() -> None:
    frame = engine_frames(n_bars=5)[-1]
    alert = Alert(ts=frame.ts, account="a", desk=None, timeframe="1h",
                  kind="stale_heat", subject="a", severity="warning", state="firing",
                  value=None, threshold=1.0, message="stale")
    correlation = Correlation(ts="2026-01-02T03:04:00Z", timeframe="1h", params_hash="p",
                              symbols=["A", "B", "C"], rho=[0.1, 0.2, 0.3])
    moment = ms_to_datetime(1_700_000_000_000)
    b = batcher()
    b.add(Record(TOPICS.heat_frames, encode(frame)))
    b.add(Record(TOPICS.alerts, encode(alert)))
    b.add(Record(TOPICS.correlations, encode(correlation)))
    [levels] = AlertMonitor().levels(1_700_000_040_000)
    b.add(Record(TOPICS.alert_levels, encode(levels)))
    b.add(Record(TOPICS.prices, encode(Price(symbol="A", ts=moment, price=1.0, source="s"))))
    b.add(Record(TOPICS.positions, encode(Position(account="a", symbol="A", ts=moment,
                                                   qty=1.0))))
    b.add(Record(TOPICS.accounts, encode(Account(account="a", ts=moment, equity=10.0))))
    batch = b.take()
    assert batch.frames == [frame] and batch.alerts == [alert]
    assert batch.alert_levels == [levels]
    assert batch.correlations[0].ts_ms == 1767323040000
    assert batch.correlations[0].rho == [0.1, 0.2, 0.3]
    assert len(batch.prices) == len(batch.positions) == len(batch.accounts) == 1
    assert batch.deadletters == []
    assert b.take().frames == []


def test_bad_outputs_become_dead_letters_where_they_sat() -> None:
    b = batcher()
    frame = msgspec.json.decode(encode(engine_frames(n_bars=3)[-1]))
    bad = [Record(TOPICS.heat_frames, b"{not json", offset=1),
           Record(TOPICS.heat_frames, msgspec.json.encode({**frame, "ts": "yesterday"}),
                  offset=2),
           Record(TOPICS.correlations, encode(Correlation(
               ts="2026-01-02T03:04:00Z", timeframe="1h", params_hash="p",
               symbols=["A", "B", "C"], rho=[0.1])), offset=4),
           Record(TOPICS.alerts, None, offset=5)]
    for record in bad:
        b.add(record)
    letters = b.take().deadletters
    assert [(d.topic, d.partition, d.offset) for d in letters] == [
        (r.topic, r.partition, r.offset) for r in bad]
    assert all(d.reason and d.ts_ms == 1_700_000_000_000 for d in letters)
    assert letters[1].reason == "bad timestamp 'yesterday'"
    assert letters[0].payload == b"{not json" and letters[3].payload == b""
    assert b.rejected[TOPICS.heat_frames] == 2


def test_bad_inputs_are_counted_and_left_to_the_processor() -> None:
    b = batcher()
    for record in [Record(TOPICS.prices, b'{"symbol": "A"}', offset=1, partition=4),
                   Record(TOPICS.accounts, None, offset=2),
                   Record(TOPICS.positions, b"\xff\xfe", offset=3)]:
        b.add(record)
    batch = b.take()
    assert batch.deadletters == [] and batch.prices == []
    assert b.skipped_inputs == {TOPICS.prices: 1, TOPICS.accounts: 1, TOPICS.positions: 1}
    assert b.rejected == {}


def test_deadletter_topic_records_keep_reason_and_origin() -> None:
    b = batcher()
    b.add(Record(TOPICS.deadletter, b"garbage", offset=9, headers=[
        ("heat-reason", b"bad price\x00"), ("heat-source-topic", TOPICS.prices.encode()),
        ("heat-service", b"ingest-replay")]))
    (letter,) = b.take().deadletters
    assert (letter.topic, letter.offset, letter.payload) == (TOPICS.deadletter, 9, b"garbage")
    assert letter.reason == f"{TOPICS.prices} (ingest-replay): bad price\ufffd"
    assert b.rejected == {}


def test_prices_are_sampled_and_held_ticks_flushed_at_the_end() -> None:
    b = batcher(interval_ms=1000)
    for i in range(10):
        price = Price(symbol="A", ts=ms_to_datetime(61_000 + 100 * i), price=1.0, source="s")
        b.add(Record(TOPICS.prices, encode(price), offset=i))
    assert len(b.take().prices) == 1
    assert [p.ts for p in b.take(final=True).prices] == [ms_to_datetime(61_900)]
