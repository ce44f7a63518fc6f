"""Pre-trade what-if: a book's frame before and after proposed orders, and what changes.

Runs on copies (a :class:`~heatmap.engine.market_view.MarketView` and a
:class:`~heatmap.engine.book.PositionBook` copy) and makes frames exactly as the
engine does (:mod:`heatmap.engine.frames`): the "after" frame is the frame the
engine itself would make once the orders' positions were applied at the same
moment. Alerts are judged by fresh alert machines with the book's thresholds,
never by the live monitor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np

from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.engine.book import PositionBook
from heatmap.engine.frames import MarketReader, book_frames, book_snapshot
from heatmap.engine.identity import ClusterIdentities
from heatmap.engine.limits import share_limit
from heatmap.engine.params import EngineParams
from heatmap.schema import (
    Alert,
    BookKind,
    Change,
    ClusterChange,
    ClusterRow,
    Frame,
    OrderLimit,
    PositionChange,
    PositionRow,
    WhatIf,
    WhatIfDelta,
    WhatIfOrder,
    ms_to_rfc3339,
)

# The member a desk-only what-if books its orders on: no valid name is empty, so it
# never meets a real account.
DESK_ORDERS_ACCOUNT = ""
# An order whose notional exceeds this many times the book's equity is refused.
MAX_ORDER_LEVERAGE = 1000.0


class WhatIfError(ValueError):
    """A what-if that cannot be answered; ``str()`` says why. ``not_found``: the book or
    a symbol is unknown (as opposed to a request that is wrong as given)."""

    def __init__(self, reason: str, *, not_found: bool = False) -> None:
        super().__init__(reason)
        self.not_found = not_found


@dataclass(frozen=True)
class Target:
    """Which frame a what-if shows and which account its orders are booked on."""

    book_kind: BookKind
    book: str
    members: list[str]
    order_account: str
    account: str | None  # the frame's account (None for a desk frame)
    desk: str | None  # the frame's desk


def target(book: PositionBook, account: str | None, desk: str | None) -> Target:
    """Resolve a request's ``account`` / ``desk`` (see :class:`heatmap.schema.WhatIfRequest`)."""
    if desk is None:
        if account is None:
            raise WhatIfError("give an account or a desk")
        if account not in book.accounts:
            raise WhatIfError(f"unknown account {account!r}", not_found=True)
        return Target("account", account, [account], account, account, book.desk_of(account))
    if desk not in book.desks:
        raise WhatIfError(f"unknown desk {desk!r}", not_found=True)
    members = book.members(desk)
    if account is None:
        return Target("desk", desk, [DESK_ORDERS_ACCOUNT, *members], DESK_ORDERS_ACCOUNT,
                      None, desk)
    if account not in members:
        raise WhatIfError(f"account {account!r} is not a member of desk {desk!r}",
                          not_found=True)
    return Target("desk", desk, members, account, None, desk)


def book_orders(book: PositionBook, chosen: Target, orders: Sequence[WhatIfOrder],
                ts_ms: int) -> PositionBook:
    """A copy of the target's accounts with ``orders`` booked (book itself unchanged).

    Orders change the account's position without a strategy (summed per symbol);
    a desk-only what-if books them on a new member with no equity.
    """
    return booked(book, chosen, summed(orders))


def booked(book: PositionBook, chosen: Target, quantities: dict[str, float]) -> PositionBook:
    """A copy of the target's accounts with ``quantities`` (units per symbol) booked."""
    after = book.copy(chosen.members)
    if chosen.order_account == DESK_ORDERS_ACCOUNT:
        after.set_terms(DESK_ORDERS_ACCOUNT, 0.0, chosen.desk, None)
    entries = after.entries(chosen.order_account)
    for symbol, qty in quantities.items():
        entry = entries.get((symbol, ""))
        after.set_position(chosen.order_account, symbol, None,
                           (entry.qty if entry else 0.0) + qty,
                           entry.conviction if entry else None)
    return after


def summed(orders: Sequence[WhatIfOrder]) -> dict[str, float]:
    """Quantity per symbol (orders of one symbol add up), in first-seen order."""
    total: dict[str, float] = {}
    for order in orders:
        total[order.symbol] = total.get(order.symbol, 0.0) + order.qty
    return total


def book_frame(book: PositionBook, chosen: Target, market: MarketReader, params: EngineParams,
               timeframe: str, ts_ms: int, identities: ClusterIdentities | None = None
               ) -> Frame:
    """The target's frame of ``timeframe`` over ``book`` at the market's prices; its
    clusters keep the names of the book's latest frames in ``identities`` (read only)."""
    holdings = book.holdings(chosen.members, params.zero_tol)
    taken = book_snapshot(holdings, market, account=chosen.account, desk=chosen.desk,
                          ts_ms=ts_ms, trigger="position")
    if taken is None:
        raise WhatIfError(f"{chosen.book_kind} {chosen.book!r} holds positions without "
                          "positive equity: its heat is undefined")
    snapshot, slots = taken
    return book_frames(snapshot, slots, market, params, [timeframe],
                       identities=identities)[0]


