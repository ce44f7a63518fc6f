"""Load for the pipeline benchmark on Kafka: fresh topics, a pre-produced backlog, and a
live producer (a child process) sending ticks and position changes at a steady rate.

Records are keyed and encoded as ingest sends them (symbol / account keys, the
message structs' JSON) with the product's producer settings.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from kafka import KafkaProducer

from benchmarks.load import Books, LoadShape, PositionChanges, PriceWalk, make_books, price
from benchmarks.load import tick_times_ms as spaced_times_ms
from heatmap.schema import Account, Position, Price, encode
from heatmap.settings.kafka import KafkaConnection, ProducerSettings, TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.topics import Topics, TopicSpec, topic_specs

BAR_MS = 60_000


def bench_connection(bootstrap: str) -> KafkaConnection:
    """How the benchmarks' own clients reach the broker under test."""
    return KafkaConnection(bootstrap_servers=bootstrap, client_id="heat-bench")


def fresh_topics(bootstrap: str, label: str, extra: Iterable[TopicSpec] = ()
                 ) -> tuple[TopicSettings, Topics]:
    """The product topics under a new prefix (plus ``extra`` topics), created now."""
    settings = TopicSettings(prefix=f"bench-{label}-{uuid.uuid4().hex[:8]}.")
    kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=bootstrap),
                               [*topic_specs(settings), *extra])
    return settings, Topics.from_settings(settings)


def producer(bootstrap: str) -> KafkaProducer:
    """A kafka-python producer with the product's producer settings."""
    options = ProducerSettings()
    return KafkaProducer(**bench_connection(bootstrap).kafka_python(), acks=options.client_acks,
                         enable_idempotence=options.idempotence,
                         compression_type=options.compression,
                         linger_ms=options.linger_ms, batch_size=options.batch_size)


def send(kafka: KafkaProducer, topics: Topics, message: Price | Position | Account,
         timestamp_ms: int | None = None) -> None:
    """``message`` to its topic, keyed as ingest keys it."""
    if isinstance(message, Price):
        topic, key = topics.prices, message.symbol
    elif isinstance(message, Position):
        topic, key = topics.positions, message.account
    else:
        topic, key = topics.accounts, message.account
    kafka.send(topic, key=key.encode(), value=encode(message), timestamp_ms=timestamp_ms)


def bar_start_ms(ts_ms: int) -> int:
    return ts_ms - ts_ms % BAR_MS


@dataclass(frozen=True)
class Backlog:
    """What :func:`produce_backlog` wrote.

    ``history_ticks``: one tick per symbol per bar over ``history_bars`` bars (so
    correlations are past their warm-up); ``dense_ticks``: ticks from
    ``dense_start_ms`` to ``dense_end_ms`` at ``ticks_per_s`` (event time), centred on
    the boundary after the history (up to a bar either side), so they close bars.
    """

    accounts: int
    positions: int
    history_ticks: int
    dense_ticks: int
    dense_start_ms: int
    dense_end_ms: int
    ticks_per_s: float

    @property
    def records(self) -> int:
        return self.accounts + self.positions + self.history_ticks + self.dense_ticks

    @property
    def before_dense(self) -> int:
        """Records the engine applies before the first dense tick."""
        return self.accounts + self.positions + self.history_ticks

    @property
    def bar_closes(self) -> int:
        """Bar boundaries inside the dense ticks."""
        if not self.dense_ticks:
            return 0
        return (self.dense_end_ms - 1) // BAR_MS - (self.dense_start_ms - 1) // BAR_MS


def history_ticks(walk: PriceWalk, first_bar_ms: int, bars: int, rounds_per_bar: float
                  ) -> Iterable[Price]:
    """One tick per symbol per bar (1 ms apart from 1 ms after each boundary), each bar
    moving as much as ``rounds_per_bar`` rounds of the walk would."""
    scale = rounds_per_bar ** 0.5
    for bar in range(bars):
        bar_ms = first_bar_ms + bar * BAR_MS
        for offset, (symbol, value) in enumerate(walk.ticks(len(walk.symbols), scale), 1):
            yield price(symbol, bar_ms + offset, value)


