"""Ingest benchmark: price records/s through the product's producer (validated Structs,
encoded, keyed, counted) against a raw ``KafkaProducer.send`` of pre-encoded bytes with
the same producer settings, in the same run on the same broker; and how fast the market
simulator generates events, against that producer (it must never be the bottleneck)."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from kafka import KafkaProducer

from benchmarks.feeds import bench_connection
from heatmap.ingest.producer import HeatProducer
from heatmap.ingest.settings import IngestSettings
from heatmap.schema import Price, encode
from heatmap.settings.kafka import KafkaConnection, KafkaSettings, TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.topics import Topics, topic_specs

SIZES = {"full": 200_000, "small": 5_000}
# Simulated seconds of market generated per size.
SIMULATED_S = {"full": 600.0, "small": 30.0}


@dataclass
class IngestBenchResult:
    size: str
    records: int
    producer_records_per_s: float = 0.0
    raw_records_per_s: float = 0.0
    producer_vs_raw: float = 0.0
    simulator_events_per_s: float = 0.0
    simulator_vs_producer: float = 0.0


def _prices(count: int) -> list[Price]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    symbols = [f"S{i:03d}USDT" for i in range(200)]
    return [Price(symbol=symbols[n % 200], ts=start + timedelta(milliseconds=n),
                  price=100.0 + (n % 1000) / 100, source="bench", bid=99.9, ask=100.1)
            for n in range(count)]


def run(bootstrap: str, size_name: str = "full") -> IngestBenchResult:
    count = SIZES[size_name]
    result = IngestBenchResult(size=size_name, records=count)
    topic_settings = TopicSettings(prefix=f"bench-{uuid.uuid4().hex[:8]}.")
    kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=bootstrap),
                               topic_specs(topic_settings))
    topics = Topics.from_settings(topic_settings)
    kafka = KafkaSettings(bootstrap=bootstrap, topics=topic_settings)
    settings = IngestSettings(kafka=kafka, service_name="bench")
    options = kafka.producer
    prices = _prices(count)
    try:
        # Baseline first, so the broker is equally warm for both: raw bytes, same settings.
        encoded = [(p.symbol.encode(), encode(p)) for p in prices]
        raw = KafkaProducer(**bench_connection(bootstrap).kafka_python(), acks=options.client_acks,
                            enable_idempotence=options.idempotence,
                            compression_type=options.compression,
                            linger_ms=options.linger_ms, batch_size=options.batch_size)
        started = time.perf_counter()
        for key, value in encoded:
            raw.send(topics.heat_frames, key=key, value=value)
        raw.flush()
        result.raw_records_per_s = count / (time.perf_counter() - started)
        raw.close()

        producer = HeatProducer(settings, topics)
        started = time.perf_counter()
        for price in prices:
            producer.send_price(price)
        producer.flush()
        result.producer_records_per_s = count / (time.perf_counter() - started)
        producer.close()
        result.producer_vs_raw = result.producer_records_per_s / result.raw_records_per_s
        result.simulator_events_per_s = _simulator_events_per_s(SIMULATED_S[size_name])
        result.simulator_vs_producer = (result.simulator_events_per_s
                                        / result.producer_records_per_s)
    finally:
        admin = kafka_broker.admin_client(KafkaConnection(bootstrap_servers=bootstrap))
        try:
            admin.delete_topics([spec.name for spec in topic_specs(topic_settings)])
        finally:
            admin.close()
    return result


def _simulator_events_per_s(simulated_s: float) -> float:
    from heatmap.ingest.simulator import MarketSimulator

    started = time.perf_counter()
    count = sum(1 for _ in MarketSimulator().events(simulated_s))
    return count / (time.perf_counter() - started)


def as_dict(result: IngestBenchResult) -> dict[str, object]:
    return asdict(result)
