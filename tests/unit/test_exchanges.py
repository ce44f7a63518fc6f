"""Exchange adapters on recorded payloads, offline.

Raw payloads in tests/data/exchanges are in the formats the exchanges document
(Binance spot and USDⓈ-M, Bybit v5, Kraken REST). They go through ccxt's own
parsers on exchange objects built by ``make_exchange`` with hand-written markets
(``set_markets``), then through our conversions. The live-path tests serve the
same payloads as HTTP bodies from a recording session in place of the network,
so ccxt's endpoint choice, signing and response handling run unchanged.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import ccxt
import pytest
import requests

from heatmap.ingest.exchanges import (
    ExchangeCredentials,
    ExchangeSource,
    ExchangeUnavailable,
    balance_to_account,
    balance_to_spot_positions,
    make_exchange,
    normalise_symbol,
    position_to_message,
    positions_to_messages,
    ticker_to_price,
    trade_to_price,
)
from heatmap.schema import Account, Position, Price, decode, encode

DATA = Path(__file__).resolve().parents[1] / "data" / "exchanges"
API_KEY = "hEaTtEsTkEy9f2c41d7aa03e5b8"
# base64, because Kraken signs with the decoded secret
SECRET = "c2VjcmV0LXZhbHVlLW5ldmVyLWxvZ2dlZC0xMjM0NTY3OA=="
CREDENTIALS = ExchangeCredentials(api_key=API_KEY, secret=SECRET)
POLL_TIME = datetime(2025, 1, 15, 12, 0, 0, 500_000, tzinfo=UTC)


def load(name: str) -> object:
    return json.loads((DATA / name).read_text())


def utc_ms(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms // 1000, tz=UTC).replace(microsecond=ts_ms % 1000 * 1000)


def assert_valid(message: Price | Position | Account) -> None:
    """Every produced message passes the same validation as a consumed one."""
    assert decode(type(message), encode(message)) == message
    assert message.ts.tzinfo is not None and message.ts.utcoffset().total_seconds() == 0


class NoNetwork(requests.Session):
    def request(self, method, url, *args, **kwargs):
        raise AssertionError(f"network access in a unit test: {method} {url}")


class RecordedSession(requests.Session):
    """Answers ccxt's HTTP requests with recorded payloads, by (method, path)."""

    def __init__(self, routes: dict[tuple[str, str], str]) -> None:
        super().__init__()
        self.routes = routes
        self.seen: list[tuple[str, str, dict[str, list[str]]]] = []

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        self.seen.append((method, parts.path, parse_qs(parts.query)))
        name = self.routes.get((method, parts.path))
        if name is None:
            raise AssertionError(f"unrecorded request {method} {parts.path}")
        status_s, _, file_name = name.rpartition(" ")
        response = requests.Response()
        response.status_code = int(status_s or 200)
        response.url = url
        response.headers["Content-Type"] = "application/json"
        response._content = (DATA / file_name).read_bytes()
        return response

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.seen]


def offline(exchange_id: str, credentials: ExchangeCredentials | None = None,
            session: requests.Session | None = None) -> ccxt.Exchange:
    exchange = make_exchange(exchange_id, credentials)
    exchange.enableRateLimit = False  # recorded answers need no pacing (Kraken waits seconds)
    exchange.session = session or NoNetwork()
    exchange.set_markets(load("markets.json")[exchange_id])
    return exchange


def by_symbol(messages: list) -> dict[str, Price | Position]:
    return {m.symbol: m for m in messages}


# -- symbols, credentials, exchange construction ------------------------------------------------


@pytest.mark.parametrize(("ccxt_symbol", "ours"), [
    ("BTC/USDT", "BTCUSDT"), ("BTC/USDT:USDT", "BTCUSDT"), ("1000PEPE/USDT:USDT", "1000PEPEUSDT"),
    ("BTC/USDT:USDT-250328", "BTCUSDT-250328"), ("BTC/USD", "BTCUSD"), ("BTCUSDT", "BTCUSDT")])
def test_symbols_are_normalised_to_base_and_quote(ccxt_symbol: str, ours: str) -> None:
    assert normalise_symbol(ccxt_symbol) == ours


def test_credentials_never_show_in_repr_str_or_logs(caplog) -> None:
    with_password = ExchangeCredentials(api_key=API_KEY, secret=SECRET, password="pass-phrase-77")
    source = ExchangeSource(offline("bybit", CREDENTIALS), ["BTC/USDT:USDT"], "acct-1")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("credentials %s %r; source %s %r", CREDENTIALS,
                                       with_password, source, source)
    texts = [repr(CREDENTIALS), str(CREDENTIALS), f"{with_password}", repr(source), str(source),
             caplog.text]
    for text in texts:
        for secret in (API_KEY, SECRET, "pass-phrase-77"):
            assert secret not in text
    assert "acct-1" in repr(source)
    with pytest.raises(ValueError, match="non-empty"):
        ExchangeCredentials(api_key="", secret=SECRET)


def test_ccxt_request_logging_is_redacted(caplog) -> None:
    """ccxt logs request headers (Binance sends the key as X-MBX-APIKEY) at DEBUG."""
    session = RecordedSession({("GET", "/fapi/v2/positionRisk"):
                               "binance_usdm_position_risk_v2.json"})
    exchange = offline("binance", CREDENTIALS, session)
    with caplog.at_level(logging.DEBUG, logger="heatmap.ingest.exchanges"):
        exchange.fapiPrivateV2GetPositionRisk()
    assert "X-MBX-APIKEY" in caplog.text and "/fapi/v2/positionRisk" in caplog.text
    assert API_KEY not in caplog.text and SECRET not in caplog.text


def test_make_exchange_sets_market_types_and_rate_limits() -> None:
    binance, bybit, kraken = (make_exchange(name, CREDENTIALS)
                              for name in ("binance", "bybit", "kraken"))
    assert all(e.enableRateLimit for e in (binance, bybit, kraken))
    assert (binance.options["defaultType"], binance.options["defaultSubType"]) == ("swap", "linear")
    assert (bybit.options["defaultType"], bybit.options["defaultSubType"]) == ("swap", "linear")
    assert kraken.options["defaultType"] == "spot"
    assert binance.apiKey == API_KEY and binance.secret == SECRET
    assert make_exchange("kraken", None).apiKey in ("", None)


def test_sandbox_switches_to_testnet_and_kraken_has_none() -> None:
    assert "testnet" in make_exchange("bybit", None, sandbox=True).urls["api"]["public"]
    assert "testnet" in make_exchange("binance", None, sandbox=True).urls["api"]["fapiPublic"]
    with pytest.raises(ValueError, match="no sandbox"):
        make_exchange("kraken", None, sandbox=True)
    with pytest.raises(ValueError, match="unsupported"):
        make_exchange("okx", None)


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
