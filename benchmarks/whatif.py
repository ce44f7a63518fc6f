"""``heat-bench whatif``: ``POST /v1/whatif`` over HTTP against a live ``heat process``,
and the engine's bare frame computation (``HeatEngine.frames_for``) in the same run.

The processor runs the pipeline benchmark's desk (200 symbols, 100 accounts x 20
positions, 3 timeframes, history past warm-up) and is fed live ticks meanwhile; a
keep-alive aiohttp client sends what-ifs of one account (one order each) from
``concurrency`` tasks, with a bearer token of its own (the processor's what-if rate limit
raised out of the way: the benchmark measures the processor, not the limit). The
facade's per-step copy is timed in process on the same desk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import aiohttp
import numpy as np

from benchmarks.feeds import LivePlan, LiveProducer
from benchmarks.load import LatencySummary, LoadShape, PriceWalk, make_books
from benchmarks.pipeline.common import (
    BAR,
    TIMEFRAMES,
    Bench,
    counter,
    live,
    produce_history_to_now,
    running,
)
from heatmap.engine.alerts import AlertMonitor
from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams, parse_duration_s
from heatmap.schema import WhatIfOrder, WhatIfRequest, encode
from heatmap.stack.services import ServiceError
from heatmap.web.live import LiveView
from heatmap.web.tokens import create_token

BAR_MS = parse_duration_s(BAR) * 1000


@dataclass
class WhatIfFigures:
    shape: str
    account: str
    timeframe: str
    concurrency: int
    live_ticks_per_s: float
    duration_s: float
    requests: int = 0
    errors: int = 0
    requests_per_s: float = 0.0
    latency: LatencySummary | None = None
    # Baseline: frames_for (all timeframes of the account) per second, in this process.
    frames_for_per_s: float = 0.0
    whatif_vs_frames_for: float = 0.0
    # The facade's copy after an engine step (microseconds, median of repeats).
    step_copy_prices_us: float = 0.0
    step_copy_book_us: float = 0.0
    step_copy_bar_us: float = 0.0
    input_lag_max_records: float = 0.0
    notes: list[str] = field(default_factory=list)


def _engine_with_desk(shape: LoadShape, bars: int) -> tuple[HeatEngine, int]:
    """The benchmark desk in an engine of this process, warm (``bars`` bar closes)."""
    timeframes = {name: parse_duration_s(name) for name in TIMEFRAMES.split(",")}
    engine = HeatEngine(EngineParams(bar_interval_s=BAR_MS // 1000, timeframes=timeframes))
    walk = PriceWalk(shape.symbol_names(), shape.seed)
    start_ms = 1_700_000_000_000
    books = make_books(shape, walk.prices(), start_ms)
    for account in books.accounts:
        engine.on_account(account.account, start_ms, account.equity, account.desk)
    for position in books.positions(start_ms):
        engine.on_position(position.account, position.symbol, start_ms, position.qty)
    ts_ms = start_ms
    for bar in range(bars):
        for index, (symbol, price) in enumerate(walk.ticks(shape.symbols, scale=10.0)):
            ts_ms = start_ms + bar * BAR_MS + 1 + index
            engine.on_price(symbol, ts_ms, price)
    engine.advance_to(ts_ms + 1)
    return engine, ts_ms + 1


def _rate(call: Callable[[], object], seconds: float) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        done += 1
    return done / (time.perf_counter() - started)


def _median_us(call: Callable[[], object], repeats: int = 200) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e6)


def in_process(figures: WhatIfFigures, shape: LoadShape) -> None:
    """The frames_for baseline and the facade's step copy, on the same desk."""
    engine, ts_ms = _engine_with_desk(shape, bars=25)
    key = (figures.account, None)
    figures.frames_for_per_s = _rate(lambda: engine.frames_for(key, ts_ms, "position"), 3.0)
    view, thresholds = LiveView(), AlertMonitor().thresholds
    view.stepped(engine, thresholds)
    symbol = engine.market.symbols[0]
    moves = iter(range(10**9))

    def price_step() -> None:  # a tick moved a price: copy prices only
        engine.market.on_price(symbol, ts_ms, 100.0 + next(moves) * 1e-6)
        view.stepped(engine, thresholds)

    def book_step() -> None:  # a position changed: copy the book (100 accounts x 20)
        engine.book.set_position(figures.account, symbol, None, 1.0 + next(moves), None)
        view.stepped(engine, thresholds)

    def bar_step() -> None:  # a bar closed: copy the statistics of every timeframe
        engine.market._correlation_cache.clear()  # as close_bar does
        engine.market.last_boundary_ms = (engine.market.last_boundary_ms or 0) + BAR_MS
        view.stepped(engine, thresholds)

    figures.step_copy_prices_us = _median_us(price_step)
    figures.step_copy_book_us = _median_us(book_step)
    figures.step_copy_bar_us = _median_us(bar_step, 20)


