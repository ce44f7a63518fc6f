"""Pipeline benchmark: ``heat process`` and ``heat sink`` as real child processes on a Kafka
broker and a PostgreSQL server, each figure against a baseline measured in the same run.

1. Throughput: a backlog of price ticks (with the books and enough history to be past
   the estimators' warm-up) is pre-produced to fresh topics; ticks/s the processor
   applies (its ``heat_process_events_total``) against a bare aiokafka loop that reads,
   decodes and re-produces the same records in batches, and against the engine host
   alone (no Kafka) over the same records; then ``heat sink`` stores the frames.
2. Latency: live ticks (event time = now) and position changes at a steady rate;
   from the append time of the record that released each frame to the frame visible
   on Kafka (``read_committed``) and to its row in the database, over several bar
   closes; against a bare transactional relay of the same kind of load.
3. Failover: two processor workers; kill -9 of the active one; until the standby is
   live, until it commits frames, until frames are timely again; against a bare
   consumer-group member taking over a partition with the same session settings.
4. Capacity: :mod:`heatmap.bench.capacity` (the engine alone).

Every run uses its own topic prefix and scratch database; both are deleted at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.queues import Queue
from pathlib import Path
from typing import NamedTuple

import psycopg
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from heatmap.bench import capacity
from heatmap.bench.cpu import CpuShares, listener_pid
from heatmap.bench.feeds import (
    BAR_MS,
    Backlog,
    LivePlan,
    LiveProducer,
    bar_start_ms,
    delete_topics,
    fresh_topics,
    produce_backlog,
)
from heatmap.bench.load import (
    LatencySummary,
    LoadShape,
    ReleaseClock,
    histogram_quantile,
    rate_between,
    value_at,
)
from heatmap.bench.profiles import PySpy, top_functions_collapsed
from heatmap.bench.scratch import scratch_database, scratch_settings
from heatmap.bench.services import HeatService, ServiceError, child_env, live
from heatmap.bench.watch import (
    GroupMemberPlan,
    SeenFrame,
    Watchers,
    hold_partition,
    now_ms,
    relay,
    relay_latency,
)
from heatmap.db import migrations
from heatmap.process import active
from heatmap.process.host import EngineHost, HostConfig, MessageKind, RawRecord
from heatmap.process.outputs import epoch_records
from heatmap.process.settings import ProcessSettings
from heatmap.settings.kafka import TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.topics import Topics, TopicSpec

BAR = "1m"
TIMEFRAMES = "1h,4h,1d"
FIGURES = ("throughput", "latency", "failover", "capacity")
LATENCY_TARGET_MS = 250.0  # frames on Kafka (p99); "timely again" after a failover
_SESSION_TIMEOUT_MS = 6000  # the processor's (Kafka's minimum)
_HISTOGRAMS = ("heat_process_frame_latency_seconds", "heat_process_compute_seconds",
               "heat_process_commit_seconds")
_HEARTBEAT_MS = 1000


@dataclass(frozen=True)
class PipelineSpec:
    """How much one run does (``full`` is the reference run, ``quick`` a short one)."""

    name: str
    shape: LoadShape = field(default_factory=LoadShape)
    dense_ticks: int = 600_000
    backlog_ticks_per_s: float = 5000.0
    backlog_age_s: int = 3 * 3600
    history_bars: int = 22  # past the estimators' warm-up (min_periods 20 returns)
    live_ticks_per_s: float = 5000.0
    live_positions_per_s: float = 10.0
    latency_bar_closes: int = 3
    relay_latency_s: float = 15.0
    failover_ticks_per_s: float = 1000.0
    # The kill comes this long after the active worker's first checkpoint once caught up:
    # half the checkpoint interval, so the takeover replays an average amount of epochs.
    failover_after_checkpoint_s: float = 5.0
    capacity_symbols: tuple[int, ...] = (100, 200, 400, 800)
    capacity_accounts: tuple[int, ...] = (100, 300, 1000)
    capacity_bars: int = 2
    capacity_budget_s: float = 6.0  # 10 % of a 1-minute bar


SPECS = {
    "full": PipelineSpec("full"),
    "quick": PipelineSpec("quick", dense_ticks=100_000, latency_bar_closes=1,
                          relay_latency_s=8.0,
                          capacity_symbols=(100, 200), capacity_accounts=(100, 300),
                          capacity_bars=1),
}


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


@dataclass
class FailoverFigures:
    ticks_per_s: float
    baseline_group_takeover_s: float = math.nan  # bare group member, same session settings
    standby_live_s: float = math.nan  # kill -9 -> the standby's /health phase "live"
    frames_again_s: float = math.nan  # kill -9 -> the new owner committed frames
    timely_again_s: float = math.nan  # kill -9 -> a frame within the latency target again
    recovery_s: float = math.nan  # the new owner's heat_process_recovery_seconds
    standby_live_vs_baseline: float = math.nan


@dataclass
class CapacityFigures:
    budget_s: float
    cells: list[capacity.CapacityCell] = field(default_factory=list)
    max_accounts: dict[int, int | None] = field(default_factory=dict)
    max_accounts_with_outputs: dict[int, int | None] = field(default_factory=dict)


@dataclass
class PipelineBenchResult:
    spec: str
    shape: str
    throughput: ThroughputFigures | None = None
    latency: LatencyFigures | None = None
    failover: FailoverFigures | None = None
    capacity: CapacityFigures | None = None
    profiles: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # The machine's 1-minute load average after each figure (2 cores: above 2, every
    # runnable process waits for a core part of the time).
    load_average: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # figure -> why it has no result
    notes: list[str] = field(default_factory=list)


@dataclass
class Bench:
    """Where a run's services connect, and where logs and profiles go."""

    bootstrap: str
    admin_url: str
    writer_password: str | None
    logs: Path
    profile_dir: Path | None = None
    step: Callable[[str], None] = lambda _: None
    # Where the time went, per profile: (function, share of samples), largest first.
    profiles: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def service(self, command: str, name: str, topics: TopicSettings, **settings: str
                ) -> HeatService:
        env = child_env(HEAT_KAFKA_BOOTSTRAP=self.bootstrap, HEAT_TOPIC_PREFIX=topics.prefix,
                        HEAT_BAR_INTERVAL=BAR, HEAT_TIMEFRAMES=TIMEFRAMES, **settings)
        port_setting = "HEAT_WEB_PORT" if command == "process" else "HEAT_SINK_WEB_PORT"
        return HeatService([command], env, self.logs / f"{name}.log", port_setting)

    def sink(self, name: str, topics: TopicSettings, database_url: str,
             writer_password: str) -> HeatService:
        return self.service("sink", name, topics, HEAT_DATABASE_URL=database_url,
                            HEAT_WRITER_PASSWORD=writer_password)

    @contextmanager
    def database(self) -> Iterator[tuple[str, str]]:
        """A migrated scratch database: (owner URL, heat_writer's password)."""
        with scratch_database(self.admin_url) as url:
            settings = scratch_settings(url, writer_password=self.writer_password)
            migrations.migrate(settings)
            yield url, settings.role_password("heat_writer") or ""

    @contextmanager
    def topics(self, label: str) -> Iterator[tuple[TopicSettings, Topics]]:
        settings, topics = fresh_topics(self.bootstrap, label)
        try:
            yield settings, topics
        finally:
            delete_topics(self.bootstrap, settings.prefix)


