"""Figure 1: price ticks/s heat process applies from a backlog, against a bare aiokafka
loop over the same records and the engine host alone; then heat sink stores the frames."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from benchmarks.feeds import Backlog, bar_start_ms, bench_connection, produce_backlog
from benchmarks.load import rate_between, value_at
from benchmarks.pipeline.common import (
    BAR,
    TIMEFRAMES,
    Bench,
    PipelineSpec,
    counter,
    frames_in_db,
    live,
    profiling,
    running,
)
from benchmarks.watch import now_ms, relay
from heatmap.process import active
from heatmap.process.host import EngineHost, HostConfig, MessageKind, RawRecord
from heatmap.process.outputs import epoch_records
from heatmap.process.settings import ProcessSettings
from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka as kafka_broker
from heatmap.stack.services import HeatService, ServiceError
from heatmap.topics import Topics, TopicSpec


@dataclass
class ThroughputFigures:
    """Rates over the backlog's dense ticks (history excluded); ``*_per_cpu_s`` divide by
    the CPU seconds the measured process used (all its threads) instead of wall time,
    which a machine shared with other work disturbs less."""

    records: int
    dense_ticks: int
    bar_closes: int
    backlog_ticks_per_s: float
    produce_records_per_s: float = 0.0
    # Bare read, decode, re-produce in batches: before and after heat process, and the mean.
    baseline_runs_records_per_s: list[float] = field(default_factory=list)
    baseline_records_per_s: float = 0.0
    baseline_records_per_cpu_s: float = 0.0
    host_ticks_per_s: float = 0.0  # the engine host alone over the same records
    process_ticks_per_s: float = 0.0  # heat process
    process_ticks_per_cpu_s: float = 0.0
    # While heat process applied the dense ticks: cores it used, and the shares of the
    # wall time its live loop spent in engine steps and in epoch commits (awaited in turn).
    process_cores: float = 0.0
    process_step_share: float = 0.0
    process_commit_share: float = 0.0
    process_vs_baseline: float = 0.0
    process_vs_baseline_cpu: float = 0.0
    process_vs_host: float = 0.0
    process_frames: int = 0
    sink_frames_in_db: int = 0
    sink_all_frames_s: float | None = None  # from the sink's start to every frame stored


def throughput(bench: Bench, spec: PipelineSpec) -> ThroughputFigures:
    with bench.topics("tput") as (settings, topics):
        relay_topic = f"{settings.prefix}relay"
        kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=bench.bootstrap), [TopicSpec(
            relay_topic, settings.prices_partitions, {"retention.ms": str(3_600_000)})])
        bench.step(f"throughput: producing {spec.dense_ticks:,} ticks and their history")
        started = time.perf_counter()
        backlog = produce_backlog(
            bench.bootstrap, topics, spec.shape,
            start_ms=bar_start_ms(now_ms() - spec.backlog_age_s * 1000),
            history_bars=spec.history_bars, dense_ticks=spec.dense_ticks,
            ticks_per_s=spec.backlog_ticks_per_s)
        figures = ThroughputFigures(
            records=backlog.records, dense_ticks=backlog.dense_ticks,
            bar_closes=backlog.bar_closes, backlog_ticks_per_s=spec.backlog_ticks_per_s,
            produce_records_per_s=backlog.records / (time.perf_counter() - started))
        sources, kinds = asyncio.run(active.input_sources(
            KafkaConnection(bootstrap_servers=bench.bootstrap), topics))
        baseline_cpu_s = 0.0

        def baseline(when: str) -> None:
            nonlocal baseline_cpu_s
            bench.step(f"throughput: baseline {when} (read, decode, re-produce in batches)")
            cpu_started_s = time.process_time()
            relay_s = asyncio.run(relay(bench.bootstrap, sources, kinds, relay_topic,
                                        backlog.records))
            baseline_cpu_s += time.process_time() - cpu_started_s
            figures.baseline_runs_records_per_s.append(backlog.records / relay_s)

        baseline("first")
        bench.step("throughput: the engine host alone over the same records")
        figures.host_ticks_per_s = _host_alone(bench, sources, kinds, backlog, topics)
        bench.step("throughput: heat process over the backlog")
        process = bench.service("process", "process-throughput", settings)
        with running(process):
            process.wait_for(live, 120, "the engine live")
            samples = _process_until(process, backlog, bench, "process-throughput")
            dense = (backlog.before_dense, backlog.records)
            figures.process_ticks_per_s = rate_between(
                [(sample.at_s, sample.events) for sample in samples], *dense) or math.nan
            figures.process_cores = _share(samples, "cpu_s", *dense)
            figures.process_ticks_per_cpu_s = (figures.process_ticks_per_s
                                               / figures.process_cores)
            figures.process_step_share = _share(samples, "step_s", *dense)
            figures.process_commit_share = _share(samples, "commit_s", *dense)
            figures.process_frames = int(counter(process, "heat_process_frames_total"))
        baseline("second")
        runs = figures.baseline_runs_records_per_s
        figures.baseline_records_per_s = sum(runs) / len(runs)
        figures.baseline_records_per_cpu_s = backlog.records * len(runs) / baseline_cpu_s
        figures.process_vs_baseline = (figures.process_ticks_per_s
                                       / figures.baseline_records_per_s)
        figures.process_vs_baseline_cpu = (figures.process_ticks_per_cpu_s
                                           / figures.baseline_records_per_cpu_s)
        figures.process_vs_host = figures.process_ticks_per_s / figures.host_ticks_per_s
        bench.step("throughput: heat sink stores the frames")
        with bench.database() as (url, password):
            sink = bench.sink("sink-throughput", settings, url, password)
            with running(sink):
                started_s = time.monotonic()
                deadline_s = started_s + 60 + backlog.records / 2000
                while time.monotonic() < deadline_s and sink.running():
                    figures.sink_frames_in_db = frames_in_db(url)
                    if figures.sink_frames_in_db >= figures.process_frames:
                        figures.sink_all_frames_s = time.monotonic() - started_s
                        break
                    time.sleep(0.25)
    return figures


class ProcessSample(NamedTuple):
    """One reading of the processor's counters during the throughput run."""

    at_s: float  # monotonic
    events: float  # heat_process_events_total
    cpu_s: float  # process_cpu_seconds_total
    step_s: float  # heat_process_compute_seconds_sum: wall seconds in engine steps
    commit_s: float  # heat_process_commit_seconds_sum: wall seconds committing epochs


