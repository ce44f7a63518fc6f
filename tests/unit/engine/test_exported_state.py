"""Each engine component copies its state out and takes it over again, without bytes in
between: the copy is independent of the component, and only a fresh component takes one."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.engine.book import PositionBook
from heatmap.engine.engine import HeatEngine
from heatmap.engine.ewma import EwmaCorrelation
from heatmap.engine.market import MarketState
from heatmap.schema import Frame, encode
from support.sample_books import PARAMS, sample_engine

EAGER = AlertThresholds(min_frames=1, cluster_concentration_warning=0.1, regime_break=0.05)


def _encoded(frames: list[Frame], monitor: AlertMonitor) -> list[bytes]:
    out = []
    for frame in frames:
        out.append(encode(frame))
        out.extend(encode(alert) for alert in monitor.observe(frame))
    return out


def _sample() -> tuple[HeatEngine, AlertMonitor, int]:
    """The sample engine a bar later, its frames through an eager alert monitor (which
    then holds firing machines); returns both and the time reached (epoch ms)."""
    engine, last_ms = sample_engine()
    monitor = AlertMonitor(EAGER)
    _encoded(engine.advance_to(last_ms + 60_000), monitor)
    assert monitor.export_state()
    return engine, monitor, last_ms + 60_000


def _continue(engine: HeatEngine, monitor: AlertMonitor, now_ms: int) -> list[bytes]:
    """Ten more bars of prices (a new symbol among them) and position changes, from
    ``now_ms`` on: every frame and alert as JSON."""
    out = []
    for bar in range(10):
        ts_ms = now_ms + bar * 60_000
        for i, symbol in enumerate(["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG"]):
            out += _encoded(engine.on_price(symbol, ts_ms + i, 100.0 + bar * (i - 3)), monitor)
        out += _encoded(engine.on_position("a2", "GGG", ts_ms + 50, float(bar)), monitor)
    return out + _encoded(engine.finish(), monitor)


def test_a_restored_engine_continues_as_the_original() -> None:
    engine, monitor, now_ms = _sample()
    restored, restored_monitor = HeatEngine(PARAMS), AlertMonitor(EAGER)
    restored.restore_state(engine.export_state())
    restored_monitor.restore_state(monitor.export_state())
    assert _continue(restored, restored_monitor, now_ms) == _continue(engine, monitor, now_ms)


def test_an_exported_state_is_a_copy() -> None:
    """Neither the exporting components nor those that took the state over change it."""
    engine, monitor, now_ms = _sample()
    state, alerts = engine.export_state(), monitor.export_state()
    before, alerts_before = copy.deepcopy(state), copy.deepcopy(alerts)
    restored, restored_monitor = HeatEngine(PARAMS), AlertMonitor(EAGER)
    restored.restore_state(state)
    restored_monitor.restore_state(alerts)
    _continue(engine, monitor, now_ms)
    _continue(restored, restored_monitor, now_ms)
    assert "GGG" in engine.market.symbols and state.market.symbols == before.market.symbols
    for name in ("last_price", "last_price_ms", "prev_close"):
        np.testing.assert_array_equal(getattr(state.market, name), getattr(before.market, name))
    for timeframe, ewma in state.market.estimators.items():
        for name in ("mean", "cov", "var", "weight", "started", "count"):
            np.testing.assert_array_equal(getattr(ewma, name),
                                          getattr(before.market.estimators[timeframe], name))
    assert state.book == before.book
    assert (state.pending, state.next_sequence, state.last_change_frame_ms) == (
        before.pending, before.next_sequence, before.last_change_frame_ms)
    assert alerts == alerts_before


def test_only_a_fresh_component_takes_a_state_over() -> None:
    engine, _ = sample_engine()
    monitor = AlertMonitor()
    monitor.observe(engine.frames_for(("a1", None), 0, "bar")[0])
    estimator = next(iter(engine.market.estimators.values()))
    takeovers = [
        (engine, engine.export_state()),
        (engine.market, engine.market.export_state()),
        (engine.book, engine.book.export_state()),
        (estimator, estimator.export_state()),
        (monitor, monitor.export_state()),
    ]
    for component, state in takeovers:
        with pytest.raises(ValueError, match="only a fresh"):
            component.restore_state(state)


def test_arrays_that_do_not_fit_are_refused_not_broadcast() -> None:
    engine, _ = sample_engine()
    estimator = next(iter(engine.market.estimators.values()))
    state = estimator.export_state()
    flat = dataclasses.replace(state, mean=state.mean[:1, :1].copy())
    with pytest.raises(ValueError, match=r"mean is float64 \[1, 1\], expected float64 \[6, 6\]"):
        EwmaCorrelation(estimator.alpha, estimator.min_periods).restore_state(flat)
    market = engine.market.export_state()
    short = dataclasses.replace(market, prev_close=market.prev_close[:-1].copy())
    with pytest.raises(ValueError, match=r"prev_close is float64 \[5\], expected"):
        MarketState(PARAMS).restore_state(short)


def test_a_book_exports_what_it_took_over() -> None:
    engine, _ = sample_engine()
    book = PositionBook(PARAMS.default_maintenance_rate)
    book.restore_state(engine.book.export_state())
    assert book.export_state() == engine.book.export_state()
    assert book.accounts == ["a1", "a2", "solo"] and book.desks == ["d1"]
