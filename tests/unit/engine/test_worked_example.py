"""The worked example of docs/heat.md, number for number."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heatmap.engine.heat import BookSnapshot, compute_frame
from heatmap.engine.params import EngineParams

RHO = np.array([[1.0, 0.8, 0.6],
                [0.8, 1.0, 0.7],
                [0.6, 0.7, 1.0]])
SIGMA = np.array([0.0010, 0.0015, 0.0020])  # per 1-minute bar


def _frame():
    book = BookSnapshot(
        ts_ms=0, trigger="bar", account="acct-1", desk=None,
        symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"],
        qty=np.array([1.0, 10.0, -100.0]), price=np.array([50_000.0, 3_000.0, 200.0]),
        price_age_s=np.zeros(3), strategy=[None, None, None], conviction=[0.8, 0.3, None],
        equity=100_000.0, margin=0.005 * 100_000.0,
    )
    return compute_frame(book, "1h", RHO, SIGMA, np.zeros(3, dtype=bool), None,
                         EngineParams())


def test_worked_example() -> None:
    frame = _frame()
    rows = {row.symbol: row for row in frame.positions}
    assert [rows[s].share for s in rows] == pytest.approx([0.5, 0.3, -0.2])
    assert frame.correlated_exposure == pytest.approx(math.sqrt(0.416))
    assert frame.correlated_exposure == pytest.approx(0.644981, abs=1e-6)
    assert rows["BTCUSDT"].heat == pytest.approx(0.480634, abs=1e-6)
    assert rows["ETHUSDT"].heat == pytest.approx(0.260473, abs=1e-6)
    assert rows["SOLUSDT"].heat == pytest.approx(-0.096127, abs=1e-6)
    assert sum(row.heat for row in frame.positions) == pytest.approx(frame.correlated_exposure)
    assert [rows[s].quadrant for s in rows] == ["core", "unsure", "hedge"]
    assert frame.gross == pytest.approx(1.0)
    assert frame.net == pytest.approx(0.6)
    assert frame.effective_bets == pytest.approx(1 / 0.416)
    assert frame.hhi == pytest.approx(0.38)
    assert frame.stress_exposure == pytest.approx(math.sqrt(0.388))
    assert frame.liq_distance == pytest.approx(0.995 / 0.6)
    assert frame.var99_1d == pytest.approx(2.326 * math.sqrt(4.805e-7) * math.sqrt(1440) * 1e5)
    assert frame.var99_1d == pytest.approx(6118.4, abs=0.1)
    [cluster] = frame.clusters
    assert cluster.cluster == "BTCUSDT"
    assert cluster.members == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert cluster.concentration == pytest.approx(frame.correlated_exposure)
    # Without the SOL short the same two longs would run hotter: the short cools.
    assert math.sqrt(0.25 + 0.09 + 2 * 0.8 * 0.5 * 0.3) > frame.correlated_exposure