async def _load(url: str, body: bytes, token: str, concurrency: int, duration_s: float
                ) -> tuple[list[float], int]:
    """Latencies (ms) of successful what-ifs, and the number of failed ones."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        latencies.append((time.perf_counter() - started) * 1000)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def run(bench: Bench, *, duration_s: float = 20.0, concurrency: int = 4,
        ticks_per_s: float = 5000.0, timeframe: str = "1h") -> WhatIfFigures:
    shape = LoadShape()
    account = shape.account_names()[0]
    figures = WhatIfFigures(shape=shape.describe(), account=account, timeframe=timeframe,
                            concurrency=concurrency, live_ticks_per_s=ticks_per_s,
                            duration_s=duration_s)
    bench.step("whatif: frames_for baseline and the facade's step copy, in process")
    in_process(figures, shape)
    with bench.topics("whatif") as (settings, topics):
        bench.step("whatif: history and heat process")
        from benchmarks.pipeline.common import PipelineSpec

        spec = PipelineSpec("whatif", shape=shape, live_ticks_per_s=ticks_per_s)
        backlog = produce_history_to_now(bench, topics, spec)
        tokens_file = bench.logs / "whatif-api-tokens.json"
        tokens_file.unlink(missing_ok=True)
        token = create_token(tokens_file, "heat-bench", None, ("whatif",))
        process = bench.service("process", "process-whatif", settings,
                                HEAT_API_TOKENS_FILE=str(tokens_file),
                                HEAT_API_WHATIF_RATE_PER_S="1000000",
                                HEAT_API_WHATIF_BURST="1000000")
        with running(process):
            process.wait_for(live, 120, "the engine live")
            process.wait_for(lambda p: counter(p, "heat_process_events_total")
                             >= backlog.records, 300, "the history applied")
            held = make_books(shape, PriceWalk(shape.symbol_names(), shape.seed).prices(), 0)
            symbol = held.holdings[account][0][0]
            body = encode(WhatIfRequest(account=account, timeframe=timeframe,
                                        orders=[WhatIfOrder(symbol=symbol, qty=1.0)]))
            producer = LiveProducer(LivePlan(bench.bootstrap, settings.prefix, shape,
                                             ticks_per_s, spec.live_positions_per_s,
                                             duration_s + 10,
                                             walk_offset=backlog.history_ticks))
            try:
                bench.step(f"whatif: {concurrency} clients for {duration_s:.0f} s, "
                           f"{ticks_per_s:,.0f} ticks/s live")
                time.sleep(2.0)  # the live feed running before the clients start
                started = time.perf_counter()
                latencies, errors = asyncio.run(_load(f"{process.url}/v1/whatif", body, token,
                                                      concurrency, duration_s))
                elapsed_s = time.perf_counter() - started
                metrics = process.metrics()
                figures.input_lag_max_records = sum(
                    value for key, value in metrics.items()
                    if key.startswith("heat_process_input_lag_records"))
                if not process.running():
                    raise ServiceError(f"heat process exited; see {process.log_path}")
            finally:
                producer.stop()
    figures.requests, figures.errors = len(latencies), errors
    figures.requests_per_s = len(latencies) / elapsed_s
    figures.latency = LatencySummary.of(latencies)
    if figures.frames_for_per_s:
        figures.whatif_vs_frames_for = figures.requests_per_s / figures.frames_for_per_s
    return figures


def as_dict(figures: WhatIfFigures) -> dict[str, object]:
    return asdict(figures)
