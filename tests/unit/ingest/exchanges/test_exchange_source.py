"""ExchangeSource polls, offline: injected exchange objects and recorded HTTP bodies."""

from __future__ import annotations

import logging
from collections.abc import Callable

import ccxt
import pytest
import requests
from exchange_recordings import (
    API_KEY,
    CREDENTIALS,
    POLL_TIME,
    SECRET,
    RecordedSession,
    assert_valid,
    by_symbol,
    load,
    offline,
)

from heatmap.ingest.exchanges import ExchangeSource, ExchangeUnavailable
from heatmap.schema import Account, Position

# -- ExchangeSource: injected exchange objects ----------------------------------------------------


def test_poll_prices_converts_and_filters_recorded_tickers() -> None:
    exchange = offline("bybit")
    raw = load("bybit_linear_tickers.json")["result"]["list"]
    asked: list[list[str]] = []

    def fetch_tickers(symbols=None, params=None):
        asked.append(symbols)
        return exchange.parse_tickers(raw)  # includes 1000PEPE, which is not tracked

    exchange.fetch_tickers = fetch_tickers
    source = ExchangeSource(exchange, ["BTC/USDT:USDT", "ETH/USDT:USDT"],
                            clock=lambda: POLL_TIME)
    prices = by_symbol(source.poll_prices())
    assert asked == [["BTC/USDT:USDT", "ETH/USDT:USDT"]]
    assert set(prices) == {"BTCUSDT", "ETHUSDT"}
    assert prices["ETHUSDT"].price == 3244.12 and prices["ETHUSDT"].ts == POLL_TIME


def raising(error: Exception) -> Callable[..., object]:
    def call(*args, **kwargs):
        raise error
    return call


def test_ccxt_errors_become_exchange_unavailable_without_secrets(caplog) -> None:
    exchange = offline("bybit", CREDENTIALS)
    source = ExchangeSource(exchange, ["BTC/USDT:USDT"], "bb-1")
    exchange.fetch_tickers = raising(ccxt.AuthenticationError(
        f'bybit {{"retCode":10003,"retMsg":"API key is invalid: {API_KEY} / {SECRET}"}}'))
    with pytest.raises(ExchangeUnavailable) as caught:
        source.poll_prices()
    error = caught.value
    assert error.exchange_id == "bybit" and error.transient is False
    assert "AuthenticationError" in error.message and "API key is invalid" in error.message
    assert error.__cause__ is None and error.__suppress_context__
    with caplog.at_level(logging.ERROR):
        logging.getLogger("test").exception("poll failed", exc_info=error)
    for text in (str(error), repr(error), error.message, caplog.text):
        assert API_KEY not in text and SECRET not in text

    exchange.fetch_positions = raising(ccxt.RequestTimeout("bybit GET https://api.bybit.com"))
    with pytest.raises(ExchangeUnavailable) as caught:
        source.poll_account()
    assert caught.value.transient is True


def test_unusable_payload_becomes_exchange_unavailable() -> None:
    exchange = offline("binance", CREDENTIALS)
    exchange.fetch_positions = lambda *a, **k: [
        {"symbol": "BTC/USDT:USDT", "contracts": 1.0, "contractSize": 1.0, "side": None}]
    exchange.fetch_balance = lambda *a, **k: {"total": {"USDT": 1.0}, "info": {}}
    source = ExchangeSource(exchange, ["BTC/USDT:USDT"], "bn-1", clock=lambda: POLL_TIME)
    with pytest.raises(ExchangeUnavailable, match="without side") as caught:
        source.poll_account()
    assert caught.value.transient is False


def test_source_refuses_bad_configuration() -> None:
    with pytest.raises(ValueError, match="credentials"):
        ExchangeSource(offline("binance"), ["BTC/USDT:USDT"], "bn-1")
    with pytest.raises(ValueError, match="BASE/USDT:USDT"):
        ExchangeSource(offline("binance"), ["BTC/USD:BTC"])  # inverse: settled in BTC
    with pytest.raises(ValueError, match="BASE/USDT:USDT"):
        ExchangeSource(offline("bybit"), ["BTC/USDT"])  # spot symbol on a derivatives source
    with pytest.raises(ValueError, match="BASE/USDT symbol"):
        ExchangeSource(offline("kraken"), ["BTC/USD"])  # priced in USD, not the settlement
    with pytest.raises(ValueError, match="at least one"):
        ExchangeSource(offline("kraken"), [])
    with pytest.raises(ValueError, match="account name"):
        ExchangeSource(offline("kraken"), ["BTC/USDT"]).poll_account()


# -- ExchangeSource: the live path, recorded payloads as HTTP bodies ------------------------------


