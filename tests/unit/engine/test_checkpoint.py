"""Checkpoints: restoring an engine mid-stream and continuing equals never stopping, bit for bit."""

from __future__ import annotations

import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap.engine import checkpoint
from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.engine.book import PositionBook
from heatmap.engine.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    EngineCheckpoint,
    export_state,
    restore_state,
)
from heatmap.engine.engine import HeatEngine
from heatmap.engine.ewma import EwmaCorrelation
from heatmap.engine.market import MarketState
from heatmap.engine.params import EngineParams
from heatmap.schema import Account, Frame, Position, Price, datetime_to_ms, encode
from heatmap.sources.csv_files import ReadStats
from heatmap.sources.merge import merged_events

ROOT = Path(__file__).parents[3]
PRICES = sorted((ROOT / "data" / "binance-5m").glob("*.csv"))
POSITIONS = ROOT / "tests" / "data" / "replay" / "positions.csv"
ACCOUNTS = ROOT / "tests" / "data" / "replay" / "accounts.csv"
# What `heat replay --bar 5m --timeframes 1h,4h,1d` runs with (the other values are defaults).
REPLAY_PARAMS = EngineParams(bar_interval_s=300,
                             timeframes={"1h": 3600, "4h": 14400, "1d": 86400})


@dataclass
class _Run:
    """An engine and its alert monitor; every frame and alert they emit, as JSON bytes."""

    engine: HeatEngine
    monitor: AlertMonitor

    def emit(self, frames: Iterable[Frame]) -> list[bytes]:
        out = []
        for frame in frames:
            out.append(encode(frame))
            out.extend(encode(alert) for alert in self.monitor.observe(frame))
        return out

    def blob(self) -> bytes:
        return export_state(self.engine, self.monitor)


@dataclass
class _Lockstep:
    """An uninterrupted run and one restored from a checkpoint at every cut, side by side."""

    params: EngineParams
    thresholds: AlertThresholds | None = None
    cuts: Counter[str] = field(default_factory=Counter)
    outputs: int = 0

    def __post_init__(self) -> None:
        self.steady = _Run(HeatEngine(self.params), AlertMonitor(self.thresholds))
        self.restored = _Run(HeatEngine(self.params), AlertMonitor(self.thresholds))

    def step(self, action: Callable[[_Run], Iterable[Frame]]) -> None:
        expected = self.steady.emit(action(self.steady))
        got = self.restored.emit(action(self.restored))
        assert got == expected
        self.outputs += len(expected)

    def cut(self, reason: str) -> None:
        """Export the restored run, check it equals the uninterrupted state, restore it anew."""
        blob = self.restored.blob()
        assert blob == self.steady.blob(), f"state differs at a cut ({reason})"
        engine, monitor = restore_state(blob, self.params, alert_defaults=self.thresholds)
        self.restored = _Run(engine, monitor)
        assert self.restored.blob() == blob, "export -> restore -> export changed the bytes"
        self.cuts[reason] += 1

    def advance(self, ts_ms: int) -> None:
        self.step(lambda run: run.engine.iter_advance(ts_ms))

    def apply(self, message: Price | Position | Account) -> None:
        self.step(lambda run: run.engine.on_message(message, datetime_to_ms(message.ts)))

    def finish(self) -> None:
        self.step(lambda run: run.engine.finish())


def _warming(engine: HeatEngine) -> bool:
    min_periods = engine.params.min_periods
    return any(bool((e.count[:e.size] < min_periods).any()) and e.size > 0
               for e in engine.market.estimators.values())


# Warm-up, the crash of 16-17 January and the day after: the states worth cutting, in
# a third of the time of the whole file (two replays run side by side).
REPLAY_END = datetime(2018, 1, 18, tzinfo=UTC)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_restored_replay_equals_uninterrupted_replay_on_real_bars() -> None:
    """Cut the real replay at many points (warm-up, right at bar closes, with change
    frames pending after a bar close, at random, before the end); every frame and
    alert after every cut is byte-identical to an uninterrupted run."""
    run = _Lockstep(REPLAY_PARAMS)
    rng = random.Random(20180110)
    special = Counter[str]()

    def maybe_cut(reason: str | None) -> None:
        # The first few of each kind, then now and then; plus random cuts anywhere.
        if reason is not None and (special[reason] < 4 or rng.random() < 0.01):
            special[reason] += 1
            run.cut(reason)
        elif rng.random() < 0.002:
            run.cut("random")

    for message in merged_events(PRICES, POSITIONS, ACCOUNTS, ReadStats()):
        if message.ts >= REPLAY_END:
            break
        market = run.steady.engine.market
        boundary_before = market.last_boundary_ms
        run.advance(datetime_to_ms(message.ts))
        closed_bar = market.last_boundary_ms != boundary_before
        maybe_cut("warm-up" if _warming(run.steady.engine)
                  else "at a bar close" if closed_bar else None)
        run.apply(message)
        pending = bool(run.steady.engine._pending)
        maybe_cut("bar closed, change frame pending" if closed_bar and pending
                  else "change frame pending" if pending else None)
    run.cut("before finish")
    run.finish()

    print(f"\n{run.outputs} frames and alerts compared after {sum(run.cuts.values())} "
          f"restores: {dict(run.cuts)}")
    assert run.outputs > 40_000
    assert {"warm-up", "at a bar close", "bar closed, change frame pending",
            "change frame pending", "random", "before finish"} <= set(run.cuts)


