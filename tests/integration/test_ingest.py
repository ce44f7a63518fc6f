"""Ingest against the real broker: row-for-row replay, SIGTERM and broker restarts lose
nothing, hostile input ends in the deadletter topic only."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from heatmap.schema import Account, Position, Price, decode
from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.stack import processes
from heatmap.topics import Topics, topic_specs
from support.topic_records import record_count
from support.waiting import wait_until

ROOT = Path(__file__).parents[2]
BARS = sorted((ROOT / "data" / "binance-5m").glob("*.csv"))
TRADES = ROOT / "data" / "binance-trades" / "XRPETH.csv"
HEAT = [sys.executable, "-m", "heatmap.cli.main"]


@pytest.fixture
def topics(stack) -> Topics:
    """The product topics under a prefix of this test only."""
    settings = TopicSettings(prefix=f"i{uuid.uuid4().hex[:8]}.")
    kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=stack.kafka_bootstrap),
                               topic_specs(settings))
    return Topics.from_settings(settings)


@pytest.fixture
def ingest_env(stack, topics: Topics) -> dict[str, str]:
    prefix = topics.prices.removesuffix("prices")
    return {**os.environ, "HEAT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "HEAT_TOPIC_PREFIX": prefix}


def consume_all(bootstrap: str, topic: str) -> list:
    """Every record of ``topic`` up to its current end offsets."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, "timed out reading the topic"
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def records_in(bootstrap: str, topic: str) -> int:
    return record_count(KafkaConnection(bootstrap_servers=bootstrap), topic)


def _rows(path: Path) -> int:
    return sum(1 for _ in path.open()) - 1


def test_replay_lands_row_for_row_keyed_and_partitioned(stack, topics, ingest_env) -> None:
    fixture = ROOT / "tests" / "data" / "replay"
    completed = subprocess.run(
        [*HEAT, "ingest", "replay", "--prices", *map(str, BARS), str(TRADES), "--positions",
         str(fixture / "positions.csv"), "--accounts", str(fixture / "accounts.csv")],
        env=ingest_env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    prices = consume_all(stack.kafka_bootstrap, topics.prices)
    assert len(prices) == sum(map(_rows, BARS)) + _rows(TRADES)
    per_symbol = Counter(record.key.decode() for record in prices)
    assert per_symbol == {path.stem: _rows(path) for path in [*BARS, TRADES]}
    partitions = len({record.partition for record in prices})
    for record in prices:
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 6
        assert decode(Price, record.value).symbol == record.key.decode()
    assert partitions > 1
    positions = consume_all(stack.kafka_bootstrap, topics.positions)
    assert len(positions) == _rows(fixture / "positions.csv")
    assert all(decode(Position, r.value).account == r.key.decode() for r in positions)
    accounts = consume_all(stack.kafka_bootstrap, topics.accounts)
    assert len(accounts) == _rows(fixture / "accounts.csv")
    assert all(decode(Account, r.value).account == r.key.decode() for r in accounts)
    assert consume_all(stack.kafka_bootstrap, topics.deadletter) == []


def _accepted(stderr: str) -> tuple[int, int]:
    summary = [json.loads(line) for line in stderr.splitlines()
               if line.startswith("{") and '"ingest finished"' in line][-1]
    return summary["accepted"], summary["acknowledged"]


def test_sigterm_mid_stream_loses_nothing_accepted(stack, topics, ingest_env) -> None:
    # 20 days of 5-minute bars at 50,000x: about 35 s if left alone.
    process = subprocess.Popen([*HEAT, "ingest", "replay", "--prices", *map(str, BARS),
                                "--speed", "50000"], env=ingest_env, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)
    wait_until(lambda: records_in(stack.kafka_bootstrap, topics.prices) >= 1_000,
               timeout_s=60)  # mid-stream
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-3000:]
    accepted, acknowledged = _accepted(stderr)
    assert 0 < accepted < sum(map(_rows, BARS))
    assert acknowledged == accepted
    assert len(consume_all(stack.kafka_bootstrap, topics.prices)) == accepted