def what_if(market: MarketReader, book: PositionBook, params: EngineParams, *,
            account: str | None, desk: str | None, timeframe: str,
            orders: Sequence[WhatIfOrder], ts_ms: int,
            thresholds: AlertThresholds | None = None,
            before: Frame | None = None,
            identities: ClusterIdentities | None = None) -> WhatIf:
    """The frame of a book before and after ``orders`` at the market's prices, stamped
    ``ts_ms`` (epoch ms), and what changes.

    ``book``: a position book not shared with a running engine (only read).
    ``before``: the before frame, when already computed for this market and book.
    ``identities``: the engine's cluster names (a copy), so both frames name clusters as
    the engine would.
    Raises WhatIfError for an unknown book, timeframe or symbol, or an absurd order.
    """
    if timeframe not in params.timeframes:
        raise WhatIfError(f"unknown timeframe {timeframe!r}; the engine's are "
                          + ", ".join(params.timeframes), not_found=True)
    chosen = target(book, account, desk)
    for symbol in summed(orders):
        if symbol not in market.slots:
            raise WhatIfError(f"unknown symbol {symbol!r}: the engine has no price for it",
                              not_found=True)
    if before is None:
        before = book_frame(book, chosen, market, params, timeframe, ts_ms, identities)
    limit = MAX_ORDER_LEVERAGE * max(before.equity, 0.0)
    for symbol, qty in summed(orders).items():
        notional = abs(qty * float(market.last_price[market.slots[symbol]]))
        if notional > limit:
            raise WhatIfError(f"order of {qty:g} {symbol} is {notional:.4g} in notional, more "
                              f"than {MAX_ORDER_LEVERAGE:g} times the book's equity "
                              f"({before.equity:.4g})")
    after = book_frame(book_orders(book, chosen, orders, ts_ms), chosen, market, params,
                       timeframe, ts_ms, identities)
    limits = thresholds or AlertThresholds()
    return WhatIf(book_kind=chosen.book_kind, book=chosen.book, timeframe=timeframe,
                  ts=ms_to_rfc3339(ts_ms), orders=list(orders), before=before, after=after,
                  delta=frame_delta(before, after, limits),
                  limits=order_limits(market, book, chosen, params, orders, ts_ms, limits,
                                      identities))


def order_limits(market: MarketReader, book: PositionBook, chosen: Target,
                 params: EngineParams, orders: Sequence[WhatIfOrder], ts_ms: int,
                 thresholds: AlertThresholds,
                 identities: ClusterIdentities | None = None) -> list[OrderLimit]:
    """For each order (alone, on the book as it is), the largest quantity in its direction
    that keeps every cluster it moves at or under the desk's critical concentration on
    each alerting timeframe; see :class:`heatmap.schema.OrderLimit`."""
    line = thresholds.cluster_concentration_critical
    timeframes = [tf for tf in params.timeframes
                  if thresholds.timeframes is None or tf in thresholds.timeframes]
    holdings = book.holdings(chosen.members, params.zero_tol)
    taken = book_snapshot(holdings, market, account=chosen.account, desk=chosen.desk,
                          ts_ms=ts_ms, trigger="position")
    if holdings.equity is None or taken is None or not timeframes:
        return [OrderLimit(symbol=order.symbol, max_qty=None, limited_by="no_equity",
                           line=line, timeframe=None, cluster=None, members=[],
                           concentration=None) for order in orders]
    snapshot, _ = taken
    equity = snapshot.equity
    found = []
    # Orders of one symbol and direction have one limit: computed once (several frames'
    # worth of clustering each).
    known: dict[tuple[str, bool], OrderLimit] = {}
    for order in orders:
        same = known.get((order.symbol, order.qty < 0.0))
        if same is not None:
            found.append(same)
            continue
        symbols = list(snapshot.symbols)
        if order.symbol not in symbols:
            symbols.append(order.symbol)
        slots = np.array([market.slots[s] for s in symbols], dtype=np.int64)
        price = market.last_price[slots]
        qty = np.zeros(len(symbols))
        qty[:len(snapshot.symbols)] = snapshot.qty
        index = symbols.index(order.symbol)
        direction = -1.0 if order.qty < 0.0 else 1.0
        limit = share_limit(qty * price / equity, index, direction,
                            {tf: market.correlation(tf, slots) for tf in timeframes},
                            params.rho_min, line, MAX_ORDER_LEVERAGE)
        max_qty = direction * limit.share * equity / float(price[index])
        if limit.timeframe is None:
            answer = OrderLimit(symbol=order.symbol, max_qty=max_qty, limited_by="order_bound",
                                line=line, timeframe=None, cluster=None, members=[],
                                concentration=None)
        else:
            members = [symbols[i] for i in limit.members.tolist()]
            cluster = _binding_cluster(book, chosen, market, params, limit.timeframe, ts_ms,
                                       order.symbol, max_qty, members, identities)
            answer = OrderLimit(
                symbol=order.symbol, max_qty=max_qty, limited_by="line", line=line,
                timeframe=limit.timeframe, cluster=cluster.cluster if cluster else None,
                members=list(cluster.members) if cluster else members,
                concentration=cluster.concentration if cluster else None)
        known[(order.symbol, order.qty < 0.0)] = answer
        found.append(answer)
    return found


