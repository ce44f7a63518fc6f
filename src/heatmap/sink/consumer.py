"""The sink's read-write-commit loop: one consumer-group member, batches into the database,
offsets committed only after the database commit (at-least-once into an idempotent
writer: every row stored exactly once)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition

from heatmap.db.writer import HeatBatch, HeatWriter
from heatmap.sink import metrics
from heatmap.sink.batching import ConsumedRecord, SinkBatcher
from heatmap.sink.price_sampling import RecordPosition

log = logging.getLogger(__name__)

# A partition with records waiting whose read position does not move this long, while
# polls come back empty, is stalled: /health says so.
STALL_S = 60.0
_POSITION_LIMIT_S = 15.0


def next_offsets(records: Sequence[ConsumedRecord],
                 held: Sequence[RecordPosition] = ()) -> dict[TopicPartition, int]:
    """Per partition, the offset to commit after ``records``: the last one's plus one,
    but never past a record still ``held`` (a price tick not yet stored)."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    for topic, partition, offset in held:
        tp = TopicPartition(topic, partition)
        if tp in offsets:
            offsets[tp] = min(offsets[tp], offset)
    return offsets


class SinkLoop:
    """Polls, writes and commits until :meth:`request_stop`; the current batch always
    finishes (written and committed) before :meth:`run` returns.

    Parameters
    ----------
    consumer : AIOKafkaConsumer
        Started, subscribed, ``read_committed``, auto-commit off.
    writer : HeatWriter
        Writes in a thread of the default executor (it blocks).
    batcher : SinkBatcher
    max_records, max_wait_ms : int
        Records per poll (one transaction), and how long a poll waits.
    """

    def __init__(self, consumer: AIOKafkaConsumer, writer: HeatWriter, batcher: SinkBatcher,
                 max_records: int, max_wait_ms: int) -> None:
        self.consumer = consumer
        self.writer = writer
        self.batcher = batcher
        self.max_records = max_records
        self.max_wait_ms = max_wait_ms
        self._stop = asyncio.Event()
        self.batches = 0
        self.last_error: str | None = None
        self.last_commit_s = time.monotonic()
        self._committed: dict[TopicPartition, int] = {}
        self._consumed: dict[TopicPartition, int] = {}  # next offset to read, per partition
        # Per partition: its read position when last polled idle, and since when (s).
        self._idle_at: dict[TopicPartition, tuple[int, float]] = {}
        self.stalled: str | None = None  # why the sink is stalled, for /health

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            polled = await self.consumer.getmany(timeout_ms=self.max_wait_ms,
                                                 max_records=self.max_records)
            records = [record for batch in polled.values() for record in batch]
            if records:
                await self._store(records)
            else:
                self.last_commit_s = time.monotonic()  # an empty poll is progress too
            await self._check_positions(idle=not records)
            self._update_lag()
        held = self.batcher.take(final=True)  # held prices, read but not yet stored
        if held.prices:
            await self._write(held)
            await self._commit(dict(self._consumed))  # now everything read is stored

    async def _store(self, records: list[ConsumedRecord]) -> None:
        started_s = time.perf_counter()
        skipped_before = dict(self.batcher.skipped_inputs)
        for record in records:
            metrics.RECORDS.labels(record.topic).inc()
            self.batcher.add(record)
        for topic, skipped in self.batcher.skipped_inputs.items():
            if skipped > skipped_before.get(topic, 0):
                metrics.SKIPPED_INPUTS.labels(topic).inc(skipped - skipped_before.get(topic, 0))
        batch = self.batcher.take()
        await self._write(batch)
        self._consumed.update(next_offsets(records))
        await self._commit(next_offsets(records, self.batcher.sampler.held_positions()))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started_s)
        self.batches += 1
        self.last_commit_s = time.monotonic()

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self._committed.update(offsets)
            for tp, offset in offsets.items():
                metrics.STORED_OFFSET.labels(tp.topic, str(tp.partition)).set(offset)
        except (CommitFailedError, IllegalStateError) as error:
            # The partitions moved during the write: their new owner re-reads these
            # records, and the idempotent writer makes that a no-op.
            metrics.FAILED_COMMITS.inc()
            log.warning("offset commit refused after a rebalance: %s", error)

    async def _write(self, batch: HeatBatch) -> None:
        for letter in batch.deadletters:
            metrics.DEADLETTERS.labels(letter.topic).inc()
        loop = asyncio.get_running_loop()
        inserted = await loop.run_in_executor(None, self.writer.write, batch)
        for table, count in inserted.items():
            metrics.ROWS.labels(table).inc(count)

    async def _check_positions(self, idle: bool) -> None:
        """Say which partitions have records waiting that are not read (``stalled``, after
        STALL_S); after an empty poll (``idle``) also store the read position of each
        partition read to its end (past commit markers, never past a held tick), so that
        once caught up the stored offset equals the end."""
        held = {TopicPartition(topic, partition): offset
                for topic, partition, offset in self.batcher.sampler.held_positions()}
        advance: dict[TopicPartition, int] = {}
        stalled = []
        now_s = time.monotonic()
        for tp in self.consumer.assignment():
            end = self.consumer.last_stable_offset(tp)
            if end is None:
                continue
            async with asyncio.timeout(_POSITION_LIMIT_S):
                position = await self.consumer.position(tp)
            labels = (tp.topic, str(tp.partition))
            metrics.END_OFFSET.labels(*labels).set(end)
            if position >= end:
                self._idle_at.pop(tp, None)
                stored = min(position, held.get(tp, position))
                if idle and stored > self._committed.get(tp, -1):
                    advance[tp] = stored
                continue
            since = self._idle_at.setdefault(tp, (position, now_s))
            if since[0] != position:
                self._idle_at[tp] = (position, now_s)
            elif now_s - since[1] >= STALL_S:
                stalled.append(f"{tp.topic}[{tp.partition}] read to {position}, end {end}, "
                               f"nothing fetched for {now_s - since[1]:.0f} s")
                metrics.STALLS.labels(*labels).inc()
        await self._commit(advance)
        reason = "; ".join(stalled) or None
        if reason is not None and reason != self.stalled:
            log.error("sink stalled: %s", reason)
        self.stalled = reason

    def _update_lag(self) -> None:
        lag: dict[str, int] = defaultdict(int)
        try:
            for tp in self.consumer.assignment():
                stable = self.consumer.last_stable_offset(tp)
                committed = self._committed.get(tp)
                if stable is not None and committed is not None:
                    lag[tp.topic] += max(0, stable - committed)
        except (IllegalStateError, KafkaError):
            return
        for topic, behind in lag.items():
            metrics.LAG.labels(topic).set(behind)