def test_broker_restart_during_replay_loses_and_duplicates_nothing(
        local_stack, stack, topics, ingest_env) -> None:
    process = subprocess.Popen([*HEAT, "ingest", "replay", "--prices", *map(str, BARS),
                                "--speed", "100000"], env=ingest_env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    wait_until(lambda: records_in(stack.kafka_bootstrap, topics.prices) >= 1_000,
               timeout_s=60)  # mid-stream
    marker = str(local_stack.kafka_home / "server.properties")
    broker = processes.running_pid(local_stack.kafka_home / "kafka.pid", marker)
    processes.terminate(broker, marker, timeout_s=30)  # returns once the broker is gone
    local_stack.up()  # same ports, same data
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr[-3000:]
    accepted, acknowledged = _accepted(stderr)
    total = sum(map(_rows, BARS))
    assert accepted == acknowledged == total
    prices = consume_all(stack.kafka_bootstrap, topics.prices)
    identities = Counter((r.key, decode(Price, r.value).ts) for r in prices)
    assert len(prices) == total
    assert max(identities.values()) == 1  # no duplicates either


def _hostile_lines(rng: random.Random) -> list[bytes]:
    ts = '"2026-01-01T00:00:00Z"'
    makers = [
        lambda: b'{"account": "a1", "symbol": "BTCUSDT", "ts": ' + ts.encode() + b', "qty": ',
        lambda: b'{"account": "a1", "symbol": "BTCUSDT", "ts": ' + ts.encode()
        + b', "qty": NaN}',
        lambda: b'{"account": "a1", "symbol": "BTCUSDT", "ts": ' + ts.encode()
        + b', "qty": 1e999}',
        lambda: b'{"account": "a1", "ts": ' + ts.encode() + b', "equity": Infinity}',
        lambda: ('{"account": "' + "A" * rng.randint(200, 20000) + '", "symbol": "BTCUSDT",'
                 ' "ts": ' + ts + ', "qty": 1}').encode(),
        lambda: ('{"account": "a\u202e\u200d' + chr(rng.randint(0x1F600, 0x1F64F))
                 + '", "symbol": "BTCUSDT", "ts": ' + ts + ', "qty": 1}').encode(),
        # SQL in a name is only text (see the names test below); a NUL in it is not.
        lambda: ('{"account": "a1", "symbol": "x\'); drop table frames; --\\u0000", "ts": '
                 + ts + ', "qty": 1}').encode(),
        lambda: b'{"account": 42, "symbol": ["BTC"], "ts": ' + ts.encode()
        + b', "qty": "one"}',
        lambda: b'{"account": "a1", "symbol": "BTCUSDT", "ts": "yesterday", "qty": 1}',
        lambda: b'{"account": "", "ts": ' + ts.encode() + b', "equity": 5}',
        lambda: b'{"account": "a1", "ts": ' + ts.encode()
        + b', "equity": 5, "maintenance_rate": 7}',
        lambda: b"\x01" + bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))).replace(
            b"\n", b" "),
        lambda: b'[1, 2, 3]',
        lambda: b'{"account": "a1", "symbol": "BTCUSDT", "ts": ' + ts.encode()
        + b', "qty": 1, "conviction": 3}',
    ]
    return [rng.choice(makers)() for _ in range(1000)]