def _process_until(process: HeatService, backlog: Backlog, bench: Bench, profile_name: str
                   ) -> list[ProcessSample]:
    """The processor's counters every 0.25 s until it applied the whole backlog;
    profiled from the first dense tick on, when profiling."""
    samples: list[ProcessSample] = []
    timeout_s = 60 + backlog.records / 2000
    deadline_s = time.monotonic() + timeout_s
    with contextlib.ExitStack() as profiled_part:
        profiled = False
        while True:
            metrics = process.metrics()
            events = metrics.get("heat_process_events_total", 0.0)
            samples.append(ProcessSample(
                time.monotonic(), events, metrics.get("process_cpu_seconds_total", math.nan),
                metrics.get("heat_process_compute_seconds_sum", math.nan),
                metrics.get("heat_process_commit_seconds_sum", math.nan)))
            if events >= backlog.records:
                return samples
            if events >= backlog.before_dense and not profiled:
                profiled_part.enter_context(profiling(bench, process.pid, profile_name))
                profiled = True
            if time.monotonic() > deadline_s or not process.running():
                raise ServiceError(f"heat process applied {events:,.0f} of "
                                   f"{backlog.records:,} events in {timeout_s:.0f} s; "
                                   f"see {process.log_path}")
            time.sleep(0.25)


def _share(samples: Sequence[ProcessSample], field: str, start: float, end: float) -> float:
    """Seconds of ``field`` per wall second while the events went from start to end."""
    pairs = [(sample.events, float(getattr(sample, field))) for sample in samples]
    wall = [(sample.events, sample.at_s) for sample in samples]
    values = value_at(pairs, start), value_at(pairs, end)
    times = value_at(wall, start), value_at(wall, end)
    if None in values or None in times:
        return math.nan
    return (values[1] - values[0]) / (times[1] - times[0])  # type: ignore[operator]


async def _read_all(bootstrap: str, sources: Sequence[TopicPartition], total: int
                    ) -> list[list[RawRecord]]:
    """Every record of ``sources``, as the fetches returned them."""
    consumer = AIOKafkaConsumer(
        **bench_connection(bootstrap).aiokafka(),
        group_id=None, isolation_level="read_committed",
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=active._PARTITION_FETCH_BYTES)
    await consumer.start()
    try:
        consumer.assign(list(sources))
        await consumer.seek_to_beginning(*sources)
        index_of = {tp: index for index, tp in enumerate(sources)}
        fetches: list[list[RawRecord]] = []
        count = 0
        while count < total:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=active.FETCH_RECORDS)
            batch = [RawRecord(index_of[tp], record.offset, record.key, record.value or b"",
                               record.timestamp)
                     for tp, records in fetched.items() for record in records]
            count += len(batch)
            if batch:
                fetches.append(batch)
        return fetches
    finally:
        await consumer.stop()


def _host_alone(bench: Bench, sources: Sequence[TopicPartition], kinds: Sequence[MessageKind],
                backlog: Backlog, topics: Topics) -> float:
    """Ticks/s of the engine host over the backlog's dense ticks, fed as fetched and cut
    into epochs (records encoded) as the processor does; no Kafka in the timing.

    A source counts as caught up once its last record has been fed.
    """
    fetches = asyncio.run(_read_all(bench.bootstrap, sources, backlog.records))
    remaining = [0] * len(sources)
    for batch in fetches:
        for record in batch:
            remaining[record.source_index] += 1
    settings = ProcessSettings()
    host = EngineHost(HostConfig(params=ProcessSettings(
        bar_interval=BAR, timeframes=TIMEFRAMES).engine_params(), source_kinds=list(kinds),
        align_ms=settings.align_ms))
    source_topics = [tp.topic for tp in sources]
    samples: list[tuple[float, float]] = []
    applied_total = 0

    def cut() -> None:
        if host.open_outputs or host.open_events >= settings.epoch_max_events:
            epoch_records(topics, host.cut_epoch(), source_topics, settings.engine_name)

    with contextlib.ExitStack() as profiled_part:
        profiled = False
        for batch in [*fetches, []]:
            if applied_total >= backlog.before_dense and not profiled:
                profiled_part.enter_context(profiling(bench, os.getpid(), "host-alone"))
                profiled = True
            for record in batch:
                remaining[record.source_index] -= 1
            caught_up = [index for index, left in enumerate(remaining) if left == 0]
            while True:
                applied = host.step(batch, caught_up, active.STEP_MAX_EVENTS)
                batch = []
                applied_total += applied
                samples.append((time.perf_counter(), applied_total))
                cut()
                if applied < active.STEP_MAX_EVENTS:
                    break
    return rate_between(samples, backlog.before_dense, backlog.records) or math.nan
