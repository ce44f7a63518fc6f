"""The active engine: what the lease holder runs, from fencing to live epochs.

One :meth:`ActiveEngine.run` is one ownership:

1. start the transactional producer (its fixed id fences any previous owner
   and aborts that owner's open transaction);
2. read the committed state (:mod:`heatmap.process.recovery`), rebuild the host
   with :meth:`EngineHost.resume` and seek every input partition to where it
   resumes;
3. live: fetch every input partition in batches, feed the host (in one worker
   thread, so the event loop keeps serving heartbeats and web requests), pause
   partitions running ahead in event time, and commit an epoch as one
   transaction whenever it has outputs, is ``epoch_max_ms`` old or holds
   ``epoch_max_events`` events; a checkpoint rides along every
   ``checkpoint_every_s``.

Any Kafka failure ends the run with an exception: the supervisor
(:mod:`heatmap.process.app`) starts a new run (from step 1) while this worker
still holds the lease, so a broker restart or a fencing costs one recovery.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from heatmap.process import metrics
from heatmap.process.alert_config import AlertConfigError, parse_alert_config
from heatmap.process.host import EngineHost, EpochOutput, HostConfig, MessageKind
from heatmap.process.outputs import checkpoint_record, epoch_records
from heatmap.process.progress import InputNotAppliedError, InputProgress
from heatmap.process.recovery import (
    input_ranges,
    raw_records,
    read_committed_state,
    read_ranges,
)
from heatmap.process.settings import ProcessSettings
from heatmap.schema import Account, Position, Price
from heatmap.settings.kafka import KafkaConnection
from heatmap.topics import Topics

if TYPE_CHECKING:
    from heatmap.process.observer import EngineObserver

log = logging.getLogger("heatmap.process")

# A checkpoint is several MB; the checkpoints topic allows 16 MiB records.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
FETCH_RECORDS = 5000
# Events applied per engine step: a catch-up releases a whole backlog at once, and one
# step must stay short (the loop commits epochs and marks progress between steps).
STEP_MAX_EVENTS = 2000
# How often the live engine looks at the alert file (between epochs), in seconds.
_ALERT_FILE_CHECK_S = 1.0
_PARTITION_FETCH_BYTES = 256 * 1024  # small per-partition fetches keep partitions in step
_FETCH_MAX_WAIT_MS = 50
# With input waiting and no epoch for this long, the live loop logs what holds it.
_STALL_REPORT_S = 10.0
# How often the live loop asks the brokers for each input partition's end (one request).
_PROGRESS_CHECK_S = 5.0
# Bounds on the awaits of the live loop: a Kafka call that never answers ends the run
# (the supervisor recovers from the committed state) instead of silently stalling it.
# The commit bound exceeds the producer's 30 s request timeout, so it only catches hangs.
_COMMIT_LIMIT_S = 45.0
_KAFKA_CALL_LIMIT_S = 15.0


@dataclass
class EngineStatus:
    """What ``/health`` and the watchdog read (written by the engine's run only)."""

    phase: str = "standby"  # standby | recovering | live
    last_progress_s: float = field(default_factory=time.monotonic)
    input_delay_s: float = 0.0
    watermark_ms: int | None = None
    epochs: int = 0
    last_error: str | None = None

    def progressed(self) -> None:
        self.last_progress_s = time.monotonic()


def cancel_requested() -> bool:
    """Whether the current task is being cancelled by its owner, as opposed to a
    CancelledError escaping from inside a Kafka client (aiokafka lets the cancellation of
    its own tasks through, e.g. when a consumer whose fetch was failing is stopped)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_client(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """Stop a Kafka client at the end of a run without hiding why the run ended: a client
    that does not close cleanly (a fenced producer, a consumer of a lost broker) is left."""
    try:
        await client.stop()
    except asyncio.CancelledError:
        if cancel_requested():
            raise
        log.debug("%s stop: cancelled inside the client", type(client).__name__)
    except Exception as error:
        log.debug("%s stop: %s", type(client).__name__, error)


async def input_sources(connection: KafkaConnection, topics: Topics
                        ) -> tuple[list[TopicPartition], list[MessageKind]]:
    """Every input partition as a source: prices first, then accounts, then positions
    (the order ``heat replay`` applies equal timestamps in), each topic by partition."""
    order: list[tuple[str, MessageKind]] = [
        (topics.prices, Price), (topics.accounts, Account), (topics.positions, Position)]
    admin = AIOKafkaAdminClient(**connection.aiokafka())
    await admin.start()
    try:
        described = {entry["topic"]: entry
                     for entry in await admin.describe_topics([name for name, _ in order])}
    finally:
        await admin.close()
    sources: list[TopicPartition] = []
    kinds: list[MessageKind] = []
    for topic, kind in order:
        entry = described.get(topic)
        if entry is None or entry["error_code"] != 0 or not entry["partitions"]:
            raise RuntimeError(f"topic {topic} does not exist; run `heat stack up` or "
                               "create the product topics")
        for partition in sorted(item["partition"] for item in entry["partitions"]):
            sources.append(TopicPartition(topic, partition))
            kinds.append(kind)
    return sources, kinds


class ActiveEngine:
    """One ownership of the engine (see the module docstring); call :meth:`run` once."""

    def __init__(self, settings: ProcessSettings, topics: Topics, status: EngineStatus,
                 executor: ThreadPoolExecutor,
                 now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
                 view: EngineObserver | None = None) -> None:
        self.settings = settings
        self.view = view  # the web views' read-only facade, fed after steps and commits
        self.topics = topics
        self.status = status
        self.executor = executor
        self.now_ms = now_ms
        self.sequence_tp = TopicPartition(topics.sequence, 0)
        self.checkpoints_tp = TopicPartition(topics.checkpoints, 0)
        # The last alert file content (or unreadable-file reason) refused: logged once.
        self._refused_alert_file: bytes | None = None

    async def run(self) -> None:
        """Own the engine until cancelled; raises on any Kafka failure or fencing."""
        settings, kafka = self.settings, self.settings.kafka
        self.status.phase = "recovering"
        started_s = time.monotonic()
        connection = kafka.connection(settings.app_id)
        # Transactions need acks=all whatever HEAT_PRODUCER_ACKS says; with the topics'
        # min.insync.replicas a commit is then on that many brokers.
        producer = AIOKafkaProducer(
            **connection.aiokafka(), transactional_id=settings.transactional_id,
            enable_idempotence=True, acks="all",
            max_request_size=MAX_REQUEST_BYTES, linger_ms=0, request_timeout_ms=30_000,
            transaction_timeout_ms=max(60_000, int(settings.watchdog_s * 2000)))
        consumer = AIOKafkaConsumer(
            **connection.aiokafka(), group_id=None, isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=_PARTITION_FETCH_BYTES,
            fetch_max_bytes=MAX_REQUEST_BYTES + 1024 * 1024,
            # The broker holds an empty fetch this long: recovery reads each range to its
            # end, and a caught-up partition's idleness is only seen on the next answer.
            fetch_max_wait_ms=_FETCH_MAX_WAIT_MS)
        await producer.start()  # fences the previous owner first
        fenced_s = time.monotonic() - started_s
        try:
            await consumer.start()
            try:
                host, sources = await self._recover(consumer)
                metrics.TAKEOVERS.inc()
                metrics.RECOVERY_SECONDS.set(time.monotonic() - started_s)
                log.info("engine live", extra={
                    "epoch": host.next_epoch, "fence_s": round(fenced_s, 3),
                    "recovery_s": round(time.monotonic() - started_s, 3),
                    "input_partitions": len(sources)})
                await self._live(consumer, producer, host, sources)
            finally:
                await stop_client(consumer)
        finally:
            self.status.phase = "standby"
            metrics.ACTIVE.set(0)
            await stop_client(producer)

    async def _recover(self, consumer: AIOKafkaConsumer
                       ) -> tuple[EngineHost, list[TopicPartition]]:
        settings = self.settings
        sources, kinds = await input_sources(settings.kafka.connection(settings.app_id),
                                             self.topics)
        committed = await read_committed_state(consumer, self.sequence_tp, self.checkpoints_tp,
                                               settings.engine_name, self.status.progressed)
        ranges = input_ranges(sources, committed.checkpoint, committed.epochs)
        fetched = await read_ranges(consumer, ranges, self.status.progressed)
        # A fresh engine starts with the alert file as it is now; a resumed one with the
        # configuration its checkpoint and epochs recorded (a change is staged below).
        config = HostConfig(params=settings.engine_params(), source_kinds=kinds,
                            align_ms=settings.align_ms,
                            alert_config=self._alert_file(None) or b"",
                            share=settings.book_share())
        loop = asyncio.get_running_loop()
        resumed = await loop.run_in_executor(
            self.executor, EngineHost.resume, config, committed.checkpoint, committed.epochs,
            raw_records(sources, fetched))
        log.info("committed state read", extra={
            "checkpoint": committed.checkpoint is not None,
            "epochs_replayed": len(resumed.replayed),
            "records_replayed": sum(len(records) for records in fetched.values())})
        consumer.assign(sources)
        for tp, offset in zip(sources, resumed.seek_offsets, strict=True):
            consumer.seek(tp, offset)
        self.status.epochs = resumed.host.next_epoch
        self._stage_alert_file(resumed.host)
        return resumed.host, sources

    def _alert_file(self, known: bytes | None) -> bytes | None:
        """The alert file's bytes when they are valid and differ from ``known``; else None.
        A file that cannot be used is logged once (per content or reason) and left alone:
        the thresholds in effect stay."""
        settings = self.settings
        try:
            content = settings.alert_config_bytes()
        except AlertConfigError as error:
            self._refuse(str(error).encode(), error)
            return None
        if content in (known, self._refused_alert_file):
            return None
        try:
            parse_alert_config(content, settings.engine_params().timeframes,
                               str(settings.alert_config))
        except AlertConfigError as error:
            self._refuse(content, error)
            return None
        return content

    def _refuse(self, refused: bytes, error: AlertConfigError) -> None:
        if refused != self._refused_alert_file:
            self._refused_alert_file = refused
            log.warning("alert configuration not applied: %s", "; ".join(error.lines))

    def _stage_alert_file(self, host: EngineHost) -> None:
        """Stage the alert file in the open epoch when it changed (right after a cut or
        before the first step: the open epoch has applied nothing yet)."""
        content = self._alert_file(host.alert_config)
        if content is not None:
            host.stage_alert_config(content)
            log.info("alert configuration staged", extra={
                "epoch": host.next_epoch, "digest": hashlib.sha256(content).hexdigest()[:16]})

    async def _live(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                    host: EngineHost, sources: Sequence[TopicPartition]) -> None:
        settings, status = self.settings, self.status
        loop = asyncio.get_running_loop()
        index_of = {tp: index for index, tp in enumerate(sources)}
        source_topics = [tp.topic for tp in sources]
        idle_after_s = settings.idle_after_ms / 1000
        epoch_max_s = settings.epoch_max_ms / 1000
        epoch_started_s = time.monotonic()
        last_checkpoint_s = -math.inf  # the first epoch carries a checkpoint
        paused: frozenset[TopicPartition] = frozenset()
        # When each partition was last resumed (wall clock, s): an answer older than that
        # describes the partition before its pause, and says nothing of now.
        resumed_s: dict[TopicPartition, float] = {}
        backlog = False
        progress = InputProgress(len(sources), settings.input_stall_s)
        next_progress_check_s = time.monotonic() + _PROGRESS_CHECK_S
        last_epoch_s = last_report_s = time.monotonic()
        next_alert_check_s = time.monotonic() + _ALERT_FILE_CHECK_S
        status.phase = "live"
        metrics.ACTIVE.set(1)
        while True:
            status.progressed()
            wait_s = max(0.0, epoch_started_s + epoch_max_s - time.monotonic())
            if backlog:  # released events still to apply: fetch without waiting
                wait_s = 0.0
            elif host.sequencer.buffered:  # look again soon: buffered records may settle
                wait_s = min(wait_s, max(0.005, idle_after_s / 2))
            fetched = await consumer.getmany(timeout_ms=int(wait_s * 1000),
                                             max_records=FETCH_RECORDS)
            # Wall clock, as aiokafka stamps each partition's last fetch answer.
            arrived_s = time.time()
            by_source = {index_of[tp]: records for tp, records in fetched.items()}
            newest_append_ms = max((records[-1].timestamp for records in fetched.values()),
                                   default=-1)
            caught_up, settled_before_s, seen_ends = await self._caught_up(
                consumer, sources, paused, resumed_s, idle_after_s)
            started_s = time.perf_counter()
            applied = await loop.run_in_executor(self.executor, functools.partial(
                host.step_fetched, by_source, caught_up, STEP_MAX_EVENTS, arrived_s=arrived_s,
                settled_before_s=settled_before_s))
            backlog = applied == STEP_MAX_EVENTS
            if by_source or applied:
                metrics.STEP_SECONDS.observe(time.perf_counter() - started_s)
            metrics.EVENTS.inc(applied)
            if self.view is not None:  # the engine thread is idle until the next call
                self.view.stepped(host.engine, host.monitor.thresholds)
            status.watermark_ms = host.sequencer.watermark_ms
            if status.watermark_ms is not None:
                metrics.WATERMARK.set(status.watermark_ms / 1000)
            status.input_delay_s = (0.0 if len(caught_up) == len(sources) or newest_append_ms < 0
                                    else max(0.0, (self.now_ms() - newest_append_ms) / 1000))
            metrics.INPUT_DELAY.set(status.input_delay_s)
            previously_paused = paused
            paused = self._align(consumer, host, sources, paused)
            for tp in previously_paused - paused:
                resumed_s[tp] = time.time()
            if not backlog and not host.sequencer.buffered and len(caught_up) == len(sources):
                await self._check_applied(consumer, host, sources, paused, progress,
                                          fresh_ends=False, seen_ends=seen_ends)
            if time.monotonic() >= next_progress_check_s:  # also when all looks caught up
                next_progress_check_s = time.monotonic() + _PROGRESS_CHECK_S
                await self._check_applied(consumer, host, sources, paused, progress,
                                          fresh_ends=True)
            due = (host.open_outputs > 0 or host.open_events >= settings.epoch_max_events
                   or (host.open_events > 0
                       and time.monotonic() - epoch_started_s >= epoch_max_s))
            if not due:
                if host.open_events == 0:
                    epoch_started_s = time.monotonic()
                    # Idle, nothing open: a good place for an alert file change too.
                    if host.open_outputs == 0 and time.monotonic() >= next_alert_check_s:
                        next_alert_check_s = time.monotonic() + _ALERT_FILE_CHECK_S
                        self._stage_alert_file(host)
                if (host.sequencer.buffered or len(caught_up) != len(sources)) and \
                        time.monotonic() - max(last_epoch_s, last_report_s) > _STALL_REPORT_S:
                    last_report_s = time.monotonic()
                    await self._report_stall(consumer, host, sources, caught_up, paused,
                                             last_report_s - last_epoch_s)
                continue
            checkpoint = time.monotonic() - last_checkpoint_s >= settings.checkpoint_every_s
            output = await loop.run_in_executor(
                self.executor, functools.partial(host.cut_epoch, checkpoint=checkpoint))
            async with asyncio.timeout(_COMMIT_LIMIT_S):
                await self._commit(producer, output, source_topics)
            if self.view is not None:
                self.view.committed(output.frames, output.alerts)
            if checkpoint:
                last_checkpoint_s = time.monotonic()
            epoch_started_s = last_epoch_s = time.monotonic()
            status.epochs = host.next_epoch
            if time.monotonic() >= next_alert_check_s:  # between epochs: the order's place
                next_alert_check_s = time.monotonic() + _ALERT_FILE_CHECK_S
                self._stage_alert_file(host)

    async def _check_applied(self, consumer: AIOKafkaConsumer, host: EngineHost,
                             sources: Sequence[TopicPartition],
                             paused: frozenset[TopicPartition], progress: InputProgress,
                             fresh_ends: bool,
                             seen_ends: Sequence[int | None] | None = None) -> None:
        """Raise InputNotAppliedError when an input partition holds records the engine has
        not applied and is not going to: short of its end although everything is read
        and nothing buffered, or not moving for ``input_stall_s`` (see
        :mod:`heatmap.process.progress`). ``fresh_ends``: ask the brokers for the ends
        (else the ends of the last fetch answers: ``seen_ends``, those that found every
        source caught up, when given).

        ``seen_ends`` matters while records arrive: the consumer fetches in the background,
        so by now a fetch answer may have moved a source's end past records not yet
        returned to the engine, which is no breach."""
        applied = host.seek_offsets()
        if fresh_ends:
            async with asyncio.timeout(_KAFKA_CALL_LIMIT_S):
                answered = await consumer.end_offsets(list(sources))  # LSO: read_committed
            ends = [answered[tp] for tp in sources]
            paused_indices = {index for index, tp in enumerate(sources) if tp in paused}
            suspects = progress.not_moving(time.monotonic(), applied, ends, paused_indices)
            # Gauges with the brokers' ends, every few seconds: not on each idle iteration
            # of the live path, where this check otherwise costs a few comparisons.
            for index, tp in enumerate(sources):
                labels = (tp.topic, str(tp.partition))
                metrics.INPUT_APPLIED.labels(*labels).set(applied[index])
                metrics.INPUT_END.labels(*labels).set(ends[index])
        else:
            last_seen = (list(seen_ends) if seen_ends is not None
                         else [consumer.last_stable_offset(tp) for tp in sources])
            suspects = progress.short_when_caught_up(applied, last_seen)
            ends = [-1 if end is None else end for end in last_seen]
        if not suspects:
            return
        ranges = {sources[index]: (applied[index], ends[index]) for index in suspects}
        holding = await self._records_in(ranges)
        missed = []
        for index in suspects:
            tp = sources[index]
            if holding[tp]:
                async with asyncio.timeout(_KAFKA_CALL_LIMIT_S):
                    position = await consumer.position(tp)
                missed.append(f"{tp.topic}[{tp.partition}] applied up to {applied[index]}, "
                              f"end {ends[index]}, position {position}, "
                              f"first waiting offset {holding[tp][0]}"
                              + (" (paused)" if tp in paused else ""))
                metrics.INPUT_NOT_APPLIED.labels(tp.topic, str(tp.partition)).inc()
            else:  # only commit markers or aborted records there
                progress.vouch(index, applied[index], ends[index])
        if missed:
            reason = "input records not applied: " + "; ".join(missed)
            log.error("%s; %d buffered; restarting the engine from its committed state",
                      reason, host.sequencer.buffered)
            raise InputNotAppliedError(reason)

    async def _records_in(self, ranges: dict[TopicPartition, tuple[int, int]]
                          ) -> dict[TopicPartition, list[int]]:
        """The offsets of the committed records in each range, read by a consumer of its
        own (the engine's consumer keeps its positions)."""
        settings = self.settings
        reader = AIOKafkaConsumer(
            **settings.kafka.connection(f"{settings.app_id}-check").aiokafka(), group_id=None,
            isolation_level="read_committed", enable_auto_commit=False,
            fetch_max_wait_ms=_FETCH_MAX_WAIT_MS)
        await reader.start()
        try:
            async with asyncio.timeout(_KAFKA_CALL_LIMIT_S):
                fetched = await read_ranges(reader, ranges)
        finally:
            await stop_client(reader)
        return {tp: [record.offset for record in records] for tp, records in fetched.items()}

    async def _caught_up(self, consumer: AIOKafkaConsumer, sources: Sequence[TopicPartition],
                         paused: frozenset[TopicPartition],
                         resumed_s: Mapping[TopicPartition, float], settle_s: float
                         ) -> tuple[list[int], float | None, list[int | None]]:
        """The sources read to their end as of their last fetch answer (a paused one is
        not, nor one resumed since that answer: its answers are stale), and the latest
        arrival time (wall clock, s) all of
        them vouch for: ``settle_s`` before the oldest of those answers (None when no
        source is caught up), and each source's end as seen here. Also updates the lag
        gauges."""
        caught_up = []
        ends: list[int | None] = []
        oldest_answer_s = math.inf
        for index, tp in enumerate(sources):
            end = consumer.last_stable_offset(tp)
            ends.append(end)
            answered_ms = consumer.last_poll_timestamp(tp)
            if end is None or answered_ms is None:
                continue  # no fetch answered yet: unknown, so not caught up
            async with asyncio.timeout(_KAFKA_CALL_LIMIT_S):
                position = await consumer.position(tp)
            metrics.INPUT_LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - position))
            stale = tp in paused or answered_ms / 1000 < resumed_s.get(tp, -math.inf)
            if position >= end and not stale:
                caught_up.append(index)
                oldest_answer_s = min(oldest_answer_s, answered_ms / 1000)
        settled_before_s = None if not caught_up else oldest_answer_s - settle_s
        return caught_up, settled_before_s, ends

    async def _report_stall(self, consumer: AIOKafkaConsumer, host: EngineHost,
                            sources: Sequence[TopicPartition], caught_up: Sequence[int],
                            paused: frozenset[TopicPartition], without_epoch_s: float
                            ) -> None:
        """Log why no epoch was cut for a while although input waits: per source its
        newest event time, whether it is paused or caught up, its position and end."""
        newest = host.sequencer.newest_ts_ms()
        states = []
        for index, tp in enumerate(sources):
            states.append(f"{tp.topic}[{tp.partition}] ts={newest[index]} "
                          f"pos={await consumer.position(tp)} "
                          f"end={consumer.last_stable_offset(tp)}"
                          + (" paused" if tp in paused else "")
                          + (" caught-up" if index in caught_up else ""))
        log.warning("no epoch for %.0f s with input waiting: watermark %s, %d buffered; %s",
                    without_epoch_s, host.sequencer.watermark_ms, host.sequencer.buffered,
                    "; ".join(states))

    @staticmethod
    def _align(consumer: AIOKafkaConsumer, host: EngineHost, sources: Sequence[TopicPartition],
               paused: frozenset[TopicPartition]) -> frozenset[TopicPartition]:
        """Pause the partitions running ahead in event time, resume the others."""
        alignment = host.alignment()
        wanted = frozenset(sources[index] for index in alignment.pause)
        if wanted != paused:
            if wanted - paused:
                consumer.pause(*(wanted - paused))
            if paused - wanted:
                consumer.resume(*(paused - wanted))
        return wanted

    async def _commit(self, producer: AIOKafkaProducer, output: EpochOutput,
                      source_topics: Sequence[str]) -> None:
        """Send the epoch's records (and checkpoint) in one transaction and commit it."""
        started_s = time.perf_counter()
        records = epoch_records(self.topics, output, source_topics, self.settings.engine_name)
        await producer.begin_transaction()
        sequence_sent = await producer.send(records[0].topic, records[0].value,
                                            key=records[0].key, headers=records[0].headers)
        for record in records[1:]:
            await producer.send(record.topic, record.value, key=record.key,
                                headers=record.headers)
        if output.checkpoint is not None:
            sequence_offset = (await sequence_sent).offset
            saved = checkpoint_record(self.topics, self.settings.engine_name,
                                      output.epoch.epoch, sequence_offset, output.checkpoint)
            await producer.send(saved.topic, saved.value, key=saved.key, headers=saved.headers)
        await producer.commit_transaction()
        committed_ms = self.now_ms()
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started_s)
        metrics.EPOCHS.inc()
        metrics.FRAMES.inc(len(output.frames))
        metrics.ALERTS.inc(len(output.alerts))
        metrics.CORRELATIONS.inc(len(output.correlations))
        for letter in output.dead_letters:
            metrics.DEADLETTERS.labels(source_topics[letter.source_index]).inc()
        for released_ms in output.released_by_ms:
            if released_ms >= 0:
                metrics.FRAME_LATENCY.observe(max(0, committed_ms - released_ms) / 1000)
        if output.checkpoint is not None:
            metrics.CHECKPOINT_BYTES.set(len(output.checkpoint))
            metrics.CHECKPOINT_TIME.set(committed_ms / 1000)