def test_binance_live_path_offline() -> None:
    session = RecordedSession({
        ("GET", "/fapi/v1/ticker/24hr"): "binance_usdm_ticker_24hr.json",
        ("GET", "/fapi/v1/leverageBracket"): "binance_usdm_leverage_bracket.json",
        ("GET", "/fapi/v2/positionRisk"): "binance_usdm_position_risk_v2.json",
        ("GET", "/fapi/v3/account"): "binance_usdm_account_v3.json",
    })
    exchange = offline("binance", CREDENTIALS, session)
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    source = ExchangeSource(exchange, symbols, "bn-1", desk="desk-a", clock=lambda: POLL_TIME)

    prices = by_symbol(source.poll_prices())
    assert {s: p.price for s, p in prices.items()} == {
        "BTCUSDT": 99835.0, "ETHUSDT": 3243.71, "SOLUSDT": 187.305}

    messages = source.poll_account()
    assert session.paths()[1:] == ["/fapi/v1/leverageBracket", "/fapi/v2/positionRisk",
                                   "/fapi/v3/account"]
    account, *positions = messages
    assert isinstance(account, Account) and account.equity == pytest.approx(25816.125)
    # ccxt drops flat positions; SOLUSDT is reported flat because it is tracked
    assert [(p.symbol, p.qty) for p in positions] == [
        ("BTCUSDT", 0.25), ("ETHUSDT", -3.5), ("SOLUSDT", 0.0)]
    assert all(p.ts == POLL_TIME and p.desk == "desk-a" for p in positions)
    for message in messages:
        assert_valid(message)

    # the ETH short is closed: the exchange stops listing it, so we send it flat once
    session.routes[("GET", "/fapi/v2/positionRisk")] = "binance_usdm_position_risk_v2_hedge.json"
    _, *positions = source.poll_account()
    assert [(p.symbol, p.qty) for p in positions] == [("BTCUSDT", pytest.approx(0.25)),
                                                      ("ETHUSDT", 0.0)]
    _, *positions = source.poll_account()
    assert [p.symbol for p in positions] == ["BTCUSDT"]


def test_bybit_live_path_offline() -> None:
    session = RecordedSession({
        ("GET", "/v5/market/tickers"): "bybit_linear_tickers.json",
        ("GET", "/v5/position/list"): "bybit_linear_position_list.json",
        ("GET", "/v5/user/query-api"): "bybit_user_query_api.json",
        ("GET", "/v5/account/info"): "bybit_account_info.json",
        ("GET", "/v5/account/wallet-balance"): "bybit_wallet_balance_unified.json",
    })
    exchange = offline("bybit", CREDENTIALS, session)
    source = ExchangeSource(exchange, ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"],
                            "bb-1", clock=lambda: POLL_TIME)

    prices = by_symbol(source.poll_prices())
    assert set(prices) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    assert all(p.ts == POLL_TIME for p in prices.values())
    assert session.seen[0][2]["category"] == ["linear"]

    account, *positions = source.poll_account()
    queries = {path: query for _, path, query in session.seen}
    assert queries["/v5/position/list"]["category"] == ["linear"]
    assert queries["/v5/position/list"]["settleCoin"] == ["USDT"]
    assert queries["/v5/account/wallet-balance"]["accountType"] == ["UNIFIED"]
    assert account.equity == pytest.approx(30382.815) and account.ts == POLL_TIME
    assert [(p.symbol, p.qty) for p in positions] == [
        ("BTCUSDT", 0.15), ("ETHUSDT", -2.5), ("SOLUSDT", 0.0)]


def test_kraken_live_path_offline(caplog) -> None:
    session = RecordedSession({
        ("GET", "/0/public/Ticker"): "kraken_ticker.json",
        ("POST", "/0/private/BalanceEx"): "kraken_balance_ex.json",
    })
    exchange = offline("kraken", CREDENTIALS, session)
    source = ExchangeSource(exchange, ["BTC/USDT", "ETH/USDT"], "kr-1",
                            clock=lambda: POLL_TIME)

    # holdings before any price: positions, but no equity that would leave them out
    with caplog.at_level(logging.WARNING, logger="heatmap.ingest.exchanges"):
        messages = source.poll_account()
    assert all(isinstance(m, Position) for m in messages)
    assert [(m.symbol, m.qty) for m in messages] == [("BTCUSDT", 0.5), ("ETHUSDT", 4.0)]
    assert "no price yet" in caplog.text

    prices = by_symbol(source.poll_prices())
    assert set(prices) == {"BTCUSDT", "ETHUSDT"}  # the BTC/USD pair was not asked for
    assert session.seen[-1][2]["pair"] == ["XBTUSDT,ETHUSDT"]

    account, *positions = source.poll_account()
    assert account.equity == pytest.approx(12000.0 + 0.5 * 99861.5 + 4.0 * 3245.3)
    assert [(p.symbol, p.qty) for p in positions] == [("BTCUSDT", 0.5), ("ETHUSDT", 4.0)]


def test_http_errors_from_the_exchange_are_classified() -> None:
    session = RecordedSession({
        ("GET", "/fapi/v1/leverageBracket"): "401 binance_error_invalid_key.json"})
    exchange = offline("binance", CREDENTIALS, session)
    source = ExchangeSource(exchange, ["BTC/USDT:USDT"], "bn-1")
    with pytest.raises(ExchangeUnavailable, match="AuthenticationError") as caught:
        source.poll_account()
    assert caught.value.transient is False and API_KEY not in str(caught.value)

    class Unreachable(requests.Session):
        def request(self, method, url, *args, **kwargs):
            raise requests.ConnectionError("connection refused")

    exchange.session = Unreachable()
    with pytest.raises(ExchangeUnavailable, match="NetworkError") as caught:
        source.poll_prices()
    assert caught.value.transient is True
