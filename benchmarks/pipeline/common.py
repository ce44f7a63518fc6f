"""What the pipeline benchmark's figures share: the run's size, where its services
connect, and helpers to start, read and profile them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from benchmarks.feeds import (
    BAR_MS,
    Backlog,
    bar_start_ms,
    fresh_topics,
    produce_backlog,
)
from benchmarks.load import LoadShape
from benchmarks.profiles import PySpy, top_functions_collapsed
from benchmarks.scratch import scratch_database, scratch_settings
from benchmarks.watch import now_ms
from heatmap.db import migrations
from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.stack.services import HeatService, child_env
from heatmap.topics import Topics

BAR = "1m"
TIMEFRAMES = "1h,4h,1d"
LATENCY_TARGET_MS = 250.0  # frames on Kafka (p99); "timely again" after a failover


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
    large_accounts: int = 1000  # the latency figure again at this many accounts
    relay_latency_s: float = 15.0
    failover_ticks_per_s: float = 1000.0
    # The kill comes this long after the active worker's first checkpoint once caught up:
    # half the checkpoint interval, so the takeover replays an average amount of epochs.
    failover_after_checkpoint_s: float = 5.0
    capacity_symbols: tuple[int, ...] = (100, 200, 400, 800)
    capacity_accounts: tuple[int, ...] = (100, 300, 1000)
    capacity_bars: int = 2
    capacity_budget_s: float = 6.0  # 10 % of a 1-minute bar
    # One engine against two sharing the desks (processes on the same cores), 200 symbols.
    shared_accounts: tuple[int, ...] = (300, 1000, 2000)


SPECS = {
    "full": PipelineSpec("full"),
    "quick": PipelineSpec("quick", dense_ticks=100_000, latency_bar_closes=1,
                          relay_latency_s=8.0,
                          capacity_symbols=(100, 200), capacity_accounts=(100, 300),
                          capacity_bars=1, shared_accounts=(100, 300), large_accounts=300),
}


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
            kafka_broker.delete_topics(KafkaConnection(bootstrap_servers=self.bootstrap),
                                       settings.prefix)


@contextmanager
def running(*services: HeatService) -> Iterator[None]:
    """Kill the services however the block ends (they are measured, not shut down)."""
    try:
        yield
    finally:
        for service in services:
            service.kill()


def live(service: HeatService) -> bool:
    """The processor worker runs the engine live."""
    return service.health().get("phase") == "live"


def counter(service: HeatService, name: str) -> float:
    return service.metrics().get(name, 0.0)


def frames_in_db(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM heat.frames").fetchone()
    return int(row[0]) if row else 0


@contextmanager
def profiling(bench: Bench, pid: int, name: str) -> Iterator[None]:
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


def produce_history_to_now(bench: Bench, topics: Topics, spec: PipelineSpec) -> Backlog:
    """The books and ``spec.history_bars`` bars of history ending at the current bar, for a
    live run to continue from."""
    start_ms = bar_start_ms(now_ms()) - spec.history_bars * BAR_MS
    return produce_backlog(bench.bootstrap, topics, spec.shape, start_ms=start_ms,
                           history_bars=spec.history_bars, dense_ticks=0,
                           ticks_per_s=spec.live_ticks_per_s)
