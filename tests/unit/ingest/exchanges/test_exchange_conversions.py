"""Exchange payloads into our messages, offline: ccxt's parsers, then our pure conversions."""

from __future__ import annotations

import math
from datetime import datetime

import ccxt
import pytest
from exchange_recordings import POLL_TIME, assert_valid, by_symbol, load, offline, utc_ms

from heatmap.ingest.exchanges import (
    balance_to_account,
    balance_to_spot_positions,
    normalise_symbol,
    position_to_message,
    positions_to_messages,
    ticker_to_price,
    trade_to_price,
)
from heatmap.ingest.exchanges.payload import finite_number, ms_to_datetime, symbol_parts

# -- symbols, numbers, times ------------------------------------------------------------------


@pytest.mark.parametrize(("ccxt_symbol", "ours"), [
    ("BTC/USDT", "BTCUSDT"), ("BTC/USDT:USDT", "BTCUSDT"), ("1000PEPE/USDT:USDT", "1000PEPEUSDT"),
    ("BTC/USDT:USDT-250328", "BTCUSDT-250328"), ("BTC/USD", "BTCUSD"), ("BTCUSDT", "BTCUSDT")])
def test_symbols_are_normalised_to_base_and_quote(ccxt_symbol: str, ours: str) -> None:
    assert normalise_symbol(ccxt_symbol) == ours


def test_symbol_parts_tell_spot_from_settled_contracts() -> None:
    assert symbol_parts("BTC/USDT") == ("BTC", "USDT", None)
    assert symbol_parts("BTC/USDT:USDT-250328") == ("BTC", "USDT", "USDT")
    with pytest.raises(ValueError, match="not a ccxt unified symbol"):
        symbol_parts("BTCUSDT")


def test_numbers_and_times_of_payloads() -> None:
    assert [finite_number(v) for v in ("1.5", 2, "", None, True, "x", "nan", "inf")] == [
        1.5, 2.0, None, None, None, None, None, None]
    assert ms_to_datetime(0) is None and ms_to_datetime(None) is None  # 0: never updated
    assert ms_to_datetime("1736942399987") == utc_ms(1736942399987)  # exact milliseconds


# -- Binance ------------------------------------------------------------------------------------


def test_binance_spot_24hr_tickers_become_prices() -> None:
    exchange = offline("binance")
    tickers = exchange.parse_tickers(load("binance_spot_ticker_24hr.json"))
    prices = by_symbol([ticker_to_price("binance", t) for t in tickers.values()])
    assert set(prices) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBBTC"}
    btc = prices["BTCUSDT"]
    assert (btc.price, btc.bid, btc.ask) == (99870.51, 99870.50, 99870.51)
    assert btc.ts == utc_ms(1736942399987) and btc.source == "binance"
    for price in prices.values():
        assert_valid(price)