def _binding_cluster(book: PositionBook, chosen: Target, market: MarketReader,
                     params: EngineParams, timeframe: str, ts_ms: int, symbol: str,
                     max_qty: float, members: list[str],
                     identities: ClusterIdentities | None) -> ClusterRow | None:
    """The binding cluster as the engine's frame names it once the limit is booked (the
    cluster holding the symbol, else the one holding its cluster mates: a limit of 0 on a
    symbol not held leaves it out of the frame)."""
    frame = book_frame(booked(book, chosen, {symbol: max_qty}), chosen, market, params,
                       timeframe, ts_ms, identities)
    for wanted in (symbol, *members):
        for row in frame.clusters:
            if wanted in row.members:
                return row
    return None


def change(before: float | None, after: float | None) -> Change:
    delta = None if before is None or after is None else after - before
    return Change(before=before, after=after, delta=delta)


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _min_sigma(frame: Frame) -> float | None:
    sigmas = [c.liq_sigma for c in frame.clusters if c.liq_sigma is not None]
    return min(sigmas) if sigmas else None


def frame_delta(before: Frame, after: Frame, thresholds: AlertThresholds) -> WhatIfDelta:
    """The changes from ``before`` to ``after`` (two frames of one book and timeframe)."""
    lines = (thresholds.cluster_concentration_warning, thresholds.cluster_concentration_critical)
    return WhatIfDelta(
        gross=change(before.gross, after.gross), net=change(before.net, after.net),
        correlated_exposure=change(before.correlated_exposure, after.correlated_exposure),
        stress_exposure=change(before.stress_exposure, after.stress_exposure),
        effective_bets=change(before.effective_bets, after.effective_bets),
        hhi=change(before.hhi, after.hhi),
        max_cluster_concentration=change(before.max_cluster_concentration,
                                         after.max_cluster_concentration),
        liq_distance=change(before.liq_distance, after.liq_distance),
        liq_distance_pct=change(_pct(before.liq_distance), _pct(after.liq_distance)),
        min_liq_sigma=change(_min_sigma(before), _min_sigma(after)),
        var99_1d=change(before.var99_1d, after.var99_1d),
        positions=_position_changes(before.positions, after.positions),
        clusters=_cluster_changes(before.clusters, after.clusters, lines),
        alert_changes=_alerts(before, after, thresholds),
        alerts_after=_alerts(None, after, thresholds))


def _position_changes(before: list[PositionRow], after: list[PositionRow]
                      ) -> list[PositionChange]:
    old = {row.symbol: row for row in before}
    new = {row.symbol: row for row in after}
    changes = []
    for symbol in sorted(old.keys() | new.keys()):
        was, now = old.get(symbol), new.get(symbol)

        def pair(field: str, was: PositionRow | None = was, now: PositionRow | None = now
                 ) -> Change:
            return change(None if was is None else getattr(was, field),
                          None if now is None else getattr(now, field))

        changes.append(PositionChange(
            symbol=symbol, qty=pair("qty"), notional=pair("notional"), share=pair("share"),
            heat=pair("heat"), heat_share=pair("heat_share"),
            risk_contribution=pair("risk_contribution"),
            cluster_before=None if was is None else was.cluster,
            cluster_after=None if now is None else now.cluster))
    return changes


def _cluster_changes(before: list[ClusterRow], after: list[ClusterRow],
                     lines: tuple[float, ...]) -> list[ClusterChange]:
    old = {row.cluster: row for row in before}
    new = {row.cluster: row for row in after}
    changes = []
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        was_k = 0.0 if was is None else was.concentration
        now_k = 0.0 if now is None else now.concentration
        changes.append(ClusterChange(
            cluster=name, members_before=[] if was is None else was.members,
            members_after=[] if now is None else now.members,
            concentration=change(None if was is None else was_k,
                                 None if now is None else now_k),
            net=change(None if was is None else was.net, None if now is None else now.net),
            liq_distance=change(None if was is None else was.liq_distance,
                                None if now is None else now.liq_distance),
            liq_sigma=change(None if was is None else was.liq_sigma,
                             None if now is None else now.liq_sigma),
            crossed_up=[line for line in lines if was_k < line <= now_k],
            crossed_down=[line for line in lines if now_k < line <= was_k]))
    return changes


def _alerts(before: Frame | None, after: Frame, thresholds: AlertThresholds) -> list[Alert]:
    """Transitions of fresh alert machines (no debounce) that saw ``before``, on ``after``."""
    monitor = AlertMonitor(msgspec.structs.replace(thresholds, min_frames=1))
    if before is not None:
        monitor.observe(before)
    return monitor.observe(after)
