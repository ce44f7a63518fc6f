"""Price conflation keeps at most one update per symbol per window and never the stale one."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap.ingest.conflation import Conflator
from heatmap.schema import Price, ms_to_datetime


def _price(symbol: str, ts_ms: int, value: float) -> Price:
    return Price(symbol=symbol, ts=ms_to_datetime(ts_ms), price=value, source="t")


def test_holds_back_within_the_window_and_sends_the_latest_later() -> None:
    conflator = Conflator(window_ms=1000)
    assert conflator.offer(_price("BTC", 0, 1.0)) == [_price("BTC", 0, 1.0)]
    assert conflator.offer(_price("BTC", 300, 2.0)) == []
    assert conflator.offer(_price("BTC", 600, 3.0)) == []
    # Another symbol's price after the window releases BTC's newest held price.
    released = conflator.offer(_price("ETH", 1200, 10.0))
    assert [p.price for p in released] == [3.0, 10.0]
    assert conflator.conflated == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 50)), max_size=200),
       st.integers(1, 500))
def test_rate_bound_and_last_price_kept(steps, window_ms) -> None:
    conflator = Conflator(window_ms)
    now, sent, last_offered = 0, [], {}
    for n, (symbol, gap_ms) in enumerate(steps):
        now += gap_ms
        price = _price(symbol, now, float(n + 1))
        last_offered[symbol] = price.price
        sent.extend((now, p) for p in conflator.offer(price))
    drained = conflator.drain()
    for symbol in last_offered:
        mine = [(at, p) for at, p in sent if p.symbol == symbol]
        mine += [(None, p) for p in drained if p.symbol == symbol]
        assert mine[-1][1].price == last_offered[symbol]  # the true last price goes out
        # Sends of one symbol before the final drain are at least a window apart.
        times = [at for at, _ in mine if at is not None]
        assert all(b - a >= window_ms for a, b in itertools.pairwise(times))
