"""What the pipeline benchmark measures with its own clients.

- :func:`relay`: the throughput baseline, a bare aiokafka loop that reads every input
  partition, decodes each record with its message struct and produces it again in
  batches (the floor of any design keeping a durable, ordered log of its input).
- :func:`relay_latency`: the latency baseline, the same records relayed one
  transaction per fetched batch and read back ``read_committed``.
- :class:`Watchers`: in a thread of its own, a ``read_committed`` consumer of
  ``heat-frames`` noting when each frame becomes visible, and a poller of the frames
  table noting when each of those frames has its row.
- :func:`hold_partition`: the failover baseline, a bare consumer-group member (a child
  process) reporting when it is assigned the one partition of a topic.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue

import msgspec
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from benchmarks.feeds import bench_connection
from heatmap.process import active
from heatmap.process.host import MessageKind
from heatmap.schema import (
    InvalidMessageError,
    datetime_to_ms,
    decode,
    ms_to_datetime,
    rfc3339_to_ms,
)
from heatmap.settings.kafka import KafkaConnection

FrameKey = tuple[str, str, str, int, str]  # (book kind, book, timeframe, ts ms, trigger)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- throughput baseline ---------------------------------------------------------------------


async def relay(bootstrap: str, sources: Sequence[TopicPartition], kinds: Sequence[MessageKind],
                out_topic: str, total: int, timeout_s: float = 600.0) -> float:
    """Read ``total`` records from ``sources`` (from the start), decode each as its kind,
    produce them again to the same partition of ``out_topic`` in batches; returns the
    seconds from the first fetch to the last acknowledgement.

    The consumer is configured as the processor's (group-less, ``read_committed``, the
    same fetch sizes); the producer as its producer without transactions.
    """
    consumer = AIOKafkaConsumer(
        **bench_connection(bootstrap).aiokafka(),
        group_id=None, isolation_level="read_committed",
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=active._PARTITION_FETCH_BYTES,
        fetch_max_bytes=active.MAX_REQUEST_BYTES + 1024 * 1024)
    producer = AIOKafkaProducer(**bench_connection(bootstrap).aiokafka(), acks="all",
                                enable_idempotence=True, linger_ms=0)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign(list(sources))
        await consumer.seek_to_beginning(*sources)
        kind_of = dict(zip(sources, kinds, strict=True))
        delivered: list[asyncio.Future[object]] = []
        done = 0
        started_s = time.perf_counter()
        deadline_s = time.monotonic() + timeout_s
        while done < total:
            if time.monotonic() > deadline_s:
                raise TimeoutError(f"the relay read {done} of {total} records")
            fetched = await consumer.getmany(timeout_ms=1000, max_records=active.FETCH_RECORDS)
            for tp, records in fetched.items():
                kind = kind_of[tp]
                batch = producer.create_batch()
                for record in records:
                    try:  # noqa: SIM105 - a bare try costs nothing on the hot path
                        decode(kind, record.value or b"")
                    except InvalidMessageError:
                        pass  # the processor dead-letters these; the relay passes them on
                    if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                        delivered.append(await producer.send_batch(batch, out_topic,
                                                                   partition=tp.partition))
                        batch = producer.create_batch()
                        batch.append(key=record.key, value=record.value, timestamp=None)
                delivered.append(await producer.send_batch(batch, out_topic,
                                                           partition=tp.partition))
                done += len(records)
        await asyncio.gather(*delivered)
        return time.perf_counter() - started_s
    finally:
        await producer.stop()
        await consumer.stop()


async def relay_latency(bootstrap: str, sources: Sequence[TopicPartition], out_topic: str,
                        duration_s: float, transactional_id: str) -> list[float]:
    """The latency baseline: for ``duration_s``, relay every new record of ``sources`` to
    the same partition of ``out_topic``, one transaction per fetched batch, and read
    ``out_topic`` ``read_committed``; returns, per relayed record, milliseconds from its
    Kafka timestamp (kept by the relay) to when the reader saw it."""
    consumer = AIOKafkaConsumer(
        **bench_connection(bootstrap).aiokafka(),
        group_id=None, isolation_level="read_committed",
        enable_auto_commit=False, max_partition_fetch_bytes=active._PARTITION_FETCH_BYTES)
    producer = AIOKafkaProducer(**bench_connection(bootstrap).aiokafka(), acks="all", linger_ms=0,
                                enable_idempotence=True, transactional_id=transactional_id)
    reader = AIOKafkaConsumer(out_topic, **bench_connection(bootstrap).aiokafka(),
                              group_id=None,
                              isolation_level="read_committed", enable_auto_commit=False,
                              auto_offset_reset="earliest", fetch_max_wait_ms=10)
    latencies_ms: list[float] = []
    await consumer.start()
    await producer.start()
    await reader.start()
    stop = asyncio.Event()

    async def relay_new() -> None:
        consumer.assign(list(sources))
        await consumer.seek_to_end(*sources)
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=100, max_records=active.FETCH_RECORDS)
            if not fetched:
                continue
            async with producer.transaction():
                for tp, records in fetched.items():
                    batch = producer.create_batch()
                    for record in records:
                        if batch.append(key=record.key, value=record.value,
                                        timestamp=record.timestamp) is None:
                            await producer.send_batch(batch, out_topic, partition=tp.partition)
                            batch = producer.create_batch()
                            batch.append(key=record.key, value=record.value,
                                         timestamp=record.timestamp)
                    await producer.send_batch(batch, out_topic, partition=tp.partition)

    async def read() -> None:
        while not stop.is_set():
            fetched = await reader.getmany(timeout_ms=100)
            seen_ms = now_ms()
            for records in fetched.values():
                latencies_ms.extend(float(seen_ms - record.timestamp) for record in records)

    tasks = [asyncio.create_task(relay_new()), asyncio.create_task(read())]
    try:
        done, _ = await asyncio.wait(tasks, timeout=duration_s,
                                     return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await reader.stop()
        await producer.stop()
        await consumer.stop()
    return latencies_ms


# -- frames on Kafka and in the database ------------------------------------------------------


class _FrameHead(msgspec.Struct):
    """The fields of a frame that identify it (the rest is skipped while decoding)."""

    ts: str
    trigger: str
    timeframe: str
    account: str | None = None
    desk: str | None = None


_FRAME_HEAD = msgspec.json.Decoder(_FrameHead)


def frame_key(value: bytes) -> FrameKey:
    head = _FRAME_HEAD.decode(value)
    kind, book = ("account", head.account) if head.account is not None else ("desk",
                                                                             head.desk or "")
    return kind, book, head.timeframe, rfc3339_to_ms(head.ts), head.trigger


@dataclass
class SeenFrame:
    """One frame: when it was visible on Kafka (``read_committed``) and in the database
    (epoch ms; None until seen)."""

    key: FrameKey
    on_kafka_ms: int
    in_db_ms: int | None = None

    @property
    def ts_ms(self) -> int:
        return self.key[3]

    @property
    def trigger(self) -> str:
        return self.key[4]


_NEW_ROWS = ("SELECT book_kind, book, timeframe, ts, trigger FROM heat.frames "
             "WHERE ts >= %s")


class Watchers:
    """Frames as they become visible on Kafka and, with ``database_url``, in the database.

    Runs in a thread with its own event loop, so the benchmark's own waiting never
    delays a reading. ``frames`` grows in the order frames were seen on Kafka.
    """

    def __init__(self, bootstrap: str, frames_topic: str, database_url: str | None,
                 fetch_wait_ms: int = 10, db_poll_s: float = 0.05) -> None:
        self.bootstrap = bootstrap
        self.frames_topic = frames_topic
        self.database_url = database_url
        self.fetch_wait_ms = fetch_wait_ms
        self.db_poll_s = db_poll_s
        self.frames: list[SeenFrame] = []
        self._by_key: dict[FrameKey, SeenFrame] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-watchers", daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("the frame watchers did not start")
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def in_db_outstanding(self) -> int:
        return sum(1 for frame in self.frames if frame.in_db_ms is None)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the benchmark's thread
            self.error = error
            self._ready.set()

    async def _main(self) -> None:
        consumer = AIOKafkaConsumer(
            self.frames_topic, **bench_connection(self.bootstrap).aiokafka(),
            group_id=None,
            isolation_level="read_committed", enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=self.fetch_wait_ms)
        await consumer.start()
        try:
            tasks = [asyncio.create_task(self._read_kafka(consumer))]
            if self.database_url is not None:
                tasks.append(asyncio.create_task(self._poll_database(self.database_url)))
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
                for task in tasks:
                    if task.done():
                        task.result()  # raises what ended it
            for task in tasks:
                task.cancel()
        finally:
            await consumer.stop()

    async def _read_kafka(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            fetched = await consumer.getmany(timeout_ms=100)
            seen_ms = now_ms()
            for records in fetched.values():
                for record in records:
                    frame = SeenFrame(frame_key(record.value or b""), seen_ms)
                    if frame.key not in self._by_key:
                        self._by_key[frame.key] = frame
                        self.frames.append(frame)

    async def _poll_database(self, url: str) -> None:
        connection = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            checked = 0  # frames before this index are all in the database
            while True:
                await asyncio.sleep(self.db_poll_s)
                frames = self.frames
                while checked < len(frames) and frames[checked].in_db_ms is not None:
                    checked += 1
                if checked == len(frames):
                    continue
                low_ms = min(frame.ts_ms for frame in frames[checked:]
                             if frame.in_db_ms is None)
                cursor = await connection.execute(_NEW_ROWS, (ms_to_datetime(low_ms),))
                rows = await cursor.fetchall()
                seen_ms = now_ms()
                for kind, book, timeframe, ts, trigger in rows:
                    frame = self._by_key.get((kind, book, timeframe, datetime_to_ms(ts), trigger))
                    if frame is not None and frame.in_db_ms is None:
                        frame.in_db_ms = seen_ms
        finally:
            await connection.close()


# -- failover baseline -------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupMemberPlan:
    """A bare consumer-group member: ``name`` joins ``group`` on ``topic`` with the
    processor's session and heartbeat."""

    bootstrap: str
    topic: str
    group: str
    name: str
    session_timeout_ms: int
    heartbeat_interval_ms: int
    rebalance_timeout_ms: int


class _Reporter(ConsumerRebalanceListener):
    def __init__(self, name: str, events: Queue[tuple[str, float, int]]) -> None:
        self.name = name
        self.events = events

    async def on_partitions_revoked(self, revoked: object) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.events.put((self.name, time.monotonic(), len(assigned)))


def hold_partition(plan: GroupMemberPlan, events: Queue[tuple[str, float, int]]) -> None:
    """Be a group member until killed, putting (name, monotonic time, partitions
    assigned) on ``events`` after every assignment (the body of a child process)."""
    asyncio.run(_hold(plan, events))


async def _hold(plan: GroupMemberPlan, events: Queue[tuple[str, float, int]]) -> None:
    consumer = AIOKafkaConsumer(
        **KafkaConnection(bootstrap_servers=plan.bootstrap, client_id=plan.name).aiokafka(),
        group_id=plan.group,
        enable_auto_commit=False, session_timeout_ms=plan.session_timeout_ms,
        heartbeat_interval_ms=plan.heartbeat_interval_ms,
        rebalance_timeout_ms=plan.rebalance_timeout_ms)
    consumer.subscribe([plan.topic], listener=_Reporter(plan.name, events))
    await consumer.start()
    while True:
        await consumer.getmany(timeout_ms=1000)