def test_hostile_records_end_in_deadletter_and_the_service_keeps_running(
        stack, topics, ingest_env, tmp_path: Path) -> None:
    rng = random.Random(1)
    hostile = _hostile_lines(rng)
    valid = [b'{"account": "a1", "symbol": "BTCUSDT", "ts": "2026-01-01T00:00:01Z", '
             b'"qty": 1.5}',
             b'{"account": "a1", "ts": "2026-01-01T00:00:01Z", "equity": 1000, "desk": "d1"}']
    lines = hostile[:500] + valid[:1] + hostile[500:] + valid[1:]
    completed = subprocess.run([*HEAT, "ingest", "positions", "--stdin"], env=ingest_env,
                               input=b"\n".join(lines) + b"\n", capture_output=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    dead = consume_all(stack.kafka_bootstrap, topics.deadletter)
    assert len(dead) == 1000
    assert sorted(r.value for r in dead) == sorted(hostile)  # the original bytes
    assert all(dict(r.headers)["heat-reason"] for r in dead)
    assert len(consume_all(stack.kafka_bootstrap, topics.positions)) == 1
    assert len(consume_all(stack.kafka_bootstrap, topics.accounts)) == 1

    # Hostile price rows through the file replay go the same way.
    prices = tmp_path / "BTCUSDT.csv"
    rows = ["2026-01-01T00:00:00Z,nan", "2026-01-01T00:00:01Z,-5", "2026-01-01T00:00:02Z,0",
            "2026-01-01T00:00:03Z,inf", "yesterday,5", "2026-01-01T00:00:04Z,abc",
            "2026-01-01T00:00:05Z,1e999", "2026-01-01T00:00:06Z,100"]
    prices.write_text("timestamp,close\n" + "\n".join(rows) + "\n")
    completed = subprocess.run([*HEAT, "ingest", "replay", "--prices", str(prices)],
                               env=ingest_env, capture_output=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(consume_all(stack.kafka_bootstrap, topics.deadletter)) == 1000 + 7
    assert len(consume_all(stack.kafka_bootstrap, topics.prices)) == 1


def test_small_ingest_benchmark_runs(stack) -> None:
    from benchmarks import ingest as ingest_bench

    result = ingest_bench.run(stack.kafka_bootstrap, "small")
    assert result.producer_records_per_s > 0 and result.raw_records_per_s > 0
    assert result.simulator_events_per_s > 0


def test_simulator_produces_well_formed_keyed_records(stack, topics, ingest_env) -> None:
    completed = subprocess.run(
        [*HEAT, "ingest", "simulate", "--duration", "120", "--rate", "0", "--seed", "5",
         "--start", "2026-03-02T00:00:00Z"],
        env=ingest_env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    prices = consume_all(stack.kafka_bootstrap, topics.prices)
    positions = consume_all(stack.kafka_bootstrap, topics.positions)
    accounts = consume_all(stack.kafka_bootstrap, topics.accounts)
    assert len(prices) > 1000 and positions and accounts
    assert all(decode(Price, r.value).symbol == r.key.decode() for r in prices)
    assert all(decode(Position, r.value).account == r.key.decode() for r in positions)
    desks = {decode(Account, r.value).desk for r in accounts}
    assert len(desks) == 2
    assert consume_all(stack.kafka_bootstrap, topics.deadletter) == []


def test_metrics_and_health_endpoints(stack, topics, ingest_env) -> None:
    import urllib.request

    from heatmap.stack.ports import free_port

    port = free_port()
    process = subprocess.Popen(
        [*HEAT, "ingest", "simulate", "--rate", "40", "--seed", "2"],
        env={**ingest_env, "HEAT_METRICS_PORT": str(port)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                            timeout=2) as response:
                    health = json.loads(response.read())
                if health["acknowledged"] > 0:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no healthy /healthz"
            time.sleep(0.5)
        assert health["status"] == "ok"
        # Accounts and positions come first; wait until prices have been acknowledged too.
        expected = f'heat_ingest_records_sent_total{{topic="{topics.prices}"}}'
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                        timeout=2) as response:
                metrics = response.read().decode()
            if expected in metrics:
                break
            assert time.monotonic() < deadline, metrics[-2000:]
            time.sleep(0.5)
        assert "heat_ingest_send_latency_seconds_bucket" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    accepted, acknowledged = _accepted(stderr)
    assert accepted == acknowledged > 0


def test_stdin_service_stops_on_sigterm_while_idle_and_keeps_what_it_read(
        stack, topics, ingest_env) -> None:
    process = subprocess.Popen([*HEAT, "ingest", "positions", "--stdin"], env=ingest_env,
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    big = b'{"account": "a1", "symbol": "BTCUSDT", "ts": "2026-01-01T00:00:00Z", "qty": 1, ' \
          b'"strategy": "' + b"s" * 2_000_000 + b'"}'
    lines = [b'{"account": "a1", "symbol": "BTCUSDT", "ts": "2026-01-01T00:00:00Z", "qty": 1}',
             b'{"account": "a1", "symbol": "BTCUSDT", "ts": "2026-01-01T00:00:00Z", '
             b'"strategy": "s\xff", "qty": 1}', big,
             b'{"account": "a1", "ts": "2026-01-01T00:00:00Z", "equity": 10}']
    process.stdin.write(b"\n".join(lines) + b"\n")
    process.stdin.flush()  # and keep the pipe open: an idle desk OMS
    wait_until(lambda: records_in(stack.kafka_bootstrap, topics.deadletter) == 2
               and records_in(stack.kafka_bootstrap, topics.accounts) == 1, timeout_s=60)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert len(consume_all(stack.kafka_bootstrap, topics.positions)) == 1
    assert len(consume_all(stack.kafka_bootstrap, topics.accounts)) == 1
    dead = consume_all(stack.kafka_bootstrap, topics.deadletter)
    reasons = sorted(dict(r.headers)["heat-reason"].decode()[:20] for r in dead)
    assert len(dead) == 2, reasons  # the invalid UTF-8 line and the oversized one


# Names as desks and exchanges really write them: any printable text of any script.
OBRIEN = "o'brien fund"
HOSTILE_DESK = 'desk "α"; DROP TABLE x; --'
GULF = "صندوق الخليج"


def test_stdin_names_of_any_script_land_verbatim(stack, topics, ingest_env) -> None:
    ts = "2026-01-01T00:00:00Z"
    positions = [
        {"account": OBRIEN, "symbol": "币安人生USDT", "ts": ts, "qty": 2.5,
         "desk": HOSTILE_DESK, "strategy": "50% $ \\ back", "source": "OMS «prod»"},
        {"account": OBRIEN, "symbol": "🚀USDT", "ts": ts, "qty": -1, "desk": HOSTILE_DESK},
        {"account": GULF, "symbol": "ΔELTA-Ω", "ts": ts, "qty": 3, "strategy": "x'); --"},
    ]
    accounts = [{"account": OBRIEN, "ts": ts, "equity": 1000, "desk": HOSTILE_DESK}]
    refused = {"account": "o'brien\u200bfund", "symbol": "币安人生USDT", "ts": ts, "qty": 1}
    lines = [json.dumps(m, ensure_ascii=False).encode() for m in [*positions, *accounts]]
    lines.append(json.dumps(refused, ensure_ascii=False).encode())  # a zero-width space
    completed = subprocess.run([*HEAT, "ingest", "positions", "--stdin"], env=ingest_env,
                               input=b"\n".join(lines) + b"\n", capture_output=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]

    landed = consume_all(stack.kafka_bootstrap, topics.positions)
    assert len(landed) == len(positions)
    for record in landed:
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 6
    by_symbol = {decode(Position, r.value).symbol: r for r in landed}
    for sent in positions:
        record = by_symbol[sent["symbol"]]
        assert record.key == sent["account"].encode("utf-8")
        decoded = decode(Position, record.value)
        for field, value in sent.items():
            if field != "ts":
                assert getattr(decoded, field) == value, field
    [equity] = consume_all(stack.kafka_bootstrap, topics.accounts)
    assert equity.key == OBRIEN.encode("utf-8")
    assert decode(Account, equity.value).desk == HOSTILE_DESK
    [dead] = consume_all(stack.kafka_bootstrap, topics.deadletter)
    assert dead.value == lines[-1]
    assert b"account must be" in dict(dead.headers)["heat-reason"]
