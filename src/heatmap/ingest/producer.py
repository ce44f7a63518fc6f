"""The one way ingest writes to Kafka: validated messages, keyed as specified, counted.

``acks=all`` with the idempotent producer (retries cannot duplicate or
reorder), lz4 batches, and a close that flushes everything accepted, so a
SIGTERM loses nothing that ``send`` accepted.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterator

from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError
from kafka.producer.future import RecordMetadata
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from heatmap.ingest.settings import IngestSettings
from heatmap.schema import Account, Position, Price, encode
from heatmap.topics import Topics

log = logging.getLogger(__name__)

DEADLETTERED = Counter("heat_ingest_deadlettered_total",
                       "Records sent to the deadletter topic", ["source_topic"])
SEND_LATENCY = Histogram("heat_ingest_send_latency_seconds",
                         "From send() to the broker's acknowledgement (1 record in 16)",
                         ["topic"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25, 0.5, 1, 2.5, 5, 10))
LATENCY_SAMPLE_EVERY = 16
# What a dead letter keeps of a record too large for the broker (default limit 1 MiB).
MAX_DEADLETTER_BYTES = 512 * 1024


class _TopicMeters:
    """Acknowledgements and failures of one topic, counted in plain integers.

    The producer's I/O thread calls these once per record; Prometheus reads the
    totals only when scraped (see :class:`_ProducerCollector`), which keeps the
    per-record cost to a bound-method call.
    """

    def __init__(self, topic: str, producer: HeatProducer) -> None:
        self.topic = topic
        self.producer = producer
        self.records = 0
        self.bytes = 0
        self.errors = 0
        self.latency = SEND_LATENCY.labels(topic)

    def on_ack(self, metadata: RecordMetadata) -> None:
        self.records += 1
        self.bytes += max(metadata.serialized_value_size, 0)
        self.producer._acknowledged()

    def on_sampled_ack(self, started: float, _metadata: RecordMetadata) -> None:
        self.latency.observe(time.perf_counter() - started)

    def on_error(self, error: Exception) -> None:
        self.errors += 1
        self.producer._failed(self.topic, error)


class _ProducerCollector(Collector):
    """Exports the integer counters of every live producer at scrape time."""

    def __init__(self) -> None:
        self.producers: weakref.WeakSet[HeatProducer] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        families = {
            "records": CounterMetricFamily("heat_ingest_records_sent",
                                           "Records acknowledged by Kafka", labels=["topic"]),
            "bytes": CounterMetricFamily("heat_ingest_bytes_sent",
                                         "Value bytes acknowledged by Kafka", labels=["topic"]),
            "errors": CounterMetricFamily("heat_ingest_send_errors",
                                          "Records Kafka did not acknowledge",
                                          labels=["topic"]),
        }
        totals: dict[tuple[str, str], int] = {}
        for producer in list(self.producers):
            for meters in producer._meters.values():
                for name in families:
                    key = (name, meters.topic)
                    totals[key] = totals.get(key, 0) + getattr(meters, name)
        for (name, topic), value in sorted(totals.items()):
            families[name].add_metric([topic], value)
        yield from families.values()


_COLLECTOR = _ProducerCollector()
REGISTRY.register(_COLLECTOR)


class HeatProducer:
    """Produces prices, positions, account terms and dead letters.

    Parameters
    ----------
    settings : IngestSettings
        Bootstrap servers and producer options (``settings.kafka``), service name.
    topics : Topics
        Resolved topic names (prefix applied).
    """

    def __init__(self, settings: IngestSettings, topics: Topics) -> None:
        self.settings = settings
        self.topics = topics
        options = settings.kafka.producer
        self._producer = KafkaProducer(
            **settings.kafka.connection(f"heat-{settings.service_name}").kafka_python(),
            acks=options.client_acks,
            enable_idempotence=options.idempotence,
            compression_type=options.compression,
            linger_ms=options.linger_ms,
            batch_size=options.batch_size,
        )
        self._meters: dict[str, _TopicMeters] = {}
        _COLLECTOR.producers.add(self)
        self._last_progress_s = time.monotonic()
        self._failing = False
        self.accepted = 0
        self.acknowledged = 0
        self.failed = 0
        self.last_error: str | None = None

    # -- sending ------------------------------------------------------------------------------

    def send_price(self, price: Price) -> None:
        self._send(self.topics.prices, price.symbol.encode(), encode(price))

    def send_position(self, position: Position) -> None:
        self._send(self.topics.positions, position.account.encode(), encode(position))

    def send_account(self, account: Account) -> None:
        self._send(self.topics.accounts, account.account.encode(), encode(account))

    def send(self, message: Price | Position | Account) -> None:
        """Send any input message to its topic, keyed per the message contract."""
        if isinstance(message, Price):
            self.send_price(message)
        elif isinstance(message, Position):
            self.send_position(message)
        else:
            self.send_account(message)

    def send_deadletter(self, source_topic: str, reason: str, payload: bytes,
                        key: bytes | None = None) -> None:
        """The original bytes, unchanged, with the reason and origin in headers."""
        headers = [("heat-reason", reason.encode("utf-8", "replace")[:4096]),
                   ("heat-source-topic", source_topic.encode()),
                   ("heat-service", self.settings.service_name.encode())]
        if len(payload) > MAX_DEADLETTER_BYTES:
            # Kafka refuses records over its size limit: keep the head, say how long it was.
            headers.append(("heat-truncated-from", str(len(payload)).encode()))
            payload = payload[:MAX_DEADLETTER_BYTES]
        DEADLETTERED.labels(source_topic).inc()
        self._send(self.topics.deadletter, key, payload, headers)

    def _send(self, topic: str, key: bytes | None, value: bytes,
              headers: list[tuple[str, bytes]] | None = None) -> None:
        meters = self._meters.get(topic)
        if meters is None:
            meters = self._meters[topic] = _TopicMeters(topic, self)
        if self.accepted == self.acknowledged + self.failed:
            self._last_progress_s = time.monotonic()  # idle until now is not a stall
        try:
            future = self._producer.send(topic, key=key, value=value, headers=headers)
        except MessageSizeTooLargeError as error:
            # A bad record, not a broken broker: dead-letter (the head of) it and go on.
            if topic == self.topics.deadletter:
                log.error("dead letter too large, dropped", extra={"bytes": len(value)})
                return
            self.send_deadletter(topic, f"record too large: {error}", value, key)
            return
        self.accepted += 1
        future.add_callback(meters.on_ack)
        future.add_errback(meters.on_error)
        if self.accepted % LATENCY_SAMPLE_EVERY == 0:
            future.add_callback(meters.on_sampled_ack, time.perf_counter())

    def _acknowledged(self) -> None:
        # Called on the producer's single I/O thread: plain counters suffice.
        self.acknowledged += 1
        self._last_progress_s = time.monotonic()
        self._failing = False

    def _failed(self, topic: str, error: Exception) -> None:
        self.failed += 1
        self._failing = True
        self.last_error = f"{type(error).__name__}: {error}"
        log.error("record not acknowledged", extra={"topic": topic, "error": str(error)})

    # -- lifecycle ----------------------------------------------------------------------------

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        """Flush everything accepted, then close."""
        try:
            self._producer.flush(timeout=self.settings.kafka.producer.close_timeout_s)
        except KafkaError as error:
            log.error("flush on close failed", extra={"error": str(error)})
        self._producer.close(timeout=self.settings.kafka.producer.close_timeout_s)

    def healthy(self, stalled_after_s: float = 30.0) -> tuple[bool, dict]:
        """Health for ``/healthz``: the last send did not fail, and records waiting for
        the broker are being acknowledged (no acknowledgement for ``stalled_after_s``
        while records wait means the broker is unreachable)."""
        waiting = self.accepted - self.acknowledged - self.failed
        stalled = waiting > 0 and time.monotonic() - self._last_progress_s > stalled_after_s
        details = {"accepted": self.accepted, "acknowledged": self.acknowledged,
                   "failed": self.failed, "waiting": waiting, "last_error": self.last_error}
        return not (self._failing or stalled), details

    def __enter__(self) -> HeatProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
