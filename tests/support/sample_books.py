"""A small engine with history, accounts on a desk and held positions, and alert
transitions of its books, for what-if and the web facade's tests."""

from __future__ import annotations

import numpy as np

from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.schema import Alert, AlertKind, AlertState, Severity

PARAMS = EngineParams(bar_interval_s=60, timeframes={"10m": 600, "1h": 3600}, min_periods=5)
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
T0 = 1_700_000_000_000
BARS = 40


def sample_engine() -> tuple[HeatEngine, int]:
    """Correlated random walks (AAA-CCC move together), accounts a1 and a2 on desk d1 and
    solo on none; returns the engine and the time of its last event (mid-bar)."""
    rng = np.random.default_rng(3)
    engine = HeatEngine(PARAMS)
    engine.on_account("a1", T0, 1_000.0, "d1", 0.01)
    engine.on_account("a2", T0, 500.0, "d1")
    engine.on_account("solo", T0, 2_000.0)
    prices = np.full(len(SYMBOLS), 100.0)
    for bar in range(BARS):
        common = rng.normal(0, 0.01)
        moves = rng.normal(0, 0.01, len(SYMBOLS))
        moves[:3] += 4 * common
        prices *= np.exp(moves)
        for i, symbol in enumerate(SYMBOLS):
            engine.on_price(symbol, T0 + bar * 60_000 + 1_000 + i, float(prices[i]))
    last = T0 + (BARS - 1) * 60_000 + 30_000
    engine.on_position("a1", "AAA", last - 9_000, 2.0, "trend", 0.8)
    engine.on_position("a1", "BBB", last - 8_000, 1.5)
    engine.on_position("a1", "DDD", last - 7_000, -1.0, None, 0.3)
    engine.on_position("a2", "AAA", last - 6_000, 1.0)
    engine.on_position("a2", "EEE", last - 5_000, 3.0, "carry")
    engine.on_position("solo", "FFF", last - 4_000, 4.0)
    engine.on_price("CCC", last, float(prices[2]) * 1.001)
    return engine, last


def sample_alert(kind: AlertKind, subject: str, state: AlertState,
                 severity: Severity = "warning", *, account: str | None = "a1",
                 desk: str | None = "d1", timeframe: str = "1h",
                 ts: str = "2018-01-11T04:00:00.000Z") -> Alert:
    """An alert transition of a book (an account of desk d1 unless told)."""
    return Alert(ts=ts, account=account, desk=desk, timeframe=timeframe, kind=kind,
                 subject=subject, severity=severity, state=state, value=0.3, threshold=0.2,
                 message=f"{kind} {subject} {state}")
