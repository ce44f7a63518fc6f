"""A thousand stream connections with one token against a real ``heat process`` while
ingest runs: the token's first streams are accepted and keep receiving frames, every one
past the per-token limit is refused with 429 quickly, and the engine's input lag does not
move. A small number of connections at a time keeps the test itself cheap."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from support.api_tokens import api_tokens
from support.heat_pipeline import Pipeline, ingest, pipeline, recorded_inputs
from support.waiting import wait_until

pytestmark = pytest.mark.integration

WARM_END = "2018-01-11T04"  # fed before the processor starts: warm-up and the first books
LOAD_END = "2018-01-11T12"  # fed while the streams are opened: 8 hours of bars
LOAD_SPEED = 1200           # 8 hours of event time in 24 s
DESK = "beta"
STREAMS_PER_TOKEN = 4
CONNECTIONS = 1000
AT_ONCE = 8                 # connections in flight (a token keeps 16 unused tickets)
REFUSED_WITHIN_S = 2.0      # the slowest 429 may take this long on a loaded machine
LAG_SLACK_RECORDS = 50      # about two seconds of this ingest's records
SAMPLE_EVERY_S = 0.2


@dataclass
class Lag:
    """The engine's input delay (s) and lag (records), sampled from its /health and
    /metrics."""

    delay_s: list[float] = field(default_factory=list)
    records: list[float] = field(default_factory=list)
    events: list[float] = field(default_factory=list)  # input events applied, in total


@dataclass
class Stream:
    """An accepted stream and the frame events it received (arrival times, monotonic)."""

    response: aiohttp.ClientResponse
    frames_s: list[float] = field(default_factory=list)


async def sample_lag(session: aiohttp.ClientSession, base_url: str, lag: Lag) -> None:
    async with session.get(f"{base_url}/health") as response:
        lag.delay_s.append(float((await response.json())["input_delay_s"]))
    async with session.get(f"{base_url}/metrics") as response:
        text = await response.text()
    samples = [line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")]
    lag.records.append(sum(float(value) for name, value in samples
                           if name.startswith("heat_process_input_lag_records{")))
    lag.events.append(sum(float(value) for name, value in samples
                          if name.startswith("heat_process_events_total")))


async def sample_until(session: aiohttp.ClientSession, base_url: str, lag: Lag,
                       done: asyncio.Event) -> None:
    while not done.is_set():
        await sample_lag(session, base_url, lag)
        # Not a fixed wait on a condition: the sampling period of a measurement.
        await asyncio.sleep(SAMPLE_EVERY_S)


async def open_stream(session: aiohttp.ClientSession, base_url: str, token: str
                      ) -> tuple[int, float, aiohttp.ClientResponse]:
    """(status, seconds to the answer's head, the response): a ticket bought with the
    token, then ``/v1/stream`` opened with it, as a browser does."""
    started_s = time.monotonic()
    async with session.post(f"{base_url}/v1/stream/ticket",
                            headers={"Authorization": f"Bearer {token}"}) as bought:
        assert bought.status == 200, await bought.text()
        ticket = (await bought.json())["ticket"]
    response = await session.get(f"{base_url}/v1/stream", params={
        "desk": DESK, "timeframe": "1h", "ticket": ticket})
    return response.status, time.monotonic() - started_s, response


async def read_frames(stream: Stream) -> None:
    async for line in stream.response.content:
        if line.startswith(b"event: frame"):
            stream.frames_s.append(time.monotonic())


async def flood(base_url: str, token: str) -> dict[str, Any]:
    """Open the connections and sample the lag before and during; what was seen."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
    connector = aiohttp.TCPConnector(limit=AT_ONCE + STREAMS_PER_TOKEN + 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        before = Lag()
        for _ in range(15):  # 3 s of ingest with no stream open
            await sample_lag(session, base_url, before)
            await asyncio.sleep(SAMPLE_EVERY_S)

        accepted: list[Stream] = []
        for _ in range(STREAMS_PER_TOKEN):
            status, _, response = await open_stream(session, base_url, token)
            assert status == 200, await response.text()
            accepted.append(Stream(response))
        readers = [asyncio.create_task(read_frames(stream)) for stream in accepted]

        during, done = Lag(), asyncio.Event()
        sampler = asyncio.create_task(sample_until(session, base_url, during, done))
        refusals: list[tuple[int, float]] = []
        pending = iter(range(CONNECTIONS - STREAMS_PER_TOKEN))

        async def refused_ones() -> None:
            for _ in pending:
                status, took_s, response = await open_stream(session, base_url, token)
                response.release()
                refusals.append((status, took_s))

        flood_started_s = time.monotonic()
        await asyncio.gather(*(refused_ones() for _ in range(AT_ONCE)))
        flood_ended_s = time.monotonic()
        done.set()
        await sampler

        # Every accepted stream receives a frame made after the flood.
        deadline_s = flood_ended_s + 30
        while (any(not s.frames_s or s.frames_s[-1] < flood_ended_s for s in accepted)
               and time.monotonic() < deadline_s):
            await asyncio.sleep(SAMPLE_EVERY_S)
        for reader in readers:
            reader.cancel()
        for stream in accepted:
            stream.response.close()
        return {"before": before, "during": during, "refusals": refusals,
                "accepted": accepted, "flood_s": flood_ended_s - flood_started_s,
                "flood_started_s": flood_started_s, "flood_ended_s": flood_ended_s}


@pytest.fixture
def running(stack, tmp_path: Path):
    yield from pipeline(stack.kafka_bootstrap, None, tmp_path)


def test_a_thousand_streams_of_one_token_leave_the_engine_alone(running: Pipeline,
                                                                tmp_path: Path) -> None:
    running._tokens = api_tokens(tmp_path / "api-tokens", {"bot": ([DESK], ("read",))})
    warm_inputs = recorded_inputs(tmp_path / "warm", WARM_END)
    warm = ingest(warm_inputs, running.topics, running.bootstrap, tmp_path / "ingest-warm.log")
    assert warm.process.wait(timeout=300) == 0, warm.log_text()[-3000:]
    processor = running.process(HEAT_API_STREAMS_PER_TOKEN=str(STREAMS_PER_TOKEN))
    wait_until(lambda: processor.health().get("phase") == "live"
               and processor.health().get("input_delay_s") == 0.0, timeout_s=120,
               message="the processor did not go live")
    # Every row of the warm feed's files is one input record.
    warm_records = sum(len(path.read_text().splitlines()) - 1 for path in (
        *warm_inputs.prices, warm_inputs.positions, warm_inputs.accounts))
    load = ingest(recorded_inputs(tmp_path / "load", LOAD_END, start=WARM_END),
                  running.topics, running.bootstrap, tmp_path / "ingest-load.log",
                  speed=LOAD_SPEED)
    try:
        # The flood starts once the engine applies the paced input, not when the ingest
        # process merely started.
        wait_until(lambda: processor.metrics()["heat_process_events_total"] > warm_records,
                   timeout_s=60, interval_s=0.1, message="the paced ingest never arrived")
        seen = asyncio.run(asyncio.wait_for(flood(processor.url, running.tokens["bot"]),
                                            timeout=90))
        # The flood must have happened while ingest ran, or the lag says nothing.
        assert load.process.poll() is None, "the ingest ended before the flood did"
        # The engine kept applying the paced input across the flood (a flood shorter
        # than the ingest's pace may see no record arrive while it lasts).
        flood_start_events = seen["during"].events[0]
        wait_until(lambda: processor.metrics()["heat_process_events_total"]
                   > flood_start_events, timeout_s=60, interval_s=0.1,
                   message="the engine applied no input after the flood began")
        applied = processor.metrics()["heat_process_events_total"] - flood_start_events
    finally:
        if load.process.poll() is None:
            load.kill()

    assert "engine stopped" not in processor.log_text(), processor.log_text()[-3000:]
    refusals, before, during = seen["refusals"], seen["before"], seen["during"]
    assert len(refusals) == CONNECTIONS - STREAMS_PER_TOKEN
    assert {status for status, _ in refusals} == {429}
    slowest_s = max(took_s for _, took_s in refusals)
    assert slowest_s < REFUSED_WITHIN_S, f"the slowest 429 took {slowest_s:.2f} s"
    assert all(s.frames_s and s.frames_s[-1] > seen["flood_ended_s"] for s in seen["accepted"]), \
        "an accepted stream received no frame after the flood"
    assert max(during.delay_s) <= max(max(before.delay_s), 1.0), (before, during)
    assert max(during.records) <= max(before.records) + LAG_SLACK_RECORDS, (before, during)
    print(f"{STREAMS_PER_TOKEN} accepted, {len(refusals)} refused with 429 in "
          f"{seen['flood_s']:.1f} s (slowest {slowest_s * 1000:.0f} ms); input delay "
          f"max {max(before.delay_s):.3f} s before, {max(during.delay_s):.3f} s during; "
          f"input lag max {max(before.records):.0f} records before, "
          f"{max(during.records):.0f} during; {applied:.0f} input events applied since the "
          f"flood began; "
          f"frames per accepted stream "
          f"{[len(s.frames_s) for s in seen['accepted']]}")
