"""Prices from ccxt tickers and trades (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from heatmap.ingest.exchanges.payload import (
    as_utc,
    ms_to_datetime,
    normalise_symbol,
    positive_number,
)
from heatmap.schema import Price


def ticker_to_price(exchange_id: str, ticker: Mapping[str, Any], *,
                    fallback_ts: datetime | None = None) -> Price | None:
    """A price from a ccxt unified ticker.

    Parameters
    ----------
    exchange_id : str
        Becomes the message's ``source``.
    ticker : Mapping
        ccxt ticker (``parse_ticker`` / ``fetch_tickers`` value).
    fallback_ts : datetime, optional
        Observation time when the ticker has none: Bybit's and Kraken's REST
        tickers carry no per-ticker time, so the caller passes when it asked.

    Returns
    -------
    Price or None
        ``price`` is the last trade, else the bid/ask mid; bid and ask are carried
        when positive. None when there is no positive price or no time.
    """
    symbol = ticker.get("symbol")
    if not symbol:
        return None
    bid = positive_number(ticker.get("bid"))
    ask = positive_number(ticker.get("ask"))
    price = positive_number(ticker.get("last"))
    if price is None and bid is not None and ask is not None:
        price = (bid + ask) / 2.0
    ts = ms_to_datetime(ticker.get("timestamp")) or as_utc(fallback_ts)
    if price is None or ts is None:
        return None
    return Price(symbol=normalise_symbol(symbol), ts=ts, price=price, source=exchange_id,
                 bid=bid, ask=ask)


def trade_to_price(exchange_id: str, trade: Mapping[str, Any]) -> Price:
    """A price from a ccxt unified trade (its price and execution time).

    Raises
    ------
    ValueError
        When the trade lacks a symbol, a positive price or a timestamp.
    """
    symbol = trade.get("symbol")
    price = positive_number(trade.get("price"))
    ts = ms_to_datetime(trade.get("timestamp"))
    if not symbol or price is None or ts is None:
        raise ValueError(f"{exchange_id} trade without symbol, positive price or time")
    return Price(symbol=normalise_symbol(symbol), ts=ts, price=price, source=exchange_id)