# -- synthetic streams: late symbols, rate-limited frames, desk moves, flat books --------------

SMALL_PARAMS = EngineParams(bar_interval_s=60, timeframes={"2m": 120, "5m": 300},
                            min_periods=2, rho_min=0.3)
EAGER_ALERTS = AlertThresholds(min_frames=1, cluster_concentration_warning=0.1,
                               cluster_concentration_critical=0.3, regime_break=0.05)

_gaps_ms = st.sampled_from([0, 1, 120, 450, 499, 500, 1_500, 59_999, 60_000, 61_000, 185_000])
_prices = st.builds(lambda symbol, price: ("price", symbol, price),
                    st.sampled_from(["AAA", "BBB", "CCC", "DDD"]),
                    st.floats(0.5, 2.0).map(lambda step: 100.0 * step))
_positions = st.builds(lambda account, symbol, qty, strategy, conviction: (
                           "position", account, symbol, qty, strategy, conviction),
                       st.sampled_from(["a1", "a2", "a3"]),
                       st.sampled_from(["AAA", "BBB", "CCC", "DDD"]),
                       st.sampled_from([0.0, 1.0, -2.5, 3, 0.7]),
                       st.sampled_from([None, "s1", "s2"]),
                       st.sampled_from([None, 0.2, 0.9]))
_accounts = st.builds(lambda account, equity, desk, rate: ("account", account, equity, desk,
                                                           rate),
                      st.sampled_from(["a1", "a2", "a3"]), st.sampled_from([0.0, 50.0, 400.0]),
                      st.sampled_from([None, "d1", "d2"]), st.sampled_from([None, 0.02]))


def _feed(run: _Run, event: tuple, ts_ms: int) -> list[Frame]:
    """One synthetic event, straight into the engine (an int quantity stays an int)."""
    engine = run.engine
    if event[0] == "price":
        return engine.on_price(event[1], ts_ms, event[2])
    if event[0] == "position":
        _, account, symbol, qty, strategy, conviction = event
        return engine.on_position(account, symbol, ts_ms, qty, strategy, conviction)
    _, account, equity, desk, rate = event
    return engine.on_account(account, ts_ms, equity, desk, rate)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_gaps_ms, st.one_of(_prices, _prices, _positions, _accounts)),
                min_size=1, max_size=80),
       st.lists(st.booleans(), min_size=160, max_size=160))
def test_restore_at_any_point_of_a_synthetic_stream(events: list[tuple[int, tuple]],
                                                    cut_after: list[bool]) -> None:
    run = _Lockstep(SMALL_PARAMS, EAGER_ALERTS)
    ts_ms = 1_700_000_000_000
    for index, (gap_ms, event) in enumerate(events):
        ts_ms += gap_ms
        run.advance(ts_ms)
        if cut_after[2 * index]:
            run.cut("after advance")
        run.step(partial(_feed, event=event, ts_ms=ts_ms))
        if cut_after[2 * index + 1]:
            run.cut("after event")
    run.cut("before finish")
    run.finish()


def _synthetic_state() -> _Run:
    """A small engine with a late symbol, a rate-limited pending frame and firing alerts."""
    engine, monitor = HeatEngine(SMALL_PARAMS), AlertMonitor(EAGER_ALERTS)
    run = _Run(engine, monitor)
    t0 = 1_700_000_000_000
    engine.on_account("a1", t0, 100.0, "d1")
    for bar in range(8):
        for i, symbol in enumerate(["AAA", "BBB", "CCC"] + (["DDD"] if bar >= 4 else [])):
            run.emit(engine.on_price(symbol, t0 + bar * 60_000 + i,
                                     100.0 + bar * (i - 1) + (bar % 3)))
        run.emit(engine.on_position("a1", "AAA", t0 + bar * 60_000 + 10, 1 + bar % 2,
                                    strategy=None if bar % 2 else "s1"))
    run.emit(engine.on_position("a1", "DDD", t0 + 8 * 60_000, 2.0, "s2", 0.3))
    run.emit(engine.on_price("EEE", t0 + 8 * 60_000 + 50, 10.0))  # no return yet
    run.emit(engine.on_position("a1", "BBB", t0 + 8 * 60_000 + 100, -1.0))  # rate-limited
    assert engine._due[0][0] == t0 + 8 * 60_000 + 500
    return run


