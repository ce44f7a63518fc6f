"""``heat sink`` against a real broker and database: committed records only, rows identical
to a direct write, no loss and no duplicate across a kill -9, dead letters stored, prices
thinned."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from psycopg import sql

from heatmap.db import migrations, tables
from heatmap.db.writer import HeatBatch, HeatWriter
from heatmap.schema import (
    Account,
    Alert,
    Correlation,
    Position,
    Price,
    encode,
    ms_to_datetime,
    ms_to_rfc3339,
)
from heatmap.settings.database import WRITER_ROLE, DatabaseSettings
from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.sink.batching import _correlation
from heatmap.sink.price_sampling import PriceSampler
from heatmap.stack import kafka as kafka_broker
from heatmap.stack.services import HeatService
from heatmap.topics import Topics, topic_specs
from support.heat_services import alive, service_env
from support.sample_frames import BAR_MS, engine_frames
from support.waiting import wait_until

# Recent event times: TimescaleDB's retention jobs would drop rows from 1970.
START_MS = (int(time.time() * 1000) // BAR_MS - 600) * BAR_MS
CONTENT_TABLES = [t for t in tables.ALL_TABLES if t is not tables.DEADLETTERS]

Message = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]


@pytest.fixture
def topics(stack) -> Topics:
    """The product topics under a prefix of this test only."""
    settings = TopicSettings(prefix=f"s{uuid.uuid4().hex[:8]}.")
    kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=stack.kafka_bootstrap),
                               topic_specs(settings))
    return Topics.from_settings(settings)


def produce(bootstrap: str, transactions: list[tuple[bool, list[Message]]],
            pause_s: float = 0.0) -> None:
    """Each list of records in one transaction, committed (True) or aborted (False);
    ``pause_s`` paces the transactions (a live stream rather than a backlog)."""
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True,
                                    transactional_id=f"sink-test-{uuid.uuid4().hex[:8]}")
        await producer.start()
        try:
            for commit, messages in transactions:
                await producer.begin_transaction()
                for topic, key, value, headers in messages:
                    await producer.send(topic, value, key=key, headers=headers)
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
                await asyncio.sleep(pause_s)
        finally:
            await producer.stop()

    asyncio.run(run())


@pytest.fixture
def start_sink(stack, topics: Topics, tmp_path: Path) -> Iterator[Any]:
    started: list[HeatService] = []

    def start(settings: Any, **extra: str) -> HeatService:
        env = service_env(stack.kafka_bootstrap, topics.prices.removesuffix("prices"),
                          HEAT_DATABASE_URL=settings.admin_url(),
                          HEAT_WRITER_PASSWORD=settings.role_password(WRITER_ROLE) or "",
                          HEAT_SINK_WEB_PORT="0", HEAT_BAR_INTERVAL="1m", **extra)
        sink = HeatService(["sink"], env, tmp_path / f"sink-{len(started)}.log")
        started.append(sink)
        return sink

    yield start
    for sink in started:
        if sink.process.poll() is None:
            sink.kill()


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier("heat", table))).fetchone()
    assert row is not None
    return int(row[0])


def table_rows(url: str, table: tables.Table) -> list[tuple]:
    """Every row of ``table``, ordered by its natural key."""
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, table.column_names)),
        sql.Identifier("heat", table.name),
        sql.SQL(", ").join(map(sql.Identifier, table.key)))
    with psycopg.connect(url) as connection:
        return connection.execute(query).fetchall()


@pytest.fixture
def reference(database_server, migrated) -> Iterator[DatabaseSettings]:
    """A second migrated database on the same server, for writing batches directly
    (roles are per server: the writer keeps the password the sink logs in with)."""
    name = f"heat_ref_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_server.admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_server.admin_url.rsplit("/", 1)[0] + f"/{name}"
    password = migrated.role_password(WRITER_ROLE)
    settings = DatabaseSettings(database_url=url, writer_password=password, writer_url=None,
                                reader_url=None)
    try:
        migrations.migrate(settings)
        yield settings
    finally:
        with psycopg.connect(database_server.admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                sql.Identifier(name)))


def direct_rows(settings: DatabaseSettings, batch: HeatBatch) -> dict[str, list[tuple]]:
    """The rows of every content table after writing ``batch`` directly."""
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        writer.write(batch)
    return all_rows(settings.admin_url())


def all_rows(url: str) -> dict[str, list[tuple]]:
    return {t.name: table_rows(url, t) for t in CONTENT_TABLES}


def sample_content(topics: Topics, account: str = "acct-1",
                   n_bars: int = 30) -> tuple[HeatBatch, list[Message]]:
    """Frames, alerts, correlations and inputs of one small book, and their records."""
    frames = engine_frames(n_bars=n_bars, account=account, start_ms=START_MS)
    moment = ms_to_datetime(START_MS)
    alerts = [Alert(ts=frames[-1].ts, account=account, desk=None, timeframe="1h",
                    kind="stale_heat", subject=account, severity="warning", state=state,
                    value=None, threshold=1.0, message=f"{state} heat")
              for state in ("firing", "resolved")]
    correlations = [Correlation(ts=ms_to_rfc3339(START_MS + i * BAR_MS), timeframe="1h",
                                params_hash=account, symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"],
                                rho=[0.5, 0.25 + i / 100, -0.125]) for i in range(5)]
    prices = [Price(symbol=symbol, ts=ms_to_datetime(START_MS + bar * BAR_MS),
                    price=100.0 + bar, source=account)
              for bar in range(n_bars) for symbol in ("BTCUSDT", "ETHUSDT")]
    positions = [Position(account=account, symbol="BTCUSDT", ts=moment, qty=2.0)]
    accounts = [Account(account=account, ts=moment, equity=1000.0, desk="desk-1")]
    batch = HeatBatch(frames=frames, alerts=alerts,
                      correlations=[_correlation(encode(c)) for c in correlations],
                      prices=prices, positions=positions, accounts=accounts)
    key = account.encode()
    messages: list[Message] = [
        *((topics.heat_frames, key, encode(f), []) for f in frames),
        *((topics.alerts, key, encode(a), []) for a in alerts),
        *((topics.correlations, b"1h", encode(c), []) for c in correlations),
        *((topics.prices, p.symbol.encode(), encode(p), []) for p in prices),
        *((topics.positions, key, encode(p), []) for p in positions),
        *((topics.accounts, key, encode(a), []) for a in accounts)]
    return batch, messages


def deadletter_records(topics: Topics) -> list[Message]:
    """A record ingest dead-lettered, and a price that breaks its contract."""
    return [(topics.deadletter, b"x", b"not,a,price", [
                ("heat-reason", b"bad row"), ("heat-source-topic", topics.prices.encode()),
                ("heat-service", b"ingest-replay")]),
            (topics.prices, b"BTCUSDT", b'{"symbol": "BTCUSDT"}', [])]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_committed_records_are_stored_as_a_direct_write_would(
        stack, topics, migrated, reference, start_sink) -> None:
    batch, messages = sample_content(topics)
    _, aborted = sample_content(topics, account="aborted", n_bars=5)
    half = len(messages) // 2
    produce(stack.kafka_bootstrap, [(True, messages[:half]), (False, aborted),
                                    (True, messages[half:] + deadletter_records(topics))])
    expected = direct_rows(reference, batch)
    sink = start_sink(migrated, HEAT_SINK_PRICE_INTERVAL="0")
    url = migrated.admin_url()
    wait_until(lambda: alive(sink) and all_rows(url) == expected, 120,
               message="the sink did not store what a direct write stores")
    wait_until(lambda: count(url, "deadletters") == 1, 30)
    letters = {(row[1], row[4]) for row in table_rows(url, tables.DEADLETTERS)}
    # The bad price is left to the processor's dead letters (one row per bad record).
    assert letters == {(topics.deadletter, f"{topics.prices} (ingest-replay): bad row")}

    status, body = get(f"{sink.url}/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = get(f"{sink.url}/metrics")
    assert status == 200
    assert f'heat_sink_rows_total{{table="frames"}} {len(batch.frames)}.0' in body
    assert f'heat_sink_deadletters_total{{topic="{topics.deadletter}"}} 1.0' in body
    assert f'heat_sink_skipped_inputs_total{{topic="{topics.prices}"}} 1.0' in body
    assert sink.stop() == 0, sink.log_text()[-3000:]
    assert all_rows(url) == expected  # nothing aborted, nothing twice


def test_kill_9_mid_stream_and_restart_lose_and_duplicate_nothing(
        stack, topics, migrated, reference, start_sink) -> None:
    contents = [sample_content(topics, account=f"acct-{n}", n_bars=40) for n in range(6)]
    everything = HeatBatch()
    for batch, _ in contents:
        for name in ("frames", "alerts", "correlations", "prices", "positions", "accounts"):
            getattr(everything, name).extend(getattr(batch, name))
    messages = [m for _, batch_messages in contents for m in batch_messages]
    transactions = [(True, messages[i:i + 10]) for i in range(0, len(messages), 10)]
    expected = direct_rows(reference, everything)
    url = migrated.admin_url()

    sink = start_sink(migrated, HEAT_SINK_PRICE_INTERVAL="0",
                      HEAT_SINK_BATCH_MAX_RECORDS="10")
    produce(stack.kafka_bootstrap, transactions[:20])
    wait_until(lambda: alive(sink) and count(url, "frames") > 0, 120)

    # The rest as a live stream, so the kill lands mid-stream.
    producer = threading.Thread(target=produce, args=(stack.kafka_bootstrap,
                                                      transactions[20:], 0.05))
    producer.start()
    try:
        wait_until(lambda: count(url, "prices") >= 60, 60)
        sink.kill()
        stored_at_kill = count(url, "frames") + count(url, "prices")
    finally:
        producer.join(timeout=300)
    assert stored_at_kill < len(everything.frames) + len(everything.prices)

    restarted = start_sink(migrated, HEAT_SINK_PRICE_INTERVAL="0",
                           HEAT_SINK_BATCH_MAX_RECORDS="10")
    wait_until(lambda: alive(restarted) and all_rows(url) == expected, 180,
               message="after a kill -9 and a restart the rows differ from a direct write")
    assert restarted.stop() == 0, restarted.log_text()[-3000:]


def test_prices_keep_bar_closes_and_at_most_one_tick_per_interval(
        stack, topics, migrated, start_sink) -> None:
    # 10 ticks a second for 150 s, across two bar boundaries.
    first_ms = START_MS + 30_000
    ticks = [Price(symbol="BTCUSDT", ts=ms_to_datetime(first_ms + 100 * i),
                   price=100.0 + i / 1000, source="feed") for i in range(1500)]
    produce(stack.kafka_bootstrap, [(True, [(topics.prices, b"BTCUSDT", encode(p), [])
                                            for p in ticks])])
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    kept = [p for tick in ticks for p in sampler.offer(tick)]
    held = sampler.flush()
    sink = start_sink(migrated, HEAT_SINK_PRICE_INTERVAL="1")
    url = migrated.admin_url()
    wait_until(lambda: alive(sink) and count(url, "prices") == len(kept), 120)
    assert sink.stop() == 0, sink.log_text()[-3000:]
    stored_ms = sorted(round(row[1].timestamp() * 1000)
                       for row in table_rows(url, tables.PRICES))
    expected_ms = sorted(round(p.ts.timestamp() * 1000) for p in kept + held)
    assert stored_ms == expected_ms
    assert len(stored_ms) <= 150 + 2 * 3 + 1
    for boundary_ms in (START_MS + BAR_MS, START_MS + 2 * BAR_MS):
        assert boundary_ms in stored_ms  # a tick on the boundary is the bar's close
        assert boundary_ms + 100 in stored_ms  # and the next bar's opening tick
