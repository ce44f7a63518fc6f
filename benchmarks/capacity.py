"""How many accounts x symbols one engine serves at a bar: the bar-close compute of the
engine alone (:class:`heatmap.engine.engine.HeatEngine`, no Kafka) over a grid of
universe sizes and account counts, and where it crosses a budget.

A bar close is what the engine does when the first price after a boundary arrives:
update the EWMA estimators of every timeframe and compute a frame per account and
timeframe. Measured separately: encoding those frames and the bar's correlation
snapshots as the processor sends them, and a numpy floor (per book and timeframe,
gather its correlation block and take one quadratic form ``s' rho s``).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.load import LoadShape, PriceWalk, make_books
from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.engine.share import BookShare
from heatmap.process.outputs import correlation_record, frame_record
from heatmap.schema import CorrelationSnapshot, Frame
from heatmap.topics import Topics

BAR_S = 60
HISTORY_BARS = 30  # past the estimators' warm-up (min_periods 20 returns)
ROUNDS_PER_BAR = 1500  # a bar moves as far as 1,500 rounds of ticks (5,000 ticks/s, 200 symbols)


@dataclass(frozen=True)
class CapacityCell:
    """One grid point, seconds per bar close (mean over the measured bars).

    ``bar_close_s``: the engine's bar close (estimators and every account's frames,
    all timeframes); ``outputs_s``: encoding its frames and correlation snapshots as
    Kafka records; ``floor_s``: the numpy floor.
    """

    symbols: int
    accounts: int
    positions_per_account: int
    frames: int
    bar_close_s: float
    outputs_s: float
    floor_s: float

    @property
    def with_outputs_s(self) -> float:
        return self.bar_close_s + self.outputs_s

    @property
    def vs_floor(self) -> float:
        return self.bar_close_s / self.floor_s


def _engine(shape: LoadShape, params: EngineParams) -> tuple[HeatEngine, PriceWalk, int]:
    """An engine past its warm-up holding every account's positions; (engine, walk, the
    next bar number)."""
    engine = HeatEngine(params)
    walk = PriceWalk(shape.symbol_names(), shape.seed)
    bar_ms = params.bar_interval_s * 1000
    books = make_books(shape, walk.prices(), HISTORY_BARS * bar_ms)
    for bar in range(HISTORY_BARS + 1):
        _price_bar(engine, walk, shape.symbols, bar * bar_ms)
    for account in books.accounts:
        engine.on_message(account, HISTORY_BARS * bar_ms)
    for position in books.positions(HISTORY_BARS * bar_ms):
        engine.on_message(position, HISTORY_BARS * bar_ms)
    engine.advance_to((HISTORY_BARS + 1) * bar_ms - 1)  # the set-up's change frames
    return engine, walk, HISTORY_BARS + 1


def _price_bar(engine: HeatEngine, walk: PriceWalk, symbols: int, boundary_ms: int) -> None:
    """Move every symbol as far as a bar of ticks would, at the bar's boundary (epoch ms):
    the next event after it closes the bar."""
    for symbol, value in walk.ticks(symbols, ROUNDS_PER_BAR ** 0.5):
        engine.on_price(symbol, boundary_ms, value)


def _floor_s(engine: HeatEngine, shape: LoadShape) -> float:
    """Seconds for every book's correlation block and quadratic form, all timeframes."""
    market = engine.market
    books = [np.array([market.slots[symbol] for symbol in engine.book.holdings(
        [account], engine.params.zero_tol).symbols], dtype=np.int64)
        for account in shape.account_names()]
    shares = [np.full(len(slots), 0.05) for slots in books]
    full = {tf: market.correlation(tf, np.arange(len(market.symbols)))
            for tf in engine.params.timeframes}
    started = time.perf_counter()
    for slots, share in zip(books, shares, strict=True):
        for matrix in full.values():
            block = matrix[np.ix_(slots, slots)]
            float(share @ block @ share)
    return time.perf_counter() - started


def _outputs_s(engine: HeatEngine, frames: Sequence[Frame], boundary_ms: int,
               topics: Topics) -> float:
    """Seconds to encode ``frames`` and the bar's correlation snapshots as records."""
    params = engine.params
    started = time.perf_counter()
    for frame in frames:
        frame_record(topics, frame)
    for timeframe in params.timeframes:
        symbols, rho = engine.correlation_snapshot(timeframe)
        correlation_record(topics, CorrelationSnapshot(
            ts_ms=boundary_ms, timeframe=timeframe, params_hash=params.params_hash(timeframe),
            symbols=symbols, rho=rho.tolist()))
    return time.perf_counter() - started