def test_binance_usdm_tickers_have_no_book_but_a_last_price() -> None:
    exchange = offline("binance")
    tickers = exchange.parse_tickers(load("binance_usdm_ticker_24hr.json"))
    assert set(tickers) == {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"}
    sol = ticker_to_price("binance", tickers["SOL/USDT:USDT"])
    assert (sol.symbol, sol.price, sol.bid, sol.ask) == ("SOLUSDT", 187.305, None, None)


def test_binance_agg_trades_become_prices() -> None:
    exchange = offline("binance")
    trades = exchange.parse_trades(load("binance_spot_agg_trades.json"),
                                   exchange.markets["BTC/USDT"])
    price = trade_to_price("binance", trades[-1])
    assert (price.symbol, price.price, price.ts) == ("BTCUSDT", 99870.51,
                                                     utc_ms(1736942399985))
    assert_valid(price)


def test_binance_position_risk_long_short_and_flat() -> None:
    exchange = offline("binance")
    raw = load("binance_usdm_position_risk_v2.json")
    positions = by_symbol([position_to_message("binance", "bn-1", exchange.parse_position_risk(p),
                                               "desk-a", ts=POLL_TIME) for p in raw])
    btc, eth, sol = positions["BTCUSDT"], positions["ETHUSDT"], positions["SOLUSDT"]
    assert (btc.qty, btc.entry_price, btc.leverage) == (0.25, 97500.0, 10.0)
    assert (eth.qty, eth.entry_price, eth.leverage) == (-3.5, 3310.25, 5.0)
    # a flat position: +0.0, and an entry price of 0 is no entry price
    assert sol.qty == 0.0 and math.copysign(1.0, sol.qty) == 1.0 and sol.entry_price is None
    for position in positions.values():
        assert (position.account, position.desk, position.source, position.strategy) == (
            "bn-1", "desk-a", "binance", None)
        assert position.ts == POLL_TIME
        assert_valid(position)


def test_position_time_defaults_to_the_exchange_update_time() -> None:
    exchange = offline("binance")
    long_raw, _, flat_raw = load("binance_usdm_position_risk_v2.json")
    long = position_to_message("binance", "bn-1", exchange.parse_position_risk(long_raw))
    assert long.ts == utc_ms(1736942395123)
    with pytest.raises(ValueError, match="without time"):  # Binance sends updateTime 0 when flat
        position_to_message("binance", "bn-1", exchange.parse_position_risk(flat_raw))


def test_binance_hedge_mode_legs_are_netted() -> None:
    exchange = offline("binance")
    legs = [exchange.parse_position_risk(p)
            for p in load("binance_usdm_position_risk_v2_hedge.json")]
    positions = by_symbol(positions_to_messages("binance", "bn-1", legs, ts=POLL_TIME))
    btc, eth = positions["BTCUSDT"], positions["ETHUSDT"]
    assert btc.qty == pytest.approx(0.25) and btc.entry_price is None and btc.leverage == 10.0
    assert eth.qty == 0.0 and math.copysign(1.0, eth.qty) == 1.0


def test_binance_account_equity_is_the_usdt_margin_balance() -> None:
    exchange = offline("binance")
    balance = exchange.parse_balance_custom(load("binance_usdm_account_v3.json"), "linear")
    account = balance_to_account("binance", "bn-1", balance, "USDT", "desk-a", ts=POLL_TIME)
    # wallet 25000 + unrealised 582.5 (BTC long) + 233.625 (ETH short); USDC not converted
    assert account.equity == pytest.approx(25816.125)
    assert (account.currency, account.desk, account.ts) == ("USDT", "desk-a", POLL_TIME)
    assert_valid(account)
    without_info = dict(balance, info={})
    assert balance_to_account("binance", "bn-1", without_info, ts=POLL_TIME).equity == \
        pytest.approx(25816.125)  # ccxt's total of a USDⓈ-M asset is also its margin balance
    with pytest.raises(ValueError, match="no BUSD"):
        balance_to_account("binance", "bn-1", without_info, "BUSD", ts=POLL_TIME)


# -- Bybit --------------------------------------------------------------------------------------


def test_bybit_linear_tickers_carry_no_time_so_the_poll_time_is_used() -> None:
    exchange = offline("bybit")
    raw = load("bybit_linear_tickers.json")["result"]["list"]
    tickers = exchange.parse_tickers(raw)
    # BTCUSDT is both a spot and a linear id on Bybit; ccxt tells them apart by the payload
    assert "BTC/USDT:USDT" in tickers and "BTC/USDT" not in tickers
    assert ticker_to_price("bybit", tickers["BTC/USDT:USDT"]) is None
    btc = ticker_to_price("bybit", tickers["BTC/USDT:USDT"], fallback_ts=POLL_TIME)
    assert (btc.symbol, btc.price, btc.bid, btc.ask, btc.ts) == (
        "BTCUSDT", 99842.30, 99842.20, 99842.30, POLL_TIME)
    assert_valid(btc)


def test_bybit_position_list_signs_and_update_time() -> None:
    exchange = offline("bybit")
    raw = load("bybit_linear_position_list.json")["result"]["list"]
    positions = by_symbol([position_to_message("bybit", "bb-1", p)
                           for p in exchange.parse_positions(raw)])
    btc, eth, sol = positions["BTCUSDT"], positions["ETHUSDT"], positions["SOLUSDT"]
    assert (btc.qty, btc.entry_price, btc.leverage) == (0.15, 98250.4, 10.0)
    assert (eth.qty, eth.entry_price, eth.leverage) == (-2.5, 3301.75, 5.0)
    assert sol.qty == 0.0 and sol.entry_price is None
    # the last update, not ccxt's ``timestamp`` (Bybit's createdTime)
    assert btc.ts == utc_ms(1736942390000)
    for position in positions.values():
        assert_valid(position)


def test_bybit_equity_includes_unrealised_pnl() -> None:
    exchange = offline("bybit")
    balance = exchange.parse_balance(load("bybit_wallet_balance_unified.json"))
    assert balance["total"]["USDT"] == 30000.0  # ccxt: wallet balance only
    account = balance_to_account("bybit", "bb-1", balance)
    assert account.equity == pytest.approx(30382.815)  # coin equity: wallet + unrealised PnL
    assert account.ts == utc_ms(1736942400845)
    assert_valid(account)


# -- Kraken -------------------------------------------------------------------------------------


def kraken_tickers(exchange: ccxt.Exchange) -> dict[str, dict]:
    """What kraken.fetch_tickers does with a /0/public/Ticker response."""
    result = load("kraken_ticker.json")["result"]
    parsed = (exchange.parse_ticker(raw, exchange.safe_market(pair))
              for pair, raw in result.items())
    return {ticker["symbol"]: ticker for ticker in parsed}


def test_kraken_tickers_map_pair_ids_to_symbols() -> None:
    tickers = kraken_tickers(offline("kraken"))
    assert set(tickers) == {"BTC/USDT", "ETH/USDT", "BTC/USD"}
    eth = ticker_to_price("kraken", tickers["ETH/USDT"], fallback_ts=POLL_TIME)
    assert (eth.symbol, eth.price, eth.bid, eth.ask) == ("ETHUSDT", 3245.30, 3245.28, 3245.62)
    assert_valid(eth)


def test_kraken_holdings_are_spot_positions_and_equity_values_them() -> None:
    exchange = offline("kraken")
    balance = exchange.parse_balance(load("kraken_balance_ex.json"))
    assert balance["total"]["BTC"] == 0.5  # XXBT -> BTC through the markets' currency ids
    positions = by_symbol(balance_to_spot_positions(
        "kraken", "kr-1", balance, ["BTCUSDT", "ETHUSDT"], "USDT", ts=POLL_TIME))
    assert {s: p.qty for s, p in positions.items()} == {"BTCUSDT": 0.5, "ETHUSDT": 4.0}
    assert positions["BTCUSDT"].entry_price is None and positions["BTCUSDT"].leverage is None
    prices = {"BTCUSDT": 99861.5, "ETHUSDT": 3245.3}
    account = balance_to_account("kraken", "kr-1", balance, prices=prices, ts=POLL_TIME)
    # USDT cash (free + on order) + the two holdings; USD cash and staked DOT are not priced
    assert account.equity == pytest.approx(12000.0 + 0.5 * 99861.5 + 4.0 * 3245.3)
    assert balance_to_account("kraken", "kr-1", balance, ts=POLL_TIME).equity == 12000.0
    assert_valid(account)


# -- pure conversion edge cases -----------------------------------------------------------------


def test_ticker_price_falls_back_to_mid_and_rejects_unusable() -> None:
    base = {"symbol": "BTC/USDT:USDT", "timestamp": 1736942400000}
    mid = ticker_to_price("binance", {**base, "last": None, "bid": 100.0, "ask": 101.0})
    assert mid.price == 100.5
    assert ticker_to_price("binance", {**base, "last": 0.0, "bid": 100.0, "ask": 101.0}).price \
        == 100.5
    assert ticker_to_price("binance", {**base, "last": None, "bid": 100.0}) is None
    assert ticker_to_price("binance", {**base, "last": float("nan")}) is None
    assert ticker_to_price("binance", {"symbol": None, "last": 1.0}) is None
    with pytest.raises(ValueError, match="aware"):
        ticker_to_price("binance", {"symbol": "BTC/USDT", "last": 1.0},
                        fallback_ts=datetime(2025, 1, 1))  # naive on purpose


def test_contract_size_scales_and_missing_side_is_refused() -> None:
    position = {"symbol": "BTC/USDT:USDT", "contracts": 25, "contractSize": 0.01,
                "side": "short", "timestamp": 1736942400000}
    assert position_to_message("x", "a", position).qty == pytest.approx(-0.25)
    with pytest.raises(ValueError, match="without side"):
        position_to_message("x", "a", {**position, "side": None})
    with pytest.raises(ValueError, match="contract size"):
        position_to_message("x", "a", {**position, "contractSize": None})


def test_trade_without_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time"):
        trade_to_price("binance", {"symbol": "BTC/USDT", "price": 1.0, "timestamp": None})
