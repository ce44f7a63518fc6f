"""Figure 2: from the append time of the record that released each frame to the frame on
Kafka and in the database, under live load; against a bare transactional relay."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka.structs import TopicPartition

from benchmarks.cpu import CpuShares, listener_pid
from benchmarks.feeds import BAR_MS, LivePlan, LiveProducer, bar_start_ms
from benchmarks.load import LatencySummary, ReleaseClock, histogram_quantile
from benchmarks.pipeline.common import (
    Bench,
    PipelineSpec,
    counter,
    live,
    produce_history_to_now,
    profiling,
    running,
)
from benchmarks.watch import SeenFrame, Watchers, now_ms, relay_latency
from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka as kafka_broker
from heatmap.stack.services import HeatService, ServiceError
from heatmap.topics import TopicSpec

_HISTOGRAMS = ("heat_process_frame_latency_seconds", "heat_process_compute_seconds",
               "heat_process_commit_seconds")


@dataclass
class LatencyFigures:
    ticks_per_s: float
    positions_per_s: float
    live_s: float = 0.0
    ticks_sent: int = 0
    bar_closes: int = 0
    baseline: LatencySummary | None = None  # bare transactional relay to read_committed
    kafka: LatencySummary | None = None  # every frame
    kafka_bar: LatencySummary | None = None  # bar-close frames only
    database: LatencySummary | None = None
    database_bar: LatencySummary | None = None
    sink_p99_ms: float = math.nan  # database minus Kafka, per frame
    histogram_p50_ms: float = math.nan  # the processor's heat_process_frame_latency_seconds
    histogram_p99_ms: float = math.nan
    # What a frame waits for inside the processor: an engine step (a bar close is one)
    # and an epoch's commit, p50 / p99 from its histograms over the live run.
    step_p50_ms: float = math.nan
    step_p99_ms: float = math.nan
    commit_p50_ms: float = math.nan
    commit_p99_ms: float = math.nan
    kafka_p99_vs_baseline: float = math.nan
    database_p99_vs_baseline: float = math.nan
    input_lag_max_records: float = 0.0
    input_lag_end_records: float = 0.0
    process_cpu_share: float = math.nan  # CPU seconds heat process used per second, live
    # Cores used while live: heat process, heat sink, the load's producer, this benchmark
    # (its frame and table watchers), Kafka, PostgreSQL, and the whole machine.
    cpu_cores: dict[str, float] = field(default_factory=dict)


def latency(bench: Bench, spec: PipelineSpec) -> LatencyFigures:
    figures = LatencyFigures(ticks_per_s=spec.live_ticks_per_s,
                             positions_per_s=spec.live_positions_per_s)
    bench.step(f"latency: baseline relay at {spec.live_ticks_per_s:,.0f} ticks/s")
    with bench.topics("relay") as (settings, topics):
        relay_topic = f"{settings.prefix}relay"
        kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=bench.bootstrap), [TopicSpec(
            relay_topic, settings.prices_partitions, {"retention.ms": str(3_600_000)})])
        sources = [TopicPartition(topics.prices, partition)
                   for partition in range(settings.prices_partitions)]
        producer = LiveProducer(LivePlan(bench.bootstrap, settings.prefix, spec.shape,
                                         spec.live_ticks_per_s, spec.live_positions_per_s,
                                         spec.relay_latency_s + 5))
        try:
            figures.baseline = LatencySummary.of(asyncio.run(relay_latency(
                bench.bootstrap, sources, relay_topic, spec.relay_latency_s,
                f"{settings.prefix}relay")))
        finally:
            producer.stop()
    with bench.topics("latency") as (settings, topics), bench.database() as (url, password):
        bench.step("latency: history, heat process and heat sink")
        backlog = produce_history_to_now(bench, topics, spec)
        process = bench.service("process", "process-latency", settings)
        sink = bench.sink("sink-latency", settings, url, password)
        watchers = Watchers(bench.bootstrap, topics.heat_frames, url)
        with running(process, sink):
            process.wait_for(live, 120, "the engine live")
            process.wait_for(lambda p: counter(p, "heat_process_events_total")
                             >= backlog.records, 300, "the history applied")
            _wait_committed(process)
            sink.wait_for(lambda s: s.health().get("status") == "ok", 60, "a healthy sink")
            watchers.start()
            try:
                histograms_before = {name: process.histogram(name) for name in _HISTOGRAMS}
                live_start_ms = now_ms()
                last_boundary_ms = (bar_start_ms(live_start_ms)
                                    + spec.latency_bar_closes * BAR_MS)
                duration_s = (last_boundary_ms - live_start_ms) / 1000 + 3
                bench.step(f"latency: live load for {duration_s:.0f} s "
                           f"({spec.latency_bar_closes} bar closes)")
                clock = _run_live(bench, process, sink, figures, LivePlan(
                    bench.bootstrap, settings.prefix, spec.shape, spec.live_ticks_per_s,
                    spec.live_positions_per_s, duration_s,
                    walk_offset=backlog.history_ticks), "process-latency")
                figures.live_s = duration_s
                bench.step("latency: waiting for the last frames in the database")
                _settle(watchers, clock, last_boundary_ms)
                histograms_after = {name: process.histogram(name) for name in _HISTOGRAMS}
            finally:
                watchers.stop()
        figures.bar_closes = spec.latency_bar_closes
        _summarize_latency(figures, watchers.frames, clock, live_start_ms)
        quantiles = {name: _quantiles_ms(histograms_before[name], histograms_after[name])
                     for name in _HISTOGRAMS}
        figures.histogram_p50_ms, figures.histogram_p99_ms = quantiles[_HISTOGRAMS[0]]
        figures.step_p50_ms, figures.step_p99_ms = quantiles[_HISTOGRAMS[1]]
        figures.commit_p50_ms, figures.commit_p99_ms = quantiles[_HISTOGRAMS[2]]
    return figures


def _wait_committed(process: HeatService, quiet_s: float = 2.0, timeout_s: float = 120.0
                    ) -> None:
    """Wait until the processor has committed no epoch for ``quiet_s`` (the history's
    frames are on Kafka, not in its latency histogram during the measurement)."""
    deadline_s = time.monotonic() + timeout_s
    last = (-1.0, time.monotonic())
    while time.monotonic() < deadline_s:
        epochs = counter(process, "heat_process_epochs_total")
        if epochs != last[0]:
            last = (epochs, time.monotonic())
        elif time.monotonic() - last[1] >= quiet_s:
            return
        time.sleep(0.1)


def _run_live(bench: Bench, process: HeatService, sink: HeatService, figures: LatencyFigures,
              plan: LivePlan, profile_name: str) -> ReleaseClock:
    """Run the live producer to its end, sampling the processor's input lag each second
    and measuring who used the cores."""
    clock = ReleaseClock()
    producer = LiveProducer(plan)
    shares = CpuShares({"heat process": process.pid, "heat sink": sink.pid,
                        "load producer": producer.process.pid, "benchmark": os.getpid(),
                        "kafka": listener_pid(bench.bootstrap),
                        "postgresql": listener_pid(bench.admin_url)},
                       with_children={"postgresql"})
    lags: list[float] = []
    cpu: list[tuple[float, float]] = []  # (monotonic s, CPU s)
    try:
        with profiling(bench, process.pid, profile_name):
            next_sample_s = time.monotonic()
            while not producer.finished:
                clock.add(producer.drain())
                if time.monotonic() >= next_sample_s:
                    metrics = process.metrics()
                    lags.append(sum(value for key, value in metrics.items()
                                    if key.startswith("heat_process_input_lag_records")))
                    cpu.append((time.monotonic(),
                                metrics.get("process_cpu_seconds_total", math.nan)))
                    next_sample_s += 1.0
                if not process.running():
                    raise ServiceError(f"heat process exited; see {process.log_path}")
                time.sleep(0.05)
    finally:
        figures.cpu_cores = shares.stop()
        producer.stop()
        clock.add(producer.drain())
    figures.ticks_sent = int(plan.duration_s * plan.ticks_per_s)
    figures.input_lag_max_records = max(lags, default=0.0)
    figures.input_lag_end_records = lags[-1] if lags else 0.0
    if len(cpu) > 1:
        figures.process_cpu_share = (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0])
    return clock


def _settle(watchers: Watchers, clock: ReleaseClock, last_boundary_ms: int,
            timeout_s: float = 30.0) -> None:
    """Wait until the last bar's frames are on Kafka and every frame seen has its row."""
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        if watchers.error is not None:
            raise watchers.error
        bar_seen = any(frame.ts_ms >= last_boundary_ms for frame in watchers.frames)
        if bar_seen and watchers.in_db_outstanding() == 0:
            return
        time.sleep(0.1)


