"""Offsets the sink commits after a batch."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from heatmap.sink.consumer import next_offsets


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int = 0
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple = ()


def test_next_offset_is_the_last_plus_one_per_partition() -> None:
    records = [Record("a", 0, 5), Record("a", 1, 9), Record("a", 0, 7), Record("b", 0, 0)]
    assert next_offsets(records) == {TopicPartition("a", 0): 8, TopicPartition("a", 1): 10,
                                     TopicPartition("b", 0): 1}


def test_offsets_never_pass_a_held_price_tick() -> None:
    records = [Record("prices", 0, 10), Record("prices", 0, 11), Record("prices", 1, 5),
               Record("alerts", 0, 3)]
    held = [("prices", 0, 10), ("prices", 2, 1)]  # partition 2: nothing read in this batch
    assert next_offsets(records, held) == {TopicPartition("prices", 0): 10,
                                           TopicPartition("prices", 1): 6,
                                           TopicPartition("alerts", 0): 4}
