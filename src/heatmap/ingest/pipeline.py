"""Run one ingest source into Kafka: pacing, conflation, dead letters, graceful shutdown."""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from heatmap.ingest.conflation import Conflator
from heatmap.ingest.producer import HeatProducer
from heatmap.replay.sources import ReadStats, merged_events
from heatmap.schema import Account, InvalidMessageError, Position, Price, datetime_to_ms, decode
from heatmap.topics import Topics

log = logging.getLogger(__name__)

Message = Price | Position | Account


@dataclass(frozen=True)
class Rejected:
    """An input that broke the message contract: where it was headed, why, its bytes."""

    topic: str
    reason: str
    payload: bytes
    key: bytes | None = None


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


_decoder = msgspec.json.Decoder()


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


def json_lines(lines: Iterable[bytes], positions_topic: str,
               accounts_topic: str) -> Iterator[Message | Rejected]:
    """Positions and account terms as JSON lines (a desk's OMS on stdin).

    An object with ``equity`` is an account update, one with ``qty`` a
    position; anything else, or anything invalid, is rejected with its bytes.
    """
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        original = raw.rstrip(b"\n")  # what a dead letter keeps: the line as sent
        try:
            shape = _decoder.decode(line)
        except UnicodeDecodeError:
            yield Rejected(positions_topic, "not valid UTF-8", original)
            continue
        except msgspec.DecodeError as error:
            yield Rejected(positions_topic, f"not JSON: {error}", original)
            continue
        if not isinstance(shape, dict) or ("qty" in shape) == ("equity" in shape):
            yield Rejected(positions_topic, "neither a position (qty) nor an account (equity)",
                           original)
            continue
        topic = positions_topic if "qty" in shape else accounts_topic
        try:
            yield decode(Position, line) if "qty" in shape else decode(Account, line)
        except InvalidMessageError as error:
            yield Rejected(topic, str(error), original)


def recorded_files(prices: list[Path], positions: Path | None, accounts: Path | None,
                   topics: Topics, stats: ReadStats) -> Iterator[Message | Rejected]:
    """Recorded price (bars or trades), position and account files merged by time;
    rows that break the contract come out as :class:`Rejected` with their bytes."""
    rejected: deque[Rejected] = deque()
    topic_of = {"price": topics.prices, "position": topics.positions,
                "account": topics.accounts}
    stats.on_reject = lambda kind, reason, raw: rejected.append(
        Rejected(topic_of.get(kind, topics.prices), reason, raw))
    # No gap limit: nothing here closes bars, and recordings of different years may mix.
    for message in merged_events(prices, positions, accounts, stats, max_gap_ms=None):
        while rejected:
            yield rejected.popleft()
        yield message
    while rejected:
        yield rejected.popleft()