def test_export_restore_export_gives_the_same_bytes() -> None:
    run = _synthetic_state()
    blob = run.blob()
    saved = msgspec.msgpack.decode(blob, type=EngineCheckpoint)
    assert saved.format_version == FORMAT_VERSION
    assert saved.scheduler.pending and saved.alerts
    assert not saved.market.estimators["2m"].uniform  # EEE has not started
    engine, monitor = restore_state(blob, SMALL_PARAMS, alert_defaults=EAGER_ALERTS)
    assert export_state(engine, monitor) == blob
    # Arrays come back writable, in native byte order, with the exact bits (NaN included).
    assert engine.market.last_price.flags.writeable and engine.market.last_price.dtype == float
    np.testing.assert_array_equal(engine.market.prev_close.view(np.int64),
                                  run.engine.market.prev_close.view(np.int64))


def test_callbacks_are_reattached_not_saved() -> None:
    run = _synthetic_state()
    closed: list[int] = []
    engine, _ = restore_state(run.blob(), SMALL_PARAMS, on_bar_close=closed.append)
    engine.advance_to(1_700_000_000_000 + 20 * 60_000)
    assert closed and all(boundary % 60_000 == 0 for boundary in closed)


def test_every_attribute_is_saved_or_derived() -> None:
    """A new piece of engine state must reach the checkpoint (and bump FORMAT_VERSION)."""
    engine = HeatEngine(SMALL_PARAMS)
    expected = {
        HeatEngine: {"params", "on_bar_close", "share", "market", "book", "_pending", "_due",
                     "_next_sequence", "_last_change_frame_ms", "_min_change_gap_ms",
                     "_last_price_ms", "_echo", "clusters"},
        MarketState: {"params", "bar_ms", "slots", "symbols", "last_price", "last_price_ms",
                      "prev_close", "estimators", "next_boundary_ms", "last_boundary_ms",
                      "_correlation_cache"},
        EwmaCorrelation: {"alpha", "min_periods", "size", "capacity", "mean", "cov", "var",
                          "weight", "started", "count", "_delta", "_scratch", "_uniform"},
        # version only counts changes for readers of copies: a restored book starts at 0.
        PositionBook: {"default_maintenance_rate", "_entries", "terms", "_desks", "version"},
        AlertMonitor: {"defaults", "per_desk", "_machines"},
    }
    instances = {HeatEngine: engine, MarketState: engine.market, PositionBook: engine.book,
                 EwmaCorrelation: next(iter(engine.market.estimators.values())),
                 AlertMonitor: AlertMonitor()}
    for kind, instance in instances.items():
        assert set(vars(instance)) == expected[kind], (
            f"{kind.__name__} state changed: export and restore it in its export_state "
            "and restore_state, save it in heatmap.engine.checkpoint, bump FORMAT_VERSION "
            "and update this list")


def test_format_fields_are_pinned_to_the_version() -> None:
    """Changing a saved struct without bumping FORMAT_VERSION fails here."""
    structs = {name: getattr(checkpoint, name).__struct_fields__ for name in dir(checkpoint)
               if name.startswith("Saved") or name in ("EngineCheckpoint", "PackedArray")}
    assert FORMAT_VERSION == 3, "a new version: pin its fields below"
    assert structs == {
        "EngineCheckpoint": ("format", "format_version", "params_hash", "params", "market",
                             "book", "scheduler", "clusters", "alerts"),
        "PackedArray": ("dtype", "shape", "data"),
        "SavedEwma": ("size", "uniform", "mean", "cov", "var", "weight", "started", "count"),
        "SavedMarket": ("symbols", "last_price", "last_price_ms", "prev_close",
                        "next_boundary_ms", "last_boundary_ms", "estimators"),
        "SavedPosition": ("symbol", "strategy", "qty", "conviction"),
        "SavedAccountPositions": ("account", "positions"),
        "SavedAccountTerms": ("account", "equity", "desk", "maintenance_rate"),
        "SavedBook": ("accounts", "terms", "desks"),
        "SavedPendingFrame": ("due_ms", "sequence", "account", "desk", "trigger"),
        "SavedLastChangeFrame": ("account", "desk", "ts_ms"),
        "SavedScheduler": ("pending", "next_sequence", "last_change_frames", "last_price_ms"),
        "SavedMachine": ("kind", "subject", "level", "streak", "severity", "threshold",
                         "recovered_since_ms"),
        "SavedAlertBook": ("book_kind", "book", "timeframe", "machines"),
        "SavedCluster": ("name", "members", "exposure"),
        "SavedClusterBook": ("account", "desk", "timeframe", "clusters"),
    }


