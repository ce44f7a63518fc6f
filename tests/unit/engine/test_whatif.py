"""What-if against the engine itself: the "after" frame is the frame the engine makes once
the orders' positions are applied at the same moment (the oracle), and nothing the
what-if reads is changed."""

from __future__ import annotations

import copy

import msgspec
import numpy as np
import pytest

from heatmap.engine.alerts import AlertThresholds
from heatmap.engine.engine import HeatEngine
from heatmap.engine.market_view import capture_market
from heatmap.engine.whatif import DESK_ORDERS_ACCOUNT, WhatIfError, what_if
from heatmap.schema import Frame, WhatIfOrder
from support.sample_books import PARAMS, sample_engine


def _applied_frames(engine: HeatEngine, key: tuple[str | None, str | None], ts_ms: int,
                    account: str, orders: dict[str, float], desk: str | None = None
                    ) -> list[Frame]:
    """The oracle: book the orders in the engine itself, then ask it for the book's frames."""
    if account == DESK_ORDERS_ACCOUNT:
        engine.on_account(account, ts_ms, 0.0, desk)
    entries = engine.book.entries(account)
    for symbol, qty in orders.items():
        entry = entries.get((symbol, ""))
        engine.on_position(account, symbol, ts_ms, (entry.qty if entry else 0.0) + qty, None,
                           entry.conviction if entry else None)
    return engine.frames_for(key, ts_ms, "position")


def _close(actual: Frame, expected: Frame) -> None:
    left, right = msgspec.to_builtins(actual), msgspec.to_builtins(expected)
    assert left.keys() == right.keys()
    _assert_close(left, right, "frame")


def _assert_close(left: object, right: object, where: str) -> None:
    if isinstance(left, dict) and isinstance(right, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            _assert_close(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list) and isinstance(right, list):
        assert len(left) == len(right), where
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            _assert_close(a, b, f"{where}[{i}]")
    elif isinstance(left, float) and isinstance(right, float):
        assert left == pytest.approx(right, rel=1e-12, abs=1e-12), where
    else:
        assert left == right, where


CASES = {
    "account adds to a held symbol": ("a1", None, {"AAA": 1.0}),
    "account opens, closes and flips": ("a1", None, {"CCC": 2.5, "BBB": -1.5, "DDD": 3.0}),
    "desk frame, orders on a member": ("a2", "d1", {"FFF": -2.0, "AAA": 0.5}),
    "desk frame, orders on the desk": (None, "d1", {"CCC": 1.0, "EEE": -3.0}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("timeframe", ["10m", "1h"])
def test_after_frame_equals_the_engines_own_frame(case: str, timeframe: str) -> None:
    account, desk, orders = CASES[case]
    engine, ts_ms = sample_engine()
    market, book = capture_market(engine.market), engine.book.copy()
    key = (None, desk) if desk else (account, None)
    expected_before = engine.frames_for(key, ts_ms, "position")
    index = list(PARAMS.timeframes).index(timeframe)

    result = what_if(market, book, PARAMS, account=account, desk=desk, timeframe=timeframe,
                     orders=[WhatIfOrder(symbol=s, qty=q) for s, q in orders.items()],
                     ts_ms=ts_ms)

    _close(result.before, expected_before[index])
    expected_after = _applied_frames(engine, key, ts_ms,
                                     DESK_ORDERS_ACCOUNT if account is None else account,
                                     orders, desk)
    _close(result.after, expected_after[index])
    assert result.delta.correlated_exposure.delta == pytest.approx(
        expected_after[index].correlated_exposure - expected_before[index].correlated_exposure)


def test_what_if_changes_neither_the_copies_nor_thesample_engine() -> None:
    engine, ts_ms = sample_engine()
    market, book = capture_market(engine.market), engine.book.copy()
    saved_book, saved_prices = copy.deepcopy(book), market.last_price.copy()
    version, frames = engine.book.version, engine.frames_for(("a1", None), ts_ms, "position")
    what_if(market, book, PARAMS, account="a1", desk=None, timeframe="1h",
            orders=[WhatIfOrder(symbol="CCC", qty=5.0)], ts_ms=ts_ms)
    assert engine.book.version == version
    assert vars(book).keys() == vars(saved_book).keys()
    assert book._entries == saved_book._entries and book.terms == saved_book.terms
    np.testing.assert_array_equal(market.last_price, saved_prices)
    assert engine.frames_for(("a1", None), ts_ms, "position") == frames


def test_deltas_show_lines_crossed_and_alerts_that_would_fire() -> None:
    engine, ts_ms = sample_engine()
    result = what_if(capture_market(engine.market), engine.book.copy(), PARAMS,
                     account="solo", desk=None, timeframe="1h",
                     orders=[WhatIfOrder(symbol="AAA", qty=3.0), WhatIfOrder(symbol="BBB",
                                                                           qty=3.0)],
                     ts_ms=ts_ms, thresholds=AlertThresholds())
    delta = result.delta
    crossed = {c.cluster: c.crossed_up for c in delta.clusters}
    assert crossed.get("AAA") == [0.20, 0.25] or crossed.get("BBB") == [0.20, 0.25]
    assert {p.symbol for p in delta.positions} == {"AAA", "BBB", "FFF"}
    new = [a for a in delta.alert_changes if a.kind == "cluster_concentration"]
    assert new and all(a.state == "firing" for a in new)
    assert {a.severity for a in new} == {"critical"}
    assert delta.effective_bets.after is not None
    assert delta.liq_distance_pct.after == pytest.approx(100 * result.after.liq_distance)


@pytest.mark.parametrize(("account", "desk", "orders", "reason"), [
    ("nobody", None, {"AAA": 1.0}, "unknown account"),
    (None, "nodesk", {"AAA": 1.0}, "unknown desk"),
    ("solo", "d1", {"AAA": 1.0}, "not a member"),
    ("a1", None, {"ZZZ": 1.0}, "unknown symbol"),
    ("a1", None, {"AAA": 1e9}, "times the book's equity"),
])
def test_unanswerable_what_ifs_say_why(account: str | None, desk: str | None,
                                       orders: dict[str, float], reason: str) -> None:
    engine, ts_ms = sample_engine()
    with pytest.raises(WhatIfError, match=reason):
        what_if(capture_market(engine.market), engine.book.copy(), PARAMS, account=account,
                desk=desk, timeframe="1h",
                orders=[WhatIfOrder(symbol=s, qty=q) for s, q in orders.items()], ts_ms=ts_ms)


def test_a_market_copy_reuses_statistics_until_a_bar_closes() -> None:
    engine, ts_ms = sample_engine()
    first = capture_market(engine.market)
    engine.on_price("AAA", ts_ms + 1, 123.0)
    second = capture_market(engine.market, first)
    assert second.stats is first.stats and second.last_price[0] == 123.0
    assert first.last_price[0] != 123.0
    engine.on_price("AAA", ts_ms + 60_000, 124.0)  # closes a bar
    third = capture_market(engine.market, second)
    assert third.stats is not second.stats and third.bar_ms != second.bar_ms
