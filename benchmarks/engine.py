"""Heat engine benchmark: correlation updates/s, account-frames/s, and a naive baseline.

The naive baseline is what the engine replaces: for every frame, recompute
the correlations of the book's symbols with pandas ``ewm(...).corr()`` over
the whole return history. Figures are reported as ratios against it,
measured in the same run, because the machine is shared and noisy.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from heatmap.engine.engine import HeatEngine
from heatmap.engine.ewma import EwmaCorrelation
from heatmap.engine.params import EngineParams


@dataclass(frozen=True)
class EngineBenchSize:
    """How big a run is. ``full`` is the reference size; ``small`` proves the code path in CI."""

    universes: tuple[int, ...] = (50, 200, 500)
    updates: int = 2000
    symbols: int = 200
    accounts: int = 1000
    positions_per_account: int = 20
    history_bars: int = 300
    measured_bars: int = 3
    baseline_frames: int = 20


SIZES = {
    "full": EngineBenchSize(),
    "small": EngineBenchSize(universes=(20, 50), updates=200, symbols=40, accounts=30,
                             positions_per_account=8, history_bars=60, measured_bars=1,
                             baseline_frames=5),
}


@dataclass
class EngineBenchResult:
    size: str
    correlation_updates_per_s: dict[int, float] = field(default_factory=dict)
    account_frames_per_s: float = 0.0
    naive_frames_per_s: float = 0.0
    speedup_vs_naive: float = 0.0
    frames_measured: int = 0
    peak_rss_mib: float = 0.0


def _returns(rng: np.random.Generator, bars: int, symbols: int) -> np.ndarray:
    """Correlated log returns, shape (bars, symbols): a market factor plus 10 sectors."""
    market = rng.normal(size=(bars, 1))
    sectors = rng.normal(size=(bars, 10))[:, rng.integers(0, 10, size=symbols)]
    noise = rng.normal(size=(bars, symbols))
    return 0.002 * (0.6 * market + 0.5 * sectors + 0.6 * noise)


def bench_correlation_updates(n: int, updates: int, rng: np.random.Generator) -> float:
    """EWMA correlation updates per second over ``n`` symbols (one timeframe)."""
    estimator = EwmaCorrelation(1 - 2 ** (-1 / 60), min_periods=20)
    estimator.resize(n)
    returns = _returns(rng, updates + 1, n)
    estimator.update(returns[0])  # first joint return starts every pair
    started = time.perf_counter()
    for row in returns[1:]:
        estimator.update(row)
    return updates / (time.perf_counter() - started)


def _engine_with_books(size: EngineBenchSize, rng: np.random.Generator,
                       params: EngineParams) -> tuple[HeatEngine, np.ndarray, list[str]]:
    engine = HeatEngine(params)
    symbols = [f"S{i:03d}USDT" for i in range(size.symbols)]
    returns = _returns(rng, size.history_bars + size.measured_bars + 1, size.symbols)
    prices = 100.0 * np.exp(np.cumsum(returns, axis=0))
    bar_ms = params.bar_interval_s * 1000
    for symbol, price in zip(symbols, prices[0], strict=True):
        engine.on_price(symbol, 0, float(price))
    for bar in range(1, size.history_bars + 1):
        for symbol, price in zip(symbols, prices[bar], strict=True):
            engine.on_price(symbol, bar * bar_ms, float(price))
    for account in range(size.accounts):
        held = rng.choice(size.symbols, size=size.positions_per_account, replace=False)
        name = f"acct-{account:04d}"
        engine.on_account(name, size.history_bars * bar_ms, equity=1_000_000.0)
        for slot in held:
            qty = float(rng.uniform(-1, 1) * 200_000 / prices[size.history_bars, slot])
            engine.on_position(name, symbols[slot], size.history_bars * bar_ms, qty,
                               conviction=float(rng.uniform(0, 1)))
    return engine, prices, symbols


def bench_account_frames(size: EngineBenchSize, rng: np.random.Generator
                         ) -> tuple[float, int, HeatEngine, np.ndarray]:
    """Bar-close frames per second: every account, every timeframe."""
    params = EngineParams(bar_interval_s=60, max_frame_rate_per_s=1e9)
    engine, prices, symbols = _engine_with_books(size, rng, params)
    bar_ms = params.bar_interval_s * 1000
    first = size.history_bars + 1
    engine.advance_to(first * bar_ms - 1)  # flush the change frames of the set-up
    frames, elapsed_s = 0, 0.0
    for bar in range(first, first + size.measured_bars):
        for symbol, price in zip(symbols, prices[bar], strict=True):
            engine.on_price(symbol, bar * bar_ms, float(price))
        started = time.perf_counter()
        produced = engine.advance_to(bar * bar_ms + 1)
        elapsed_s += time.perf_counter() - started
        frames += len(produced)
    return frames / elapsed_s, frames, engine, prices


def bench_naive_frames(size: EngineBenchSize, engine: HeatEngine, prices: np.ndarray,
                       rng: np.random.Generator) -> float:
    """Frames per second when each frame recomputes pandas ewm correlations from scratch."""
    import pandas as pd  # benchmark-only dependency

    from heatmap.engine.heat import compute_frame, regime_break

    log_returns = pd.DataFrame(np.diff(np.log(prices[: size.history_bars + 1]), axis=0),
                               columns=engine.market.symbols)
    params = engine.params
    accounts = engine.book.accounts
    frames, started = 0, time.perf_counter()
    for account in rng.choice(accounts, size=min(size.baseline_frames, len(accounts)),
                              replace=False):
        taken = engine.snapshot((str(account), None), 0, "bar")
        if taken is None:  # no positive equity: the engine makes no frame either
            continue
        book, slots = taken
        history = log_returns[book.symbols]
        rhos, sigmas = {}, {}
        for timeframe in params.timeframes:
            ewm = history.ewm(halflife=params.halflife_bars(timeframe), adjust=False)
            rhos[timeframe] = np.nan_to_num(ewm.corr().iloc[-len(book.symbols):].to_numpy())
            sigmas[timeframe] = np.sqrt(ewm.var(bias=True).iloc[-1].to_numpy())
        regime = regime_break(rhos[params.fast_timeframe], rhos[params.slow_timeframe])
        for timeframe in params.timeframes:
            compute_frame(book, timeframe, rhos[timeframe], sigmas[timeframe],
                          np.zeros(len(slots), dtype=bool), regime, params)
            frames += 1
    return frames / (time.perf_counter() - started)


def run(size_name: str = "full", seed: int = 7) -> EngineBenchResult:
    size = SIZES[size_name]
    rng = np.random.default_rng(seed)
    result = EngineBenchResult(size=size_name)
    for n in size.universes:
        result.correlation_updates_per_s[n] = bench_correlation_updates(n, size.updates, rng)
    rate, frames, engine, prices = bench_account_frames(size, rng)
    result.account_frames_per_s, result.frames_measured = rate, frames
    result.naive_frames_per_s = bench_naive_frames(size, engine, prices, rng)
    result.speedup_vs_naive = result.account_frames_per_s / result.naive_frames_per_s
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def as_dict(result: EngineBenchResult) -> dict[str, object]:
    return asdict(result)