def measure(symbols: int, accounts: int, positions_per_account: int = 20, bars: int = 2,
            seed: int = 7) -> CapacityCell:
    """Bar-close seconds of one grid point (1-minute bars, timeframes 1h, 4h, 1d)."""
    shape = LoadShape(symbols=symbols, accounts=accounts, desks=0,
                      positions_per_account=positions_per_account, seed=seed)
    params = EngineParams(bar_interval_s=BAR_S)
    engine, walk, next_bar = _engine(shape, params)
    bar_ms = params.bar_interval_s * 1000
    topics = Topics.from_settings()
    close_s = outputs_s = 0.0
    frames = 0
    for bar in range(next_bar, next_bar + bars):
        _price_bar(engine, walk, symbols, bar * bar_ms)
        started = time.perf_counter()
        made = engine.advance_to(bar * bar_ms + 1)
        close_s += time.perf_counter() - started
        outputs_s += _outputs_s(engine, made, bar * bar_ms, topics)
        frames += len(made)
    return CapacityCell(symbols=symbols, accounts=accounts,
                        positions_per_account=positions_per_account, frames=frames // bars,
                        bar_close_s=close_s / bars, outputs_s=outputs_s / bars,
                        floor_s=_floor_s(engine, shape))


def max_accounts(cells: Sequence[CapacityCell], symbols: int, budget_s: float,
                 with_outputs: bool = False) -> int | None:
    """The most accounts whose bar close stays within ``budget_s`` at ``symbols``, from a
    least-squares line through the measured accounts (cost grows linearly with the
    books); None with fewer than two measured account counts."""
    return _within(sorted((cell.accounts, cell.with_outputs_s if with_outputs
                           else cell.bar_close_s) for cell in cells if cell.symbols == symbols),
                   budget_s)


def _within(points: Sequence[tuple[int, float]], budget_s: float) -> int | None:
    """The most accounts within ``budget_s`` on a least-squares line through ``points``
    ((accounts, seconds)); None with fewer than two account counts or no growth."""
    if len({accounts for accounts, _ in points}) < 2:
        return None
    slope, intercept = np.polyfit([p[0] for p in points], [p[1] for p in points], 1)
    if slope <= 0:
        return None
    return max(0, math.floor((budget_s - intercept) / slope + 1e-9))  # 1e-9: fit rounding


# -- engines sharing the desks -----------------------------------------------------------------


@dataclass(frozen=True)
class SharedCell:
    """One grid point of engines sharing the desks (``HEAT_ENGINE_DESKS``), each its own
    process on the same cores: ``bar_close_s`` is the wall time until the last engine has
    framed its share (mean over the measured bars), every engine starting together."""

    symbols: int
    accounts: int
    desks: int
    engines: int
    frames: int
    bar_close_s: float


def _shared_engine(shape: LoadShape, index: int, engines: int, bars: int,
                   start: Barrier, results: Queue[tuple[int, float, int]]) -> None:
    """One engine of ``engines`` (the body of a child process): desks ``index`` mod
    ``engines`` are its share, engine 0 is home; reports (bar, seconds, frames)."""
    threadpool_limits(limits=1, user_api="blas")  # as `heat process` runs its engine
    params = EngineParams(bar_interval_s=BAR_S)
    engine, walk, next_bar = _engine(shape, params)
    desks = [f"desk-{number:02d}" for number in range(shape.desks)]
    engine.share = BookShare(desks=frozenset(desks[index::engines]), claimed=frozenset(desks),
                             home=index == 0)
    bar_ms = params.bar_interval_s * 1000
    for bar in range(next_bar, next_bar + bars):
        _price_bar(engine, walk, shape.symbols, bar * bar_ms)
        start.wait()
        started = time.perf_counter()
        made = engine.advance_to(bar * bar_ms + 1)
        results.put((bar, time.perf_counter() - started, len(made)))


def measure_shared(symbols: int, accounts: int, engines: int, desks: int = 10,
                   positions_per_account: int = 20, bars: int = 2, seed: int = 7
                   ) -> SharedCell:
    """Bar-close wall seconds of ``engines`` engine processes sharing ``desks`` desks
    (1-minute bars, timeframes 1h, 4h, 1d); ``engines=1`` is one engine framing all, run
    the same way."""
    shape = LoadShape(symbols=symbols, accounts=accounts, desks=desks,
                      positions_per_account=positions_per_account, seed=seed)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(engines)
    results: Queue[tuple[int, float, int]] = context.Queue()
    children = [context.Process(target=_shared_engine,
                                args=(shape, index, engines, bars, start, results))
                for index in range(engines)]
    for child in children:
        child.start()
    try:
        reports = [results.get(timeout=900) for _ in range(engines * bars)]
    finally:
        for child in children:
            child.join(timeout=60)
            if child.is_alive():
                child.kill()
    by_bar: dict[int, list[tuple[float, int]]] = {}
    for bar, seconds, frames in reports:
        by_bar.setdefault(bar, []).append((seconds, frames))
    return SharedCell(symbols=symbols, accounts=accounts, desks=desks, engines=engines,
                      frames=sum(frames for _, frames in next(iter(by_bar.values()))),
                      bar_close_s=sum(max(seconds for seconds, _ in rows)
                                      for rows in by_bar.values()) / len(by_bar))


def max_accounts_shared(cells: Sequence[SharedCell], engines: int, budget_s: float
                        ) -> int | None:
    """:func:`max_accounts` for ``engines`` engines sharing the desks."""
    return _within(sorted((cell.accounts, cell.bar_close_s) for cell in cells
                          if cell.engines == engines), budget_s)
