"""The input messages: ``prices``, ``positions`` and ``accounts``.

Each validates itself when decoded (:func:`heatmap.schema.codec.decode`): bounds in
the ``Meta`` annotations, finite numbers and valid names in ``__post_init__``.
Prices and equity are in the settlement currency, quantities in units of the symbol.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

import msgspec

from heatmap.schema.names import Name, Symbol, require_names, valid_name


def require_finite(**values: float | None) -> None:
    """Raise ValueError naming the first field whose number (None: absent) is NaN or
    infinite."""
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number")


class Price(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``prices`` (key = symbol): one observed price."""

    symbol: Symbol
    ts: datetime
    price: Annotated[float, msgspec.Meta(gt=0)]
    source: Name
    bid: Annotated[float, msgspec.Meta(gt=0)] | None = None
    ask: Annotated[float, msgspec.Meta(gt=0)] | None = None

    def __post_init__(self) -> None:
        # The hot path of every tick: the checks inline, the helpers only to say why.
        bid, ask = self.bid, self.ask
        if not (math.isfinite(self.price) and (bid is None or math.isfinite(bid))
                and (ask is None or math.isfinite(ask))):
            require_finite(price=self.price, bid=bid, ask=ask)
        if not (valid_name(self.symbol) and valid_name(self.source)):
            require_names(symbol=self.symbol, source=self.source)


class Position(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``positions`` (key = account): the latest per (account, symbol, strategy) is the position."""

    account: Name
    symbol: Symbol
    ts: datetime
    qty: float
    strategy: Name | None = None
    conviction: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    entry_price: Annotated[float, msgspec.Meta(gt=0)] | None = None
    leverage: Annotated[float, msgspec.Meta(gt=0)] | None = None
    desk: Name | None = None
    source: Name | None = None

    def __post_init__(self) -> None:
        require_finite(qty=self.qty, entry_price=self.entry_price, leverage=self.leverage)
        require_names(account=self.account, symbol=self.symbol, strategy=self.strategy,
                      desk=self.desk, source=self.source)


class Account(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``accounts`` (key = account): equity and margin terms of one account."""

    account: Name
    ts: datetime
    equity: float
    desk: Name | None = None
    maintenance_rate: Annotated[float, msgspec.Meta(ge=0, lt=1)] | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"\A[A-Z0-9]{2,12}\Z")] | None = None

    def __post_init__(self) -> None:
        require_finite(equity=self.equity)
        require_names(account=self.account, desk=self.desk)