# -- refusals ---------------------------------------------------------------------------------


def test_another_format_version_is_refused() -> None:
    saved = msgspec.msgpack.decode(_synthetic_state().blob(), type=EngineCheckpoint)
    future = msgspec.msgpack.encode(msgspec.structs.replace(saved, format_version=99))
    with pytest.raises(CheckpointError, match="format version 99 is not the supported"):
        restore_state(future, SMALL_PARAMS)


def test_other_parameters_are_refused_saying_what_differs() -> None:
    blob = _synthetic_state().blob()
    other = msgspec.structs.replace(SMALL_PARAMS, min_periods=5)
    with pytest.raises(CheckpointError, match="min_periods 2 -> 5"):
        restore_state(blob, other)
    # Values frames do not echo count too.
    with pytest.raises(CheckpointError, match="zero_tol"):
        restore_state(blob, msgspec.structs.replace(SMALL_PARAMS, zero_tol=1e-9))


@pytest.mark.parametrize("blob", [b"", b"\x93\x01\x02\x03", msgspec.msgpack.encode({"a": 1}),
                                  msgspec.msgpack.encode({"format": "pickle",
                                                          "format_version": 1})])
def test_what_is_no_checkpoint_is_refused(blob: bytes) -> None:
    with pytest.raises(CheckpointError, match="not an engine checkpoint"):
        restore_state(blob, SMALL_PARAMS)


def test_inconsistent_checkpoint_is_refused() -> None:
    saved = msgspec.msgpack.decode(_synthetic_state().blob(), type=EngineCheckpoint)
    market = msgspec.structs.replace(saved.market, symbols=saved.market.symbols[:-1])
    broken = msgspec.msgpack.encode(msgspec.structs.replace(saved, market=market))
    with pytest.raises(CheckpointError, match="inconsistent checkpoint"):
        restore_state(broken, SMALL_PARAMS)


# -- size ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_size_of_a_realistic_checkpoint() -> None:
    """200 symbols x 3 timeframes x 100 accounts (20 positions each, 10 desks): the size
    is printed (and bounded: it is dominated by four n x n float64 matrices per
    timeframe); the timings are printed for information only."""
    params = EngineParams()  # 1-minute bars, 1h / 4h / 1d
    engine, monitor = HeatEngine(params), AlertMonitor()
    rng = np.random.default_rng(7)
    symbols = [f"S{i:03d}USDT" for i in range(200)]
    t0 = 1_700_000_040_000
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (30, 200)), axis=0))
    for bar in range(30):
        for symbol, price in zip(symbols, prices[bar].tolist(), strict=True):
            engine.on_price(symbol, t0 + bar * 60_000, price)
    now = t0 + 30 * 60_000
    for a in range(100):
        account = f"acct-{a:03d}"
        engine.on_account(account, now, 1e6, desk=f"desk-{a % 10}")
        for symbol in rng.choice(symbols, 20, replace=False).tolist():
            engine.on_position(account, symbol, now, float(rng.normal(0, 100)), "s", 0.6)
    for frame in engine.advance_to(now + 1):  # change frames: the alert machines fill up
        monitor.observe(frame)

    started = time.perf_counter()
    blob = export_state(engine, monitor)
    exported = time.perf_counter()
    restored_engine, restored_monitor = restore_state(blob, params)
    restored = time.perf_counter()
    assert export_state(restored_engine, restored_monitor) == blob
    compressed = len(zlib.compress(blob, 1))
    print(f"\ncheckpoint of 200 symbols x 3 timeframes x 100 accounts: {len(blob) / 1e6:.2f} MB "
          f"({compressed / 1e6:.2f} MB zlib level 1); export {1e3 * (exported - started):.1f} "
          f"ms, restore {1e3 * (restored - exported):.1f} ms")
    matrices = 3 * 4 * 200 * 200 * 8
    assert matrices < len(blob) < 1.5 * matrices
