"""Account equity and spot holdings from ccxt balances (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from heatmap.ingest.exchanges.payload import (
    SPOT_EXCHANGES,
    as_utc,
    finite_number,
    ms_to_datetime,
)
from heatmap.schema import Account, Position


def _binance_margin_balance(info: object, settlement: str) -> float | None:
    """USDⓈ-M ``GET /fapi/v*/account``: the settlement asset's ``marginBalance``."""
    if not isinstance(info, Mapping):
        return None
    for asset in info.get("assets") or ():
        if isinstance(asset, Mapping) and asset.get("asset") == settlement:
            return finite_number(asset.get("marginBalance"))
    return None


def _bybit_coin_equity(info: object, settlement: str) -> float | None:
    """v5 ``GET /v5/account/wallet-balance``: the settlement coin's ``equity``."""
    if not isinstance(info, Mapping):
        return None
    result = info.get("result")
    accounts = result.get("list") if isinstance(result, Mapping) else None
    for entry in accounts or ():
        for coin in (entry.get("coin") or ()) if isinstance(entry, Mapping) else ():
            if isinstance(coin, Mapping) and coin.get("coin") == settlement:
                return finite_number(coin.get("equity"))
    return None


# The exchange's own margin balance (wallet balance + unrealised PnL) of the settlement
# currency, read from the raw response ccxt keeps in ``info``.
_REPORTED_EQUITY: dict[str, Callable[[object, str], float | None]] = {
    "binance": _binance_margin_balance,
    "bybit": _bybit_coin_equity,
}


def balance_to_account(exchange_id: str, account: str, balance: Mapping[str, Any],
                       settlement: str = "USDT", desk: str | None = None, *,
                       prices: Mapping[str, float] | None = None,
                       ts: datetime | None = None) -> Account:
    """Our account message (equity in the settlement currency) for a ccxt balance.

    Derivatives accounts (Binance USDⓈ-M, Bybit linear): equity is the
    exchange's reported *margin balance* of the settlement currency — wallet
    balance plus unrealised PnL — from ``info`` (Binance ``assets[].marginBalance``,
    Bybit ``coin[].equity``), because that is what margin calls are measured
    against and it moves with open positions; ccxt's unified ``total`` is used
    only when ``info`` lacks it (for Bybit it is the wallet balance without
    unrealised PnL). Collateral in other currencies is not converted (the
    deployment has one settlement currency), so multi-asset margin is
    understated, which overstates heat rather than hiding it.

    Spot accounts (Kraken): equity is the settlement cash plus every holding
    whose ``BASE+settlement`` symbol is in ``prices``, at that price; holdings
    without a price are left out.

    Parameters
    ----------
    exchange_id : str
        ccxt id; selects the ``info`` reader and spot/derivatives rule.
    account : str
        Our account name.
    balance : Mapping
        ccxt balance (``parse_balance`` / ``fetch_balance`` result).
    settlement : str
        Settlement currency code (ccxt code, e.g. ``USDT``).
    desk : str, optional
        Desk of the account.
    prices : Mapping[str, float], optional
        Our symbol -> price, for valuing spot holdings.
    ts : datetime, optional
        Observation time; defaults to the balance's timestamp.

    Raises
    ------
    ValueError
        A derivatives balance without the settlement currency, or no time.
    """
    when = as_utc(ts) or ms_to_datetime(balance.get("timestamp"))
    if when is None:
        raise ValueError(f"{exchange_id} balance without time; pass ts")
    if exchange_id in SPOT_EXCHANGES:
        equity = _spot_equity(balance, settlement, prices or {})
    else:
        equity = _derivatives_equity(exchange_id, balance, settlement)
    return Account(account=account, ts=when, equity=equity, desk=desk, currency=settlement)


def _derivatives_equity(exchange_id: str, balance: Mapping[str, Any], settlement: str) -> float:
    reader = _REPORTED_EQUITY.get(exchange_id)
    equity = reader(balance.get("info"), settlement) if reader is not None else None
    if equity is None:
        equity = finite_number((balance.get("total") or {}).get(settlement))
    if equity is None:
        raise ValueError(f"{exchange_id} balance has no {settlement} entry")
    return equity


def _spot_equity(balance: Mapping[str, Any], settlement: str,
                 prices: Mapping[str, float]) -> float:
    totals = balance.get("total") or {}
    equity = finite_number(totals.get(settlement)) or 0.0
    for code, amount in totals.items():
        price = prices.get(f"{code}{settlement}")
        quantity = finite_number(amount)
        if code != settlement and price is not None and quantity:
            equity += quantity * price
    return equity


def balance_to_spot_positions(exchange_id: str, account: str, balance: Mapping[str, Any],
                              symbols: Iterable[str], settlement: str = "USDT",
                              desk: str | None = None, *,
                              ts: datetime | None = None) -> list[Position]:
    """Spot holdings as positions, one per tracked symbol (0.0 when not held).

    Parameters
    ----------
    symbols : Iterable[str]
        Our symbols (``BTCUSDT``) whose base currency is a holding; the base is
        the symbol minus the settlement suffix. Holdings outside them (fiat,
        staked or dust assets) have no price here and are not positions.

    Returns
    -------
    list[Position]
        ``qty`` = the total held (free + on order), entry price and leverage
        unknown for spot holdings.
    """
    when = as_utc(ts) or ms_to_datetime(balance.get("timestamp"))
    if when is None:
        raise ValueError(f"{exchange_id} balance without time; pass ts")
    totals = balance.get("total") or {}
    positions = []
    for symbol in symbols:
        if not symbol.endswith(settlement) or symbol == settlement:
            raise ValueError(f"{symbol!r} is not quoted in {settlement}")
        base = symbol[: -len(settlement)]
        qty = finite_number(totals.get(base)) or 0.0
        positions.append(Position(account=account, symbol=symbol, ts=when, qty=qty + 0.0,
                                  desk=desk, source=exchange_id))
    return positions