def _quantiles_ms(before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]
                 ) -> tuple[float, float]:
    """p50 and p99 (ms) of what a histogram in seconds observed between two readings."""
    delta = [(bound, count - earlier) for (bound, count), (_, earlier)
             in zip(after, before, strict=True)]
    return histogram_quantile(delta, 0.5) * 1000, histogram_quantile(delta, 0.99) * 1000


def _summarize_latency(figures: LatencyFigures, frames: Sequence[SeenFrame],
                       clock: ReleaseClock, live_start_ms: int) -> None:
    kafka_ms: list[float] = []
    kafka_bar_ms: list[float] = []
    database_ms: list[float] = []
    database_bar_ms: list[float] = []
    sink_ms: list[float] = []
    for frame in frames:
        released_ms = clock.released_at(frame.ts_ms)
        if frame.ts_ms < live_start_ms or released_ms is None:
            continue
        bar = frame.trigger == "bar"
        kafka_ms.append(frame.on_kafka_ms - released_ms)
        if bar:
            kafka_bar_ms.append(frame.on_kafka_ms - released_ms)
        if frame.in_db_ms is not None:
            database_ms.append(frame.in_db_ms - released_ms)
            sink_ms.append(frame.in_db_ms - frame.on_kafka_ms)
            if bar:
                database_bar_ms.append(frame.in_db_ms - released_ms)
    figures.kafka = LatencySummary.of(kafka_ms)
    figures.kafka_bar = LatencySummary.of(kafka_bar_ms)
    figures.database = LatencySummary.of(database_ms)
    figures.database_bar = LatencySummary.of(database_bar_ms)
    figures.sink_p99_ms = LatencySummary.of(sink_ms).p99_ms
    if figures.baseline is not None:
        figures.kafka_p99_vs_baseline = figures.kafka.p99_ms / figures.baseline.p99_ms
        figures.database_p99_vs_baseline = figures.database.p99_ms / figures.baseline.p99_ms
