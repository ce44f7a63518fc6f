"""Stopping the Kafka clients of an engine run, and the live check that every input record
is applied (no broker: stand-in clients)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aiokafka.structs import TopicPartition

from heatmap.process.active import ActiveEngine, EngineStatus, stop_client
from heatmap.process.progress import InputNotAppliedError, InputProgress
from heatmap.process.settings import ProcessSettings
from heatmap.topics import Topics


class LeakingClient:
    """Stops like aiokafka's consumer whose fetch was failing: awaiting its own cancelled
    task lets that task's CancelledError out."""

    async def stop(self) -> None:
        inner = asyncio.ensure_future(asyncio.Event().wait())  # blocks until cancelled
        await asyncio.sleep(0)  # let it start
        inner.cancel()
        await inner


class FailingClient:
    async def stop(self) -> None:
        raise ConnectionError("broker gone")


class SlowClient:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.Event().wait()  # blocks until cancelled


@pytest.mark.parametrize("client", [LeakingClient, FailingClient])
def test_a_client_that_does_not_stop_cleanly_does_not_end_the_caller(client: type) -> None:
    async def end_of_run() -> str:
        await stop_client(client())  # type: ignore[arg-type]
        return "the run's own error is raised next"

    assert asyncio.run(end_of_run()) == "the run's own error is raised next"


def test_cancelling_the_run_while_a_client_stops_still_cancels_it() -> None:
    async def cancel_while_stopping() -> bool:
        client = SlowClient()
        task = asyncio.ensure_future(stop_client(client))  # type: ignore[arg-type]
        await client.stopping.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert asyncio.run(cancel_while_stopping())


PRICES, POSITIONS = TopicPartition("heat.prices", 0), TopicPartition("heat.positions", 0)


@dataclass
class _Consumer:
    """Read to the end (as last fetched) of both partitions."""

    ends: dict[TopicPartition, int]

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return self.ends[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.ends[tp]


@dataclass
class _Host:
    applied: list[int]
    buffered: int = 0

    def seek_offsets(self) -> list[int]:
        return self.applied

    @property
    def sequencer(self) -> _Host:
        return self


class _Engine(ActiveEngine):
    """The check with the read-back stubbed: ``waiting`` offsets per partition."""

    def __init__(self, waiting: dict[TopicPartition, list[int]]) -> None:
        super().__init__(ProcessSettings(), Topics.from_settings(), EngineStatus(),
                         ThreadPoolExecutor(1))
        self.waiting, self.reads = waiting, 0

    async def _records_in(self, ranges: dict[TopicPartition, tuple[int, int]]
                          ) -> dict[TopicPartition, list[int]]:
        self.reads += 1
        return {tp: self.waiting.get(tp, []) for tp in ranges}


def _check(engine: _Engine, applied: list[int], progress: InputProgress) -> None:
    consumer = _Consumer({PRICES: 120, POSITIONS: 7})
    asyncio.run(engine._check_applied(cast(Any, consumer), cast(Any, _Host(applied)),
                                      [PRICES, POSITIONS], frozenset(), progress,
                                      fresh_ends=False))


def test_records_read_to_the_end_but_never_applied_end_the_run() -> None:
    engine = _Engine({POSITIONS: [5, 6]})
    with pytest.raises(InputNotAppliedError,
                       match=r"heat.positions\[0\] applied up to 5, end 7, position 7, "
                             r"first waiting offset 5"):
        _check(engine, [120, 5], InputProgress(2, stall_s=30))


def test_records_fetched_after_the_engine_was_caught_up_are_no_breach() -> None:
    """The background fetch moved the end to 7 after the end seen, 5, found the source
    caught up: records 5 and 6 are on their way to the engine, not skipped."""
    engine = _Engine({POSITIONS: [5, 6]})
    consumer = _Consumer({PRICES: 120, POSITIONS: 7})
    asyncio.run(engine._check_applied(cast(Any, consumer), cast(Any, _Host([120, 5])),
                                      [PRICES, POSITIONS], frozenset(),
                                      InputProgress(2, stall_s=30), fresh_ends=False,
                                      seen_ends=[120, 5]))
    assert engine.reads == 0


def test_a_gap_of_commit_markers_is_vouched_for_once() -> None:
    engine = _Engine({})
    progress = InputProgress(2, stall_s=30)
    _check(engine, [119, 7], progress)  # offset 119 is a commit marker
    _check(engine, [119, 7], progress)
    assert engine.reads == 1
    _check(engine, [120, 7], progress)  # applied at the end: nothing to check
    assert engine.reads == 1
