"""The bot API of real ``heat process`` workers on a real broker: recorded inputs in,
``/v1/frames/latest`` equals the latest frame on the frames topic, what-if answers (and
refuses bad input), the standby redirects to the active worker (the client sends its
token again there), a stream subscriber gets the frame a new position makes; no token
or a wrong one is refused, and no token ever reaches a worker's log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from heatmap.schema import Position, encode, ms_to_datetime
from heatmap.stack.services import HEAT, HeatService
from support.heat_pipeline import Pipeline, ingest, pipeline, recorded_inputs
from support.waiting import wait_until

pytestmark = pytest.mark.integration

# The bars of the first day and the first positions (acct-a1 from 02:17, acct-b1 from 03:00).
END = "2018-01-11T04"
ACCOUNT = "acct-a1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: object, **__: object) -> None:
        return None


def call(url: str, body: dict[str, Any] | bytes | None = None, token: str | None = None
         ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, JSON body, headers) of a GET (or a POST of ``body``) with the bearer
    ``token``, redirects not followed."""
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data,  # noqa: S310 (http only)
                                     headers=headers)
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def latest_on_topic(bootstrap: str, topic: str, account: str, timeframe: str
                    ) -> dict[str, Any] | None:
    """The last committed frame of ``account`` and ``timeframe`` on the frames topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found = None
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    frame = json.loads(record.value)
                    if frame["account"] == account and frame["timeframe"] == timeframe:
                        found = frame
        return found
    finally:
        consumer.close()


@pytest.fixture
def running(stack, tmp_path: Path) -> Iterator[Pipeline]:
    yield from pipeline(stack.kafka_bootstrap, None, tmp_path)


def roles(workers: list[HeatService]) -> tuple[HeatService, HeatService] | None:
    """(active, standby) once one runs the engine live and the other points at it."""
    health = [worker.health() for worker in workers]
    if any(not h for h in health):
        return None
    active = [w for w, h in zip(workers, health, strict=True)
              if h["role"] == "active" and h["phase"] == "live"]
    standby = [w for w, h in zip(workers, health, strict=True) if h["role"] == "standby"]
    if len(active) != 1 or len(standby) != 1:
        return None
    if health[workers.index(standby[0])]["active_url"] != active[0].url:
        return None
    return active[0], standby[0]


def test_bot_api_on_live_workers(running: Pipeline, tmp_path: Path) -> None:
    inputs = recorded_inputs(tmp_path / "inputs", END)
    producer = ingest(inputs, running.topics, running.bootstrap, tmp_path / "ingest.log")
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]
    workers = [running.process(), running.process()]
    active, standby = wait_until(lambda: roles(workers), timeout_s=120, interval_s=0.3,
                                 message="no active worker with a standby pointing at it")
    base = active.url
    query = f"/v1/frames/latest?account={ACCOUNT}&timeframe=1h"
    token = running.tokens["all"]

    def same_as_topic() -> dict[str, Any] | None:
        status, served, _ = call(base + query, token=token)
        on_topic = latest_on_topic(running.bootstrap, running.topics.heat_frames, ACCOUNT,
                                   "1h")
        return served if status == 200 and served == on_topic else None

    frame = wait_until(same_as_topic, timeout_s=120, interval_s=0.5,
                       message="/v1/frames/latest never equalled the frames topic")
    assert frame["positions"] and frame["ts"] < END

    status, books, _ = call(base + "/v1/books", token=token)
    assert status == 200 and ACCOUNT in {book["account"] for book in books["accounts"]}
    assert books["timeframes"] == ["1h", "4h", "1d"]
    status, books, _ = call(base + "/v1/books", token=running.tokens["elsewhere"])
    assert status == 200 and books["accounts"] == [] and books["desks"] == []
    for wrong in (None, "heat_wrong"):
        status, refused, headers = call(base + "/v1/books", token=wrong)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")

    status, answer, _ = call(base + "/v1/whatif", {
        "account": ACCOUNT, "timeframe": "1h", "orders": [{"symbol": "XMRBTC", "qty": 10}]},
        token=token)
    assert status == 200, answer
    assert answer["after"]["positions"] != answer["before"]["positions"]
    assert any(p["symbol"] == "XMRBTC" for p in answer["after"]["positions"])
    [limit] = answer["limits"]
    assert limit["symbol"] == "XMRBTC" and limit["line"] == 0.25
    assert limit["limited_by"] in {"line", "order_bound"} and limit["max_qty"] >= 0.0
    if limit["limited_by"] == "line":
        assert limit["timeframe"] in {"1h", "4h", "1d"} and limit["cluster"]
    status, refused, _ = call(base + "/v1/whatif", {"account": ACCOUNT,
                                                     "orders": [{"symbol": "NOPE", "qty": 1}]},
                              token=token)
    assert status == 404 and "unknown symbol" in refused["error"]
    status, refused, _ = call(base + "/v1/whatif", b"{not json", token=token)
    assert status == 400 and "malformed" in refused["error"]
    status, refused, _ = call(base + "/v1/whatif", b"{}", token=running.tokens["reader"])
    assert status == 403 and "whatif" in refused["error"]

    status, _, headers = call(standby.url + query, token=token)
    assert status == 307 and headers["Location"] == base + query
    # `heat whatif` follows the standby's redirect, the token sent again.
    asked = subprocess.run([*HEAT, "whatif", "--account", ACCOUNT, "--symbol", "XMRBTC",
                            "--qty", "1", "--url", standby.url, "--json"],
                           env={**os.environ, "HEAT_API_TOKEN": token,
                                "PYTHONPATH": os.pathsep.join(sys.path)}, capture_output=True,
                           text=True, timeout=120)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["book"] == ACCOUNT

    stream = urllib.request.urlopen(urllib.request.Request(  # noqa: S310 (http only)
        f"{base}/v1/stream?account={ACCOUNT}&timeframe=1h",
        headers={"Authorization": f"Bearer {token}"}), timeout=60)
    try:
        first = next_event(stream)
        assert first == frame
        position = Position(account=ACCOUNT, symbol="ETHBTC", qty=1.0,
                            ts=ms_to_datetime(inputs.last_input_ms + 60_000))
        sender = KafkaProducer(bootstrap_servers=running.bootstrap)
        sender.send(running.topics.positions, key=ACCOUNT.encode(), value=encode(position))
        sender.close()
        pushed = next_event(stream)
        assert pushed["ts"] > first["ts"]
    finally:
        stream.close()
    for worker in workers:
        log = worker.log_text()
        assert all(secret not in log for secret in running.tokens.tokens.values())


def next_event(stream: Any) -> dict[str, Any]:
    """The data of the next ``frame`` event (heartbeat comments skipped)."""
    event, data = "", ""
    while True:
        line = stream.readline().decode()
        assert line, "the stream ended"
        if line == "\n" and event == "frame":
            return dict(json.loads(data))
        if line.startswith("event: "):
            event = line.removeprefix("event: ").strip()
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
