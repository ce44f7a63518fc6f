"""Offsets the sink commits after a batch, and what it stores and reports once idle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiokafka.structs import TopicPartition

from heatmap.sink import consumer as sink_consumer
from heatmap.sink.consumer import SinkLoop, next_offsets


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


@dataclass
class _Partitions:
    """What the sink loop asks of its consumer: positions, ends, commits."""

    positions: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]
    committed: dict[TopicPartition, int] = field(default_factory=dict)

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return self.ends[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)


@dataclass
class _Held:
    held: list[tuple[str, int, int]] = field(default_factory=list)

    def held_positions(self) -> list[tuple[str, int, int]]:
        return self.held


@dataclass
class _Batcher:
    sampler: _Held = field(default_factory=_Held)


FRAMES, PRICES = TopicPartition("heat-frames", 0), TopicPartition("prices", 0)


def _loop(partitions: _Partitions, held: list[tuple[str, int, int]]) -> SinkLoop:
    return SinkLoop(cast(Any, partitions), cast(Any, None), cast(Any, _Batcher(_Held(held))),
                    max_records=100, max_wait_ms=100)


def test_once_caught_up_the_stored_offset_is_the_end_less_held_ticks() -> None:
    # The frames partition ends with a commit marker (position 11 past record 9); a price
    # tick at offset 7 is held until its interval closes.
    partitions = _Partitions({FRAMES: 11, PRICES: 9}, {FRAMES: 11, PRICES: 9})
    loop = _loop(partitions, held=[("prices", 0, 7)])
    asyncio.run(loop._check_positions(idle=True))
    assert partitions.committed == {FRAMES: 11, PRICES: 7}
    assert loop.stalled is None


def test_a_partition_not_read_although_records_wait_is_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(sink_consumer.time, "monotonic", lambda: clock[0])
    partitions = _Partitions({FRAMES: 5}, {FRAMES: 40})
    loop = _loop(partitions, held=[])
    asyncio.run(loop._check_positions(idle=True))
    clock[0] += sink_consumer.STALL_S - 1
    asyncio.run(loop._check_positions(idle=True))
    assert loop.stalled is None
    clock[0] += 1
    asyncio.run(loop._check_positions(idle=True))
    assert loop.stalled == "heat-frames[0] read to 5, end 40, nothing fetched for 60 s"
    partitions.positions[FRAMES] = 40  # read again
    asyncio.run(loop._check_positions(idle=True))
    assert loop.stalled is None and partitions.committed == {FRAMES: 40}
