"""Leverage as a what-if: the same positions against less equity. At the first bar (no
P&L yet) heat shares are unchanged and correlated exposure scales with the leverage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from heatmap.compare.run import CompareSettings, compare
from heatmap.engine.params import EngineParams
from heatmap.schema import Account, Frame, Position, Price

START = datetime(2018, 1, 11, tzinfo=UTC)
SYMBOLS = ("AAA", "BBB", "CCC")


def _events() -> list[Price | Position | Account]:
    """60 one-minute bars of three correlated random walks, then a long-short book (gross
    notional 400 against a recorded equity of 400: leverage 1 as recorded)."""
    generator = np.random.default_rng(7)
    common = generator.normal(0.0, 0.01, 60)
    events: list[Price | Position | Account] = []
    levels = np.array([10.0, 20.0, 40.0])
    for minute in range(60):
        moves = common[minute] * np.array([1.0, 0.8, -0.5]) + generator.normal(0, 0.004, 3)
        levels = levels * np.exp(moves)
        ts = START + timedelta(minutes=minute)
        events += [Price(symbol=s, ts=ts, price=float(p), source="test")
                   for s, p in zip(SYMBOLS, levels, strict=True)]
    at = START + timedelta(minutes=59)
    notional = {"AAA": 200.0, "BBB": 100.0, "CCC": -100.0}
    events.append(Account(account="book", ts=at, equity=400.0))
    events += [Position(account="book", symbol=s, ts=at, qty=notional[s] / float(p))
               for s, p in zip(SYMBOLS, levels, strict=True)]
    events += [Price(symbol=s, ts=at + timedelta(minutes=1), price=float(p), source="test")
               for s, p in zip(SYMBOLS, levels, strict=True)]
    return events


def test_leverage_keeps_heat_shares_and_scales_exposure() -> None:
    first: dict[str, Frame] = {}

    def keep_first(book: str, leverage: str, rule: str, frame: Frame) -> None:
        first.setdefault(leverage, frame)

    compare(_events(), CompareSettings(
        params=EngineParams(bar_interval_s=60, timeframes={"15m": 900}, min_periods=10),
        leverages=(None, 2.0, 5.0), on_frame=keep_first))
    asis = first["asis"]
    assert asis.gross == pytest.approx(1.0)
    assert not asis.warming_up and asis.correlated_exposure > 0.0
    for label, leverage in (("2x", 2.0), ("5x", 5.0)):
        frame = first[label]
        assert frame.ts == asis.ts
        assert frame.equity == pytest.approx(asis.equity / leverage)
        assert frame.correlated_exposure == pytest.approx(leverage * asis.correlated_exposure)
        assert frame.max_cluster_concentration == pytest.approx(
            leverage * (asis.max_cluster_concentration or 0.0))
        assert frame.effective_bets == pytest.approx(asis.effective_bets)
        assert [p.heat_share for p in frame.positions] == pytest.approx(
            [p.heat_share for p in asis.positions])
        assert [p.share for p in frame.positions] == pytest.approx(
            [leverage * p.share for p in asis.positions])