def produce_backlog(bootstrap: str, topics: Topics, shape: LoadShape, *, start_ms: int,
                    history_bars: int, dense_ticks: int, ticks_per_s: float) -> Backlog:
    """Accounts, positions, ``history_bars`` bars of history and ``dense_ticks`` ticks,
    all with event times from ``start_ms`` (a bar boundary) on; flushed on return."""
    walk = PriceWalk(shape.symbol_names(), shape.seed)
    books = make_books(shape, walk.prices(), start_ms)
    span_ms = dense_ticks * 1000 / ticks_per_s
    dense_start_ms = start_ms + history_bars * BAR_MS - int(min(span_ms / 2, BAR_MS - 1000))
    kafka = producer(bootstrap)
    try:
        for account in books.accounts:
            send(kafka, topics, account)
        for position in books.positions(start_ms):
            send(kafka, topics, position)
        rounds_per_bar = ticks_per_s * BAR_MS / 1000 / shape.symbols
        for tick in history_ticks(walk, start_ms, history_bars, rounds_per_bar):
            send(kafka, topics, tick)
        made = 0
        while made < dense_ticks:
            count = min(50_000, dense_ticks - made)
            times = spaced_times_ms(dense_start_ms, made, count, ticks_per_s)
            for ts_ms, (symbol, value) in zip(times, walk.ticks(count), strict=True):
                send(kafka, topics, price(symbol, ts_ms, value))
            made += count
        kafka.flush()
    finally:
        kafka.close()
    last_ms = spaced_times_ms(dense_start_ms, max(dense_ticks - 1, 0), 1, ticks_per_s)[0]
    return Backlog(accounts=len(books.accounts), positions=books.position_count,
                   history_ticks=history_bars * shape.symbols, dense_ticks=dense_ticks,
                   dense_start_ms=dense_start_ms, dense_end_ms=last_ms, ticks_per_s=ticks_per_s)


# -- live ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LivePlan:
    """A live producer's work: ``ticks_per_s`` price ticks and ``positions_per_s`` position
    changes per second with event time = now, for ``duration_s`` (or until stopped).
    The walk continues after ``walk_offset`` ticks of the seed's walk, the books are
    those of :func:`make_books` at the walk's start."""

    bootstrap: str
    prefix: str
    shape: LoadShape
    ticks_per_s: float
    positions_per_s: float
    duration_s: float
    walk_offset: int = 0


def produce_live(plan: LivePlan, sent_times: Queue[list[int]], stop: Event) -> None:
    """Run a :class:`LivePlan` (the body of a child process).

    Every record's Kafka timestamp is its event time, so its append time is known from
    its content; the distinct event times used go to ``sent_times`` about every 100 ms
    (the benchmark finds there the record that released each frame). Puts ``[]`` last.
    """
    topics = Topics.from_settings(TopicSettings(prefix=plan.prefix))
    walk = PriceWalk(plan.shape.symbol_names(), plan.shape.seed)
    books: Books = make_books(plan.shape, walk.prices(), 0)
    walk.skip(plan.walk_offset)
    changes = PositionChanges(books, plan.shape.seed)
    kafka = producer(plan.bootstrap)
    started_s = time.monotonic()
    ticks = positions = 0
    pending: list[int] = []
    reported_s = started_s
    try:
        while not stop.is_set():
            now_s = time.monotonic()
            elapsed_s = now_s - started_s
            if elapsed_s >= plan.duration_s:
                break
            ts_ms = time.time_ns() // 1_000_000
            due_ticks = int(elapsed_s * plan.ticks_per_s) - ticks
            due_positions = int(elapsed_s * plan.positions_per_s) - positions
            if due_ticks > 0 or due_positions > 0:
                pending.append(ts_ms)
            for symbol, value in walk.ticks(max(due_ticks, 0)):
                send(kafka, topics, price(symbol, ts_ms, value), ts_ms)
            for _ in range(max(due_positions, 0)):
                send(kafka, topics, changes.next(ts_ms), ts_ms)
            ticks += max(due_ticks, 0)
            positions += max(due_positions, 0)
            if now_s - reported_s >= 0.1 and pending:
                sent_times.put(pending)
                pending, reported_s = [], now_s
            time.sleep(0.001)
        kafka.flush()
    finally:
        kafka.close()
        if pending:
            sent_times.put(pending)
        sent_times.put([])


class LiveProducer:
    """A :func:`produce_live` child process."""

    def __init__(self, plan: LivePlan) -> None:
        context = multiprocessing.get_context("spawn")
        self.sent_times: Queue[list[int]] = context.Queue()
        self._stop = context.Event()
        self.process = context.Process(target=produce_live, name="bench-live-producer",
                                       args=(plan, self.sent_times, self._stop), daemon=True)
        self.process.start()
        self.finished = False

    def drain(self) -> list[int]:
        """The event times reported since the last call."""
        times: list[int] = []
        while True:
            try:
                chunk = self.sent_times.get_nowait()
            except queue.Empty:
                return times
            if not chunk:
                self.finished = True
            times.extend(chunk)

    def stop(self) -> None:
        self._stop.set()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
