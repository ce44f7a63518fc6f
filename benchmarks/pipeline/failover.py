"""Figure 3: kill -9 of the active processor worker until the standby is live and frames
flow again; against a bare consumer-group member taking over a partition."""

from __future__ import annotations

import math
import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue

from benchmarks.feeds import LivePlan, LiveProducer
from benchmarks.load import ReleaseClock
from benchmarks.pipeline.common import (
    LATENCY_TARGET_MS,
    Bench,
    PipelineSpec,
    counter,
    live,
    produce_history_to_now,
    running,
)
from benchmarks.watch import GroupMemberPlan, Watchers, hold_partition, now_ms
from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka as kafka_broker
from heatmap.topics import TopicSpec

_SESSION_TIMEOUT_MS = 6000  # the processor's (Kafka's minimum)
_HEARTBEAT_MS = 1000


@dataclass
class FailoverFigures:
    ticks_per_s: float
    baseline_group_takeover_s: float = math.nan  # bare group member, same session settings
    standby_live_s: float = math.nan  # kill -9 -> the standby's /health phase "live"
    frames_again_s: float = math.nan  # kill -9 -> the new owner committed frames
    timely_again_s: float = math.nan  # kill -9 -> a frame within the latency target again
    recovery_s: float = math.nan  # the new owner's heat_process_recovery_seconds
    standby_live_vs_baseline: float = math.nan


def failover(bench: Bench, spec: PipelineSpec) -> FailoverFigures:
    figures = FailoverFigures(ticks_per_s=spec.failover_ticks_per_s)
    bench.step("failover: baseline (a bare consumer-group member takes over)")
    figures.baseline_group_takeover_s = _group_takeover_s(bench)
    with bench.topics("failover") as (settings, topics):
        bench.step("failover: two heat process workers under live load")
        backlog = produce_history_to_now(bench, topics, spec)
        first = bench.service("process", "process-failover-a", settings)
        watchers = Watchers(bench.bootstrap, topics.heat_frames, None)
        clock = ReleaseClock()
        with running(first):
            first.wait_for(live, 120, "the engine live")
            first.wait_for(lambda p: counter(p, "heat_process_events_total")
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
                    lambda p: counter(p, "heat_process_checkpoint_timestamp_seconds")
                    > caught_up_s, 120, "a checkpoint once caught up")
                _sleep_draining(producer, clock, spec.failover_after_checkpoint_s)
                watchers.start()
                bench.step("failover: kill -9 of the active worker")
                killed_s, killed_ms = time.monotonic(), now_ms()
                active_worker.kill()
                standby_live_s = standby.wait_for(live, 120, "the standby live", every_s=0.02)
                figures.standby_live_s = standby_live_s - killed_s
                frames_s = standby.wait_for(
                    lambda s: counter(s, "heat_process_frames_total") > 0, 120,
                    "frames from the new owner", every_s=0.02)
                figures.frames_again_s = frames_s - killed_s
                figures.recovery_s = counter(standby, "heat_process_recovery_seconds")
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
        kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=bench.bootstrap),
                                   [TopicSpec(topic, 1)])
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
