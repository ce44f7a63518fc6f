"""Run one ingest source into Kafka: pacing, conflation, dead letters, graceful shutdown."""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from heatmap.ingest.conflation import Conflator
from heatmap.ingest.json_lines import json_lines
from heatmap.ingest.producer import HeatProducer
from heatmap.ingest.recorded import recorded_files
from heatmap.ingest.rejected import Message, Rejected
from heatmap.schema import Price, datetime_to_ms

# The sources are pure and live in their own modules; they are named here too, so
# that starting a service needs this module only.
__all__ = ["IngestSummary", "Message", "Pacer", "Rejected", "StopFlag", "interruptible_lines",
           "json_lines", "recorded_files", "run"]

log = logging.getLogger(__name__)


class StopFlag:
    """Set by SIGTERM / SIGINT; sources and the send loop check it between records."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.event.set())

    @property
    def stopped(self) -> bool:
        return self.event.is_set()


class Pacer:
    """Replays event time at ``speed`` x real time (0: as fast as possible)."""

    def __init__(self, speed: float, stop: StopFlag) -> None:
        self.speed = speed
        self.stop = stop
        self._origin: tuple[int, float] | None = None

    def wait_for(self, ts_ms: int) -> None:
        if self.speed <= 0:
            return
        if self._origin is None:
            self._origin = (ts_ms, time.monotonic())
            return
        due = self._origin[1] + (ts_ms - self._origin[0]) / 1000.0 / self.speed
        delay_s = due - time.monotonic()
        if delay_s > 0:
            self.stop.event.wait(delay_s)


@dataclass
class IngestSummary:
    accepted: int = 0
    deadlettered: int = 0
    conflated: int = 0


def run(source: Iterable[Message | Rejected], producer: HeatProducer, stop: StopFlag,
        pacer: Pacer | None = None, conflate_ms: int = 0,
        source_stops_itself: bool = False) -> IngestSummary:
    """Send every message of ``source`` until it ends or ``stop`` is set, then flush.

    Every item taken from the source is sent. A source that consumes from another
    program (stdin) stops itself and hands over what it already read
    (``source_stops_itself``); other sources are simply no longer pulled.
    """
    summary = IngestSummary()
    conflator = Conflator(conflate_ms) if conflate_ms > 0 else None
    try:
        for item in source:
            if isinstance(item, Rejected):
                producer.send_deadletter(item.topic, item.reason, item.payload, item.key)
                summary.deadlettered += 1
                continue
            if pacer is not None:
                pacer.wait_for(datetime_to_ms(item.ts))
            outgoing: Iterable[Message] = [item]
            if conflator is not None and isinstance(item, Price):
                outgoing = conflator.offer(item)
            for message in outgoing:
                producer.send(message)
                summary.accepted += 1
            if stop.stopped and not source_stops_itself:
                break
        if conflator is not None:
            for message in conflator.drain():
                producer.send(message)
                summary.accepted += 1
            summary.conflated = conflator.conflated
    finally:
        producer.close()  # flushes everything accepted
    log.info("ingest finished", extra={
        "accepted": summary.accepted, "deadlettered": summary.deadlettered,
        "acknowledged": producer.acknowledged, "failed": producer.failed,
        "conflated": summary.conflated, "stopped_by_signal": stop.stopped})
    return summary


def interruptible_lines(stream: Iterable[bytes], stop: StopFlag,
                        poll_s: float = 0.2) -> Iterator[bytes]:
    """Lines of a blocking stream (stdin) that stop promptly on SIGTERM.

    A reader thread feeds a queue, so an idle pipe cannot keep a stopping service
    alive; lines it had already read are still returned before stopping.
    """
    def drained() -> Iterator[bytes]:
        while True:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                return
            yield line

    lines: queue.Queue[bytes | None] = queue.Queue(maxsize=10_000)

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=poll_s)
        except queue.Empty:
            if stop.stopped:
                yield from drained()
                return
            continue
        if line is None:
            return
        yield line
