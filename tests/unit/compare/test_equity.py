"""Mark-to-market equity and liquidation against a two-asset example computed by hand.

Equity 100, maintenance rate 5 % of gross notional. At t=0 the book buys 10 A at
10 and sells 5 B at 20 (gross 200: twice its equity). Bars close every minute:

======  ======  ======  ====================================  ======  =======  ======
bar     A       B       P&L A / B (q x price change, summed)  equity  gross    margin
======  ======  ======  ====================================  ======  =======  ======
0:00    10      20      0 / 0                                 100     200      10
0:01    9       21      -10 / -5                              85      195      9.75
(0:01:30 sells 5 A at 9: -5 realised stays in A's P&L, equity unchanged)
0:02    8       30      -15 / -50                             35      190      9.5
0:03    8       34.5    -15 / -72.5                           12.5    212.5    10.625
0:04    7.5     35      -17.5 / -75                           7.5     212.5    10.625
======  ======  ======  ====================================  ======  =======  ======

At 0:04 equity (7.5) is at or below the margin (10.625): liquidated, B carried
75 of the 92.5 lost. From then on the book is flat: equity stays 7.5 while
prices move and later position messages are ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from heatmap.compare.equity import MarkToMarket, equity_for_leverage
from heatmap.compare.run import CompareSettings, compare
from heatmap.engine.alerts import AlertThresholds
from heatmap.engine.params import EngineParams
from heatmap.schema import Account, Position, Price

START = datetime(2018, 1, 11, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def _prices(seconds: float, a: float, b: float) -> list[Price]:
    return [Price(symbol=symbol, ts=_at(seconds), price=price, source="test")
            for symbol, price in (("A", a), ("B", b))]


def _position(seconds: float, symbol: str, qty: float) -> Position:
    return Position(account="book", symbol=symbol, ts=_at(seconds), qty=qty)


EVENTS = [
    *_prices(0, 10, 20),
    Account(account="book", ts=_at(0), equity=100.0, maintenance_rate=0.05),
    _position(0, "A", 10), _position(0, "B", -5),
    *_prices(60, 9, 21),
    _position(90, "A", 5),
    *_prices(120, 8, 30),
    *_prices(180, 8, 34.5),
    *_prices(240, 7.5, 35),
    *_prices(300, 7, 40),
    _position(330, "A", 20),  # after the liquidation: ignored
    *_prices(360, 6, 50),
]


def test_equity_moves_with_quantity_times_price_change() -> None:
    book = MarkToMarket(equity_0=100.0, maintenance_rate=0.05)
    book.trade("A", 10, 10.0)
    book.trade("B", -5, 20.0)
    assert book.equity({"A": 9.0, "B": 21.0}) == pytest.approx(85.0)
    book.trade("A", 5, 9.0)
    assert book.equity({"A": 9.0, "B": 21.0}) == pytest.approx(85.0)  # a trade moves no equity
    prices = {"A": 8.0, "B": 30.0}
    assert book.pnl_by_symbol(prices) == pytest.approx({"A": -15.0, "B": -50.0})
    assert book.equity(prices) == pytest.approx(35.0)
    assert book.maintenance_margin(prices) == pytest.approx(9.5)
    assert not book.is_liquidated(prices)
    assert book.is_liquidated({"A": 7.5, "B": 35.0})


def test_trades_before_a_first_price_are_booked_at_it() -> None:
    book = MarkToMarket(equity_0=1.0, maintenance_rate=0.0)
    book.trade("A", 2.0, float("nan"))
    book.book_unpriced({"A": 3.0})
    assert book.equity({"A": 4.0}) == pytest.approx(3.0)


def test_leverage_sets_equity_from_gross_notional() -> None:
    assert equity_for_leverage(200.0, 5.0) == pytest.approx(40.0)
    with pytest.raises(ValueError, match="positive"):
        equity_for_leverage(200.0, 0.0)


def test_two_asset_book_is_liquidated_as_computed_by_hand() -> None:
    outcome = compare(EVENTS, CompareSettings(params=EngineParams(
        bar_interval_s=60, timeframes={"1h": 3600})))
    [series] = outcome.series
    result = series.result
    minute = 60_000
    start_ms = int(START.timestamp() * 1000)
    assert series.ts_ms.tolist() == [start_ms + k * minute for k in range(7)]
    assert series.equity.tolist() == pytest.approx([100, 85, 35, 12.5, 7.5, 7.5, 7.5])
    liquidation = result.liquidation
    assert liquidation is not None
    assert liquidation.ts == "2018-01-11T00:04:00.000Z"
    assert liquidation.equity == pytest.approx(7.5)
    assert liquidation.maintenance_margin == pytest.approx(10.625)
    assert [(c.cluster, c.loss) for c in liquidation.loss_by_cluster] == [
        ("B", pytest.approx(75.0)), ("A", pytest.approx(17.5))]
    assert liquidation.worst_cluster == "B"
    assert result.worst_cluster == "B"
    assert result.total_return == pytest.approx(-0.925)
    assert result.max_drawdown == pytest.approx(0.925)
    [drawdown] = result.drawdowns
    assert (drawdown.peak_ts, drawdown.trough_ts, drawdown.recovery_ts) == (
        "2018-01-11T00:00:00.000Z", "2018-01-11T00:04:00.000Z", None)
    assert [c.cluster for c in drawdown.loss_by_cluster] == ["B", "A"]
    # Correlations are still warming up: every position is its own cluster.
    assert drawdown.heat_before is not None
    assert drawdown.heat_before.top_cluster in ("A", "B")


def test_a_books_desk_thresholds_judge_its_alerts() -> None:
    """Each book is judged with its desk's thresholds: raised for desk "calm" only, its
    book has no critical concentration time while the other book keeps it."""
    desks = [Account(account="book", ts=_at(0), equity=100.0, maintenance_rate=0.05,
                     desk="calm"),
             Account(account="other", ts=_at(0), equity=100.0, maintenance_rate=0.05,
                     desk="busy")]
    other = [Position(account="other", symbol=p.symbol, ts=p.ts, qty=p.qty)
             for p in EVENTS if isinstance(p, Position) and p.ts == _at(0)]
    events = [*EVENTS[:2], *desks, *EVENTS[3:5], *other, *EVENTS[5:]]
    params = EngineParams(bar_interval_s=60, timeframes={"1h": 3600})
    plain = {s.result.book: s.result for s in compare(events, CompareSettings(
        params=params)).series}
    raised = AlertThresholds(cluster_concentration_warning=50.0,
                             cluster_concentration_critical=60.0)
    judged = {s.result.book: s.result for s in compare(events, CompareSettings(
        params=params, alert_per_desk={"calm": raised})).series}
    assert plain["book"].critical_concentration_hours > 0
    assert judged["book"].critical_concentration_hours == 0
    assert judged["other"] == plain["other"]