@contextmanager
def running(*services: HeatService) -> Iterator[None]:
    """Kill the services however the block ends (they are measured, not shut down)."""
    try:
        yield
    finally:
        for service in services:
            service.kill()


def _counter(service: HeatService, name: str) -> float:
    return service.metrics().get(name, 0.0)


def _frames_in_db(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM heat.frames").fetchone()
    return int(row[0]) if row else 0


# -- 1. throughput ---------------------------------------------------------------------------


def throughput(bench: Bench, spec: PipelineSpec) -> ThroughputFigures:
    with bench.topics("tput") as (settings, topics):
        relay_topic = f"{settings.prefix}relay"
        kafka_broker.ensure_topics(bench.bootstrap, [TopicSpec(
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
        sources, kinds = asyncio.run(active.input_sources(bench.bootstrap, topics))
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
            figures.process_frames = int(_counter(process, "heat_process_frames_total"))
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
                    figures.sink_frames_in_db = _frames_in_db(url)
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
    with contextlib.ExitStack() as profiling:
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
                profiling.enter_context(_profiling(bench, process.pid, profile_name))
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


@contextmanager
def _profiling(bench: Bench, pid: int, name: str) -> Iterator[None]:
    """py-spy on ``pid`` while the block runs, when profiling."""
    if bench.profile_dir is None:
        yield
        return
    output = bench.profile_dir / f"{name}.txt"
    spy = PySpy(pid, output)
    try:
        yield
    finally:
        spy.stop()
    if output.exists():
        with open(output) as stacks:
            bench.profiles[f"{name} (py-spy, own time)"] = top_functions_collapsed(stacks)
        with open(output) as stacks:
            bench.profiles[f"{name} (py-spy, with callees)"] = top_functions_collapsed(
                stacks, inclusive=True)


async def _read_all(bootstrap: str, sources: Sequence[TopicPartition], total: int
                    ) -> list[list[RawRecord]]:
    """Every record of ``sources``, as the fetches returned them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
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

    with contextlib.ExitStack() as profiling:
        profiled = False
        for batch in [*fetches, []]:
            if applied_total >= backlog.before_dense and not profiled:
                profiling.enter_context(_profiling(bench, os.getpid(), "host-alone"))
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


# -- 2. latency ------------------------------------------------------------------------------


def latency(bench: Bench, spec: PipelineSpec) -> LatencyFigures:
    figures = LatencyFigures(ticks_per_s=spec.live_ticks_per_s,
                             positions_per_s=spec.live_positions_per_s)
    bench.step(f"latency: baseline relay at {spec.live_ticks_per_s:,.0f} ticks/s")
    with bench.topics("relay") as (settings, topics):
        relay_topic = f"{settings.prefix}relay"
        kafka_broker.ensure_topics(bench.bootstrap, [TopicSpec(
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
        start_ms = bar_start_ms(now_ms()) - spec.history_bars * BAR_MS
        backlog = produce_backlog(bench.bootstrap, topics, spec.shape, start_ms=start_ms,
                                  history_bars=spec.history_bars, dense_ticks=0,
                                  ticks_per_s=spec.live_ticks_per_s)
        process = bench.service("process", "process-latency", settings)
        sink = bench.sink("sink-latency", settings, url, password)
        watchers = Watchers(bench.bootstrap, topics.heat_frames, url)
        with running(process, sink):
            process.wait_for(live, 120, "the engine live")
            process.wait_for(lambda p: _counter(p, "heat_process_events_total")
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
        epochs = _counter(process, "heat_process_epochs_total")
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
        with _profiling(bench, process.pid, profile_name):
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


# -- 3. failover -----------------------------------------------------------------------------


def failover(bench: Bench, spec: PipelineSpec) -> FailoverFigures:
    figures = FailoverFigures(ticks_per_s=spec.failover_ticks_per_s)
    bench.step("failover: baseline (a bare consumer-group member takes over)")
    figures.baseline_group_takeover_s = _group_takeover_s(bench)
    with bench.topics("failover") as (settings, topics):
        bench.step("failover: two heat process workers under live load")
        start_ms = bar_start_ms(now_ms()) - spec.history_bars * BAR_MS
        backlog = produce_backlog(bench.bootstrap, topics, spec.shape, start_ms=start_ms,
                                  history_bars=spec.history_bars, dense_ticks=0,
                                  ticks_per_s=spec.live_ticks_per_s)
        first = bench.service("process", "process-failover-a", settings)
        watchers = Watchers(bench.bootstrap, topics.heat_frames, None)
        clock = ReleaseClock()
        with running(first):
            first.wait_for(live, 120, "the engine live")
            first.wait_for(lambda p: _counter(p, "heat_process_events_total")
                           >= backlog.records, 300, "the history applied")
            caught_up_s = time.time()
            producer = LiveProducer(LivePlan(
                bench.bootstrap, settings.prefix, spec.shape, spec.failover_ticks_per_s,
                spec.live_positions_per_s, 600.0, walk_offset=backlog.history_ticks))
            second = bench.service("process", "process-failover-b", settings)
            try:
                second.wait_for(lambda s: s.health().get("role") == "standby", 120,
                                "a standby")
                active_worker, standby = ((first, second) if first.health().get("role")
                                          == "active" else (second, first))
                active_worker.wait_for(
                    lambda p: _counter(p, "heat_process_checkpoint_timestamp_seconds")
                    > caught_up_s, 120, "a checkpoint once caught up")
                _sleep_draining(producer, clock, spec.failover_after_checkpoint_s)
                watchers.start()
                bench.step("failover: kill -9 of the active worker")
                killed_s, killed_ms = time.monotonic(), now_ms()
                active_worker.kill()
                standby_live_s = standby.wait_for(live, 120, "the standby live", every_s=0.02)
                figures.standby_live_s = standby_live_s - killed_s
                frames_s = standby.wait_for(
                    lambda s: _counter(s, "heat_process_frames_total") > 0, 120,
                    "frames from the new owner", every_s=0.02)
                figures.frames_again_s = frames_s - killed_s
                figures.recovery_s = _counter(standby, "heat_process_recovery_seconds")
                figures.timely_again_s = _timely_again_s(watchers, producer, clock, killed_ms)
            finally:
                watchers.stop()
                producer.stop()
                second.kill()
    figures.standby_live_vs_baseline = (figures.standby_live_s
                                        / figures.baseline_group_takeover_s)
    return figures


def _sleep_draining(producer: LiveProducer, clock: ReleaseClock, seconds: float) -> None:
    until_s = time.monotonic() + seconds
    while time.monotonic() < until_s:
        clock.add(producer.drain())
        time.sleep(0.05)


def _timely_again_s(watchers: Watchers, producer: LiveProducer, clock: ReleaseClock,
                    killed_ms: int, timeout_s: float = 120.0) -> float:
    """Seconds from the kill to the first frame seen within the latency target."""
    deadline_s = time.monotonic() + timeout_s
    checked = 0
    while time.monotonic() < deadline_s:
        clock.add(producer.drain())
        frames = watchers.frames
        for frame in frames[checked:]:
            released_ms = clock.released_at(frame.ts_ms)
            if (frame.on_kafka_ms > killed_ms and released_ms is not None
                    and frame.on_kafka_ms - released_ms <= LATENCY_TARGET_MS):
                return (frame.on_kafka_ms - killed_ms) / 1000
        checked = len(frames)
        time.sleep(0.05)
    return math.nan


def _group_takeover_s(bench: Bench) -> float:
    """kill -9 of the member holding a one-partition topic; seconds until the other
    member is assigned it."""
    context = multiprocessing.get_context("spawn")
    events: Queue[tuple[str, float, int]] = context.Queue()
    with bench.topics("lease") as (settings, _):
        topic = f"{settings.prefix}lease"
        kafka_broker.ensure_topics(bench.bootstrap, [TopicSpec(topic, 1)])
        members = {}
        for name in ("member-a", "member-b"):
            plan = GroupMemberPlan(bench.bootstrap, topic, f"{settings.prefix}group", name,
                                   _SESSION_TIMEOUT_MS, _HEARTBEAT_MS,
                                   max(10_000, 2 * _SESSION_TIMEOUT_MS))
            members[name] = context.Process(target=hold_partition, args=(plan, events),
                                            name=f"bench-{name}", daemon=True)
        holder: dict[str, int] = {}
        try:
            members["member-a"].start()
            _await_assignment(events, holder, lambda: holder.get("member-a") == 1)
            members["member-b"].start()
            _await_assignment(events, holder, lambda: "member-b" in holder
                              and sum(holder.values()) == 1)
            owner = max(holder, key=lambda name: holder[name])
            other = next(name for name in members if name != owner)
            killed_s = time.monotonic()
            members[owner].kill()
            assigned_s = _await_assignment(events, holder, lambda: holder.get(other) == 1)
            return assigned_s - killed_s
        finally:
            for process in members.values():
                if process.is_alive():
                    process.kill()
                process.join(timeout=10)


def _await_assignment(events: Queue[tuple[str, float, int]],
                      holder: dict[str, int], done: Callable[[], bool],
                      timeout_s: float = 60.0) -> float:
    """Apply assignment events to ``holder`` until ``done()``; the last event's time."""
    deadline_s = time.monotonic() + timeout_s
    last_s = math.nan
    while not done():
        try:
            name, at_s, partitions = events.get(timeout=max(0.01, deadline_s - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("the group members were not assigned in time") from None
        holder[name] = partitions
        last_s = at_s
    return last_s


# -- 4. capacity -----------------------------------------------------------------------------


def capacity_grid(bench: Bench, spec: PipelineSpec) -> CapacityFigures:
    figures = CapacityFigures(budget_s=spec.capacity_budget_s)
    for symbols in spec.capacity_symbols:
        for accounts in spec.capacity_accounts:
            bench.step(f"capacity: engine alone, {symbols} symbols x {accounts} accounts")
            figures.cells.append(capacity.measure(symbols, accounts,
                                                  bars=spec.capacity_bars,
                                                  seed=spec.shape.seed))
        figures.max_accounts[symbols] = capacity.max_accounts(
            figures.cells, symbols, spec.capacity_budget_s)
        figures.max_accounts_with_outputs[symbols] = capacity.max_accounts(
            figures.cells, symbols, spec.capacity_budget_s, with_outputs=True)
    return figures


# -- the run ---------------------------------------------------------------------------------


def run(bench: Bench, spec_name: str = "full", figures: Sequence[str] = FIGURES
        ) -> PipelineBenchResult:
    spec = SPECS[spec_name]
    result = PipelineBenchResult(spec=spec_name, shape=spec.shape.describe())
    measures: dict[str, Callable[[], None]] = {
        "throughput": lambda: setattr(result, "throughput", throughput(bench, spec)),
        "latency": lambda: setattr(result, "latency", latency(bench, spec)),
        "failover": lambda: setattr(result, "failover", failover(bench, spec)),
        "capacity": lambda: setattr(result, "capacity", capacity_grid(bench, spec)),
    }
    for name, measure in measures.items():
        if name not in figures:
            continue
        try:
            measure()
        except (ServiceError, TimeoutError, OSError) as error:  # the other figures still run
            result.failed[name] = str(error)
        result.load_average[name] = os.getloadavg()[0]
    result.profiles = bench.profiles
    return result


def as_dict(result: PipelineBenchResult) -> dict[str, object]:
    """The result as JSON-ready values (a figure not measured, NaN, is null)."""
    figures = asdict(result)
    if result.capacity is not None:
        figures["capacity"]["cells"] = [
            {**asdict(cell), "with_outputs_s": cell.with_outputs_s, "vs_floor": cell.vs_floor}
            for cell in result.capacity.cells]
    cleaned = _without_nan(figures)
    assert isinstance(cleaned, dict)
    return cleaned


def _without_nan(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value
