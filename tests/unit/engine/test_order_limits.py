"""Order limits against the engine itself (the oracle): booked at its limit, an order leaves
the binding cluster on the line (within 1e-9) in the engine's own frame, and the smallest
step more (1e-9 of the limit) takes it over; no alerting timeframe has it over."""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pytest

from heatmap.engine.alerts import AlertThresholds
from heatmap.engine.engine import HeatEngine
from heatmap.engine.limits import share_limit
from heatmap.engine.market_view import capture_market
from heatmap.engine.whatif import DESK_ORDERS_ACCOUNT, MAX_ORDER_LEVERAGE, what_if
from heatmap.schema import Frame, OrderLimit, WhatIfOrder
from support.sample_books import PARAMS, sample_engine

LINE_TOLERANCE = 1e-9
STEP = 1e-9  # the smallest step of a limit, relative to it

TARGETS = {"account": ("a1", None), "desk member": ("a2", "d1"), "desk": (None, "d1")}
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]


@cache
def _engine() -> tuple[HeatEngine, int]:
    return sample_engine()


def _frames_with(account: str | None, desk: str | None, symbol: str, qty: float
                 ) -> dict[str, Frame]:
    """The oracle: ``qty`` booked in (a copy of) the engine, its frames per timeframe."""
    engine, ts_ms = _engine()
    engine = copy.deepcopy(engine)
    member = DESK_ORDERS_ACCOUNT if account is None else account
    if member == DESK_ORDERS_ACCOUNT:
        engine.on_account(member, ts_ms, 0.0, desk)
    entry = engine.book.entries(member).get((symbol, ""))
    engine.on_position(member, symbol, ts_ms, (entry.qty if entry else 0.0) + qty, None,
                       entry.conviction if entry else None)
    key = (None, desk) if desk else (account, None)
    return dict(zip(PARAMS.timeframes, engine.frames_for(key, ts_ms, "position"), strict=True))


def _limit(account: str | None, desk: str | None, symbol: str, qty: float,
           thresholds: AlertThresholds | None = None) -> OrderLimit:
    engine, ts_ms = _engine()
    result = what_if(capture_market(engine.market), engine.book.copy(), PARAMS,
                     account=account, desk=desk, timeframe="1h",
                     orders=[WhatIfOrder(symbol=symbol, qty=qty)], ts_ms=ts_ms,
                     thresholds=thresholds, identities=copy.deepcopy(engine.clusters))
    return result.limits[0]


def _concentration_of(frame: Frame, symbol: str) -> float:
    return next(row.concentration for row in frame.clusters if symbol in row.members)


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["buy", "sell"])
@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("target", TARGETS, ids=list(TARGETS))
def test_at_the_limit_the_line_is_met_and_one_step_more_crosses_it(target: str, symbol: str,
                                                                   sign: float) -> None:
    account, desk = TARGETS[target]
    limit = _limit(account, desk, symbol, sign)
    line = AlertThresholds().cluster_concentration_critical
    assert limit.line == line
    assert limit.limited_by == "line", limit  # 1000 x equity of one coin always binds here
    assert limit.max_qty is not None and limit.timeframe is not None
    assert limit.max_qty * sign >= 0.0
    if limit.max_qty == 0.0:
        # The symbol's cluster is over the line already: no size in this direction helps.
        frames = _frames_with(account, desk, symbol, sign * 1e-6)
        assert _concentration_of(frames[limit.timeframe], symbol) > line
        return
    at_limit = _frames_with(account, desk, symbol, limit.max_qty)
    binding = at_limit[limit.timeframe]
    assert _concentration_of(binding, symbol) == pytest.approx(line, abs=LINE_TOLERANCE)
    assert limit.concentration == pytest.approx(line, abs=LINE_TOLERANCE)
    assert limit.cluster == next(r.cluster for r in binding.clusters if symbol in r.members)
    for frame in at_limit.values():
        assert _concentration_of(frame, symbol) <= line + LINE_TOLERANCE
    beyond = _frames_with(account, desk, symbol, limit.max_qty * (1.0 + STEP))
    assert _concentration_of(beyond[limit.timeframe], symbol) > line


def test_a_desk_line_and_alerting_timeframes_are_the_desks() -> None:
    loose = AlertThresholds(cluster_concentration_warning=0.3, cluster_concentration_critical=0.5,
                            timeframes=("1h",))
    limit = _limit("a1", None, "DDD", 1.0, loose)
    assert (limit.line, limit.timeframe) == (0.5, "1h")
    frames = _frames_with("a1", None, "DDD", limit.max_qty or 0.0)
    assert _concentration_of(frames["1h"], "DDD") == pytest.approx(0.5, abs=LINE_TOLERANCE)
    assert limit.max_qty is not None and limit.max_qty > _limit("a1", None, "DDD", 1.0).max_qty


def test_a_book_without_equity_has_no_limit() -> None:
    engine, ts_ms = _engine()
    engine = copy.deepcopy(engine)
    engine.on_position("unfunded", "AAA", ts_ms, 1.0, None, None)  # no equity reported
    result = what_if(capture_market(engine.market), engine.book.copy(), PARAMS,
                     account="unfunded", desk=None, timeframe="1h",
                     orders=[WhatIfOrder(symbol="BBB", qty=1.0)], ts_ms=ts_ms)
    assert (result.limits[0].max_qty, result.limits[0].limited_by) == (None, "no_equity")


def test_share_limit_is_the_bound_when_no_line_binds() -> None:
    # Two uncorrelated symbols: a hedge-free book of 0.1 each; a line of 2000 never binds.
    shares, rho = np.array([0.1, 0.1]), np.eye(2)
    found = share_limit(shares, 0, 1.0, {"1h": rho}, 0.5, 2000.0, MAX_ORDER_LEVERAGE)
    assert (found.share, found.timeframe, found.members.size) == (MAX_ORDER_LEVERAGE, None, 0)
    # With a line of 0.25 the symbol alone reaches it at a share of 0.25: a move of 0.15.
    found = share_limit(shares, 0, 1.0, {"1h": rho, "4h": rho}, 0.5, 0.25,
                        MAX_ORDER_LEVERAGE)
    assert found.share == pytest.approx(0.15, abs=1e-12)
    assert (found.timeframe, found.members.tolist()) == ("1h", [0])
