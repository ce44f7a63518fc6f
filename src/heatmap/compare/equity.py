"""Mark-to-market equity of one book over a price path, and when it is liquidated.

All amounts are in the settlement currency (the currency prices are quoted in).
A trade moves cash and position value by the same amount, so equity does not
jump at a trade: ``equity_t = equity_0 + sum_i q_i dP_i`` summed over every
price change while ``q_i`` was held, realised P&L staying in the cash of the
symbol it was made in. Per symbol, ``pnl_i = q_i P_i - cost_i`` with ``cost_i``
the sum of ``dq P`` of its trades, so equity is ``equity_0 + sum_i pnl_i``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class MarkToMarket:
    """Cash, quantities and per-symbol P&L of one book.

    Parameters
    ----------
    equity_0 : float
        Equity before the first trade.
    maintenance_rate : float
        Maintenance margin as a fraction of gross notional (SPEC 4).
    """

    equity_0: float
    maintenance_rate: float
    qty: dict[str, float] = field(default_factory=dict)
    # Sum of dq * price per symbol: what its positions cost, net of what selling raised.
    cost: dict[str, float] = field(default_factory=dict)
    # Quantity bought before the symbol had a price: booked at its first price.
    unbooked: dict[str, float] = field(default_factory=dict)

    def trade(self, symbol: str, qty: float, price: float) -> None:
        """Move the position in ``symbol`` to ``qty`` at ``price`` (NaN: not priced yet)."""
        change = qty - self.qty.get(symbol, 0.0)
        if change == 0.0:
            return
        if math.isnan(price):
            self.unbooked[symbol] = self.unbooked.get(symbol, 0.0) + change
        else:
            self.cost[symbol] = self.cost.get(symbol, 0.0) + change * price
        if qty == 0.0:
            self.qty.pop(symbol, None)
        else:
            self.qty[symbol] = qty

    def book_unpriced(self, prices: dict[str, float]) -> None:
        """Book trades made before a symbol's first price at that price, once it has one."""
        for symbol in [s for s in self.unbooked if not math.isnan(prices.get(s, math.nan))]:
            self.cost[symbol] = (self.cost.get(symbol, 0.0)
                                 + self.unbooked.pop(symbol) * prices[symbol])

    def pnl_by_symbol(self, prices: dict[str, float]) -> dict[str, float]:
        """P&L since the start per symbol ever traded (unpriced symbols: 0 so far)."""
        pnl = {}
        for symbol, cost in self.cost.items():
            price = prices.get(symbol, math.nan)
            held = self.qty.get(symbol, 0.0) - self.unbooked.get(symbol, 0.0)
            pnl[symbol] = (held * price if held else 0.0) - cost
        return pnl

    def equity(self, prices: dict[str, float]) -> float:
        return self.equity_0 + sum(self.pnl_by_symbol(prices).values())

    def gross_notional(self, prices: dict[str, float]) -> float:
        """``sum |q_i| P_i`` over priced holdings."""
        return sum(abs(qty) * prices[symbol] for symbol, qty in self.qty.items()
                   if not math.isnan(prices.get(symbol, math.nan)))

    def maintenance_margin(self, prices: dict[str, float]) -> float:
        return self.maintenance_rate * self.gross_notional(prices)

    def holds(self) -> bool:
        return bool(self.qty)

    def is_liquidated(self, prices: dict[str, float]) -> bool:
        """Whether a book holding positions is at or below its maintenance margin."""
        return self.holds() and self.equity(prices) <= self.maintenance_margin(prices)

    def flatten(self, prices: dict[str, float]) -> None:
        """Close everything at ``prices`` (a liquidation): equity stays what it was."""
        for symbol in list(self.qty):
            self.trade(symbol, 0.0, prices.get(symbol, math.nan))


def equity_for_leverage(gross_notional: float, leverage: float) -> float:
    """The equity at which ``gross_notional`` is ``leverage`` times equity."""
    if not leverage > 0.0:
        raise ValueError(f"leverage must be positive, not {leverage}")
    return gross_notional / leverage
