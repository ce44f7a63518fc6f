"""Positions from ccxt derivatives positions, hedge-mode legs netted (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from heatmap.ingest.exchanges.payload import (
    as_utc,
    finite_number,
    ms_to_datetime,
    normalise_symbol,
    positive_number,
)
from heatmap.schema import Position


def position_to_message(exchange_id: str, account: str, position: Mapping[str, Any],
                        desk: str | None = None, *, ts: datetime | None = None) -> Position:
    """Our position for one ccxt unified position (one leg in hedge mode).

    Parameters
    ----------
    exchange_id : str
        Becomes ``source``.
    account : str
        Our account name.
    position : Mapping
        ccxt position (``parse_position`` / ``fetch_positions`` item).
    desk : str, optional
        Desk of the account.
    ts : datetime, optional
        Observation time; defaults to the position's last update time.

    Returns
    -------
    Position
        ``qty`` in base units, signed: ``contracts * contractSize``, negative for
        the short side, 0.0 for a flat position; ``entry_price`` and ``leverage``
        when positive; ``strategy`` None.

    Raises
    ------
    ValueError
        A non-zero position without side or contract size (the sign or size
        would be a guess), or no time at all.
    """
    symbol = position.get("symbol")
    if not symbol:
        raise ValueError(f"{exchange_id} position without symbol")
    contracts = abs(finite_number(position.get("contracts")) or 0.0)
    side = position.get("side")
    contract_size = positive_number(position.get("contractSize"))
    if contracts and (side not in ("long", "short") or contract_size is None):
        raise ValueError(f"{exchange_id} {symbol}: open position without side or contract size")
    qty_base = contracts * (contract_size or 1.0)
    qty = (-qty_base if side == "short" else qty_base) + 0.0  # + 0.0: never emit -0.0
    when = as_utc(ts) or ms_to_datetime(position.get("lastUpdateTimestamp")) \
        or ms_to_datetime(position.get("timestamp"))
    if when is None:
        raise ValueError(f"{exchange_id} {symbol}: position without time; pass ts")
    return Position(account=account, symbol=normalise_symbol(symbol), ts=when, qty=qty,
                    entry_price=positive_number(position.get("entryPrice")),
                    leverage=positive_number(position.get("leverage")), desk=desk,
                    source=exchange_id)


def positions_to_messages(exchange_id: str, account: str,
                          positions: Iterable[Mapping[str, Any]], desk: str | None = None, *,
                          ts: datetime | None = None) -> list[Position]:
    """One net position per symbol from ccxt positions.

    In hedge mode an exchange reports a long and a short leg per symbol; our
    contract keeps one position per (account, symbol, strategy), so the legs are
    netted. The net keeps the entry price only when a single leg is open (a
    blended entry of opposite legs means nothing) and the highest leverage.
    """
    legs: dict[str, list[Position]] = {}
    for raw in positions:
        leg = position_to_message(exchange_id, account, raw, desk, ts=ts)
        legs.setdefault(leg.symbol, []).append(leg)
    return [_net(symbol_legs) for symbol_legs in legs.values()]


def _net(legs: list[Position]) -> Position:
    if len(legs) == 1:
        return legs[0]
    open_legs = [leg for leg in legs if leg.qty != 0.0]
    leverages = [leg.leverage for leg in legs if leg.leverage is not None]
    first = legs[0]
    return Position(account=first.account, symbol=first.symbol,
                    ts=max(leg.ts for leg in legs), qty=math.fsum(leg.qty for leg in legs) + 0.0,
                    entry_price=open_legs[0].entry_price if len(open_legs) == 1 else None,
                    leverage=max(leverages) if leverages else None, desk=first.desk,
                    source=first.source)
