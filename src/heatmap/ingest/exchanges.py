"""Exchange adapters: Binance, Bybit and Kraken through ccxt, into our input messages.

ccxt does the talking (REST, signing, rate limits, exchange quirks); this module
only turns ccxt's *unified* structures into :class:`~heatmap.schema.Price`,
:class:`~heatmap.schema.Position` and :class:`~heatmap.schema.Account`. The
conversions are pure functions, so they are tested offline on payloads parsed
by ccxt's own parsers; :class:`ExchangeSource` is the thin live path
("construct with :func:`make_exchange`, call ``poll_*``"). Polling cadence and
producing to Kafka belong to the caller.

Market types
------------
Binance and Bybit are configured for USDⓈ-M / linear perpetuals (positions and
equity of a derivatives account); Kraken is spot only, so its "positions" are
the spot holdings of the tracked assets and its equity is cash plus those
holdings at the last polled prices.

Symbols
-------
Our symbol is the exchange-neutral ``BASEQUOTE``: ccxt ``BTC/USDT`` and
``BTC/USDT:USDT`` both become ``BTCUSDT`` (spot and perpetual of one pair are
one price series for the heat engine). A dated contract keeps its expiry
(``BTC/USDT:USDT-250328`` -> ``BTCUSDT-250328``) so it never overwrites the
perpetual.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, SupportsFloat, TypeVar

import ccxt

from heatmap.schema import Account, Position, Price

__all__ = [
    "SUPPORTED_EXCHANGES",
    "ExchangeCredentials",
    "ExchangeSource",
    "ExchangeUnavailable",
    "balance_to_account",
    "balance_to_spot_positions",
    "make_exchange",
    "ms_to_datetime",
    "normalise_symbol",
    "position_to_message",
    "positions_to_messages",
    "redact",
    "ticker_to_price",
    "trade_to_price",
]

log = logging.getLogger(__name__)

SUPPORTED_EXCHANGES = ("binance", "bybit", "kraken")
SPOT_EXCHANGES = frozenset({"kraken"})

# ccxt options per exchange. Binance: ``swap``/``linear`` routes balance, positions and
# tickers to the USDⓈ-M futures API (fapi); ``useV2`` because ccxt's default v3
# positionRisk no longer returns each position's leverage. Bybit: ``linear`` with USDT
# settlement is the v5 ``category=linear`` of the unified account.
_CCXT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"defaultType": "swap", "defaultSubType": "linear",
                "fetchPositionsRisk": {"useV2": True}},
    "bybit": {"defaultType": "swap", "defaultSubType": "linear", "defaultSettle": "USDT"},
    "kraken": {"defaultType": "spot"},
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REDACTED = "***"
_MAX_ERROR_CHARS = 500
# what reading an unexpected payload raises, in ccxt's parsers or ours
_PAYLOAD_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)

T = TypeVar("T")


class ExchangeUnavailable(Exception):  # noqa: N818 - the name says what the caller gets
    """An exchange call failed; the message never contains credentials.

    Parameters
    ----------
    exchange_id : str
        ccxt id of the exchange (``binance``, ``bybit``, ``kraken``).
    message : str
        What failed, with any credential replaced by ``***``.
    transient : bool
        True for network-side failures (timeouts, rate limits, maintenance, bad
        responses) that the next poll may not see; False for errors that need a
        human (authentication, permissions, unknown symbol, unusable payload).
    """

    def __init__(self, exchange_id: str, message: str, *, transient: bool) -> None:
        super().__init__(f"{exchange_id}: {message}")
        self.exchange_id = exchange_id
        self.message = message
        self.transient = transient


@dataclass(frozen=True, slots=True)
class ExchangeCredentials:
    """API credentials of one exchange account (read-only keys are enough).

    ``repr``/``str`` never show any of the values, so the object can be logged.

    Parameters
    ----------
    api_key : str
        The exchange API key.
    secret : str
        The API secret.
    password : str or None
        The API passphrase, for exchanges that use one (none of the three
        supported here requires it; ccxt passes it on when set).
    """

    api_key: str
    secret: str
    password: str | None = None

    def __post_init__(self) -> None:
        if not self.api_key or not self.secret:
            raise ValueError("api_key and secret must be non-empty")

    def __repr__(self) -> str:
        password = "unset" if self.password is None else _REDACTED
        return f"ExchangeCredentials(api_key={_REDACTED}, secret={_REDACTED}, password={password})"

    __str__ = __repr__

    def secret_values(self) -> tuple[str, ...]:
        """Every credential string, for redaction."""
        return tuple(v for v in (self.api_key, self.secret, self.password) if v)

    def ccxt_config(self) -> dict[str, str]:
        """The credential part of a ccxt exchange config."""
        config = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            config["password"] = self.password
        return config


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


class _RedactingLogger(logging.LoggerAdapter):
    """ccxt's request/response debug lines carry the API key in headers; scrub them.

    ccxt logs through ``exchange.logger`` with %-style arguments, so the line is
    formatted here, redacted, and handed on already formatted.
    """

    def __init__(self, logger: logging.Logger, secrets: Sequence[str]) -> None:
        super().__init__(logger, {})
        self._secrets = tuple(secrets)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(str(part) for part in (msg, *args))
        kwargs.pop("exc_info", None)  # a traceback could quote a request; keep the line only
        self.logger.log(level, redact(text, self._secrets), **kwargs)


def make_exchange(exchange_id: str, credentials: ExchangeCredentials | None,
                  sandbox: bool = False) -> ccxt.Exchange:
    """A synchronous ccxt exchange configured for our ingest (no network until a call).

    Parameters
    ----------
    exchange_id : str
        ``binance`` (USDⓈ-M futures), ``bybit`` (linear) or ``kraken`` (spot).
    credentials : ExchangeCredentials or None
        None for public data only (prices).
    sandbox : bool
        Use the exchange's testnet; Kraken has none in ccxt (ValueError).

    Returns
    -------
    ccxt.Exchange
        Rate limiting on, market-type options set, debug logging redacted.
    """
    if exchange_id not in _CCXT_OPTIONS:
        raise ValueError(f"unsupported exchange {exchange_id!r}; one of {SUPPORTED_EXCHANGES}")
    secrets = credentials.secret_values() if credentials is not None else ()
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "options": copy.deepcopy(_CCXT_OPTIONS[exchange_id]),
        "logger": _RedactingLogger(logging.getLogger(f"{__name__}.ccxt"), secrets),
    }
    if credentials is not None:
        config.update(credentials.ccxt_config())
    exchange = getattr(ccxt, exchange_id)(config)
    if sandbox:
        if not exchange.urls.get("test"):
            raise ValueError(f"{exchange_id} has no sandbox in ccxt")
        exchange.set_sandbox_mode(True)
    return exchange


# -- conversions: ccxt unified structures -> our messages --------------------------------------


def normalise_symbol(ccxt_symbol: str) -> str:
    """Our symbol for a ccxt unified symbol.

    ``BTC/USDT`` and ``BTC/USDT:USDT`` -> ``BTCUSDT``; ``BTC/USDT:USDT-250328`` ->
    ``BTCUSDT-250328``; an id that is not a unified symbol (no ``/``) is kept.
    """
    if "/" not in ccxt_symbol:
        return ccxt_symbol
    base, rest = ccxt_symbol.split("/", 1)
    quote, _, settle_and_expiry = rest.partition(":")
    _, _, expiry = settle_and_expiry.partition("-")
    return f"{base}{quote}-{expiry}" if expiry else f"{base}{quote}"


def _symbol_parts(ccxt_symbol: str) -> tuple[str, str, str | None]:
    """``(base, quote, settle)`` of a unified symbol; settle None for spot."""
    if "/" not in ccxt_symbol:
        raise ValueError(f"{ccxt_symbol!r} is not a ccxt unified symbol (BASE/QUOTE[:SETTLE])")
    base, rest = ccxt_symbol.split("/", 1)
    quote, colon, settle_and_expiry = rest.partition(":")
    settle = settle_and_expiry.partition("-")[0] if colon else None
    return base, quote, settle


def _number(value: object) -> float | None:
    """A finite float of a ccxt number or numeric string; None when absent or unusable."""
    if value == "" or isinstance(value, bool) or not isinstance(value, str | SupportsFloat):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _positive(value: object) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0.0 else None


def ms_to_datetime(ts_ms: object) -> datetime | None:
    """Aware UTC datetime of epoch milliseconds; None for a missing or zero time.

    Exchanges send 0 for "never updated" (Binance flat positions), so 0 is no time.
    """
    number = _number(ts_ms)
    if number is None or number <= 0:
        return None
    # timedelta keeps whole milliseconds exact, where fromtimestamp(ms / 1000) may not
    return _EPOCH + timedelta(milliseconds=int(number))


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC)


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
    bid = _positive(ticker.get("bid"))
    ask = _positive(ticker.get("ask"))
    price = _positive(ticker.get("last"))
    if price is None and bid is not None and ask is not None:
        price = (bid + ask) / 2.0
    ts = ms_to_datetime(ticker.get("timestamp")) or _utc(fallback_ts)
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
    price = _positive(trade.get("price"))
    ts = ms_to_datetime(trade.get("timestamp"))
    if not symbol or price is None or ts is None:
        raise ValueError(f"{exchange_id} trade without symbol, positive price or time")
    return Price(symbol=normalise_symbol(symbol), ts=ts, price=price, source=exchange_id)


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
    contracts = abs(_number(position.get("contracts")) or 0.0)
    side = position.get("side")
    contract_size = _positive(position.get("contractSize"))
    if contracts and (side not in ("long", "short") or contract_size is None):
        raise ValueError(f"{exchange_id} {symbol}: open position without side or contract size")
    qty_base = contracts * (contract_size or 1.0)
    qty = (-qty_base if side == "short" else qty_base) + 0.0  # + 0.0: never emit -0.0
    when = _utc(ts) or ms_to_datetime(position.get("lastUpdateTimestamp")) \
        or ms_to_datetime(position.get("timestamp"))
    if when is None:
        raise ValueError(f"{exchange_id} {symbol}: position without time; pass ts")
    return Position(account=account, symbol=normalise_symbol(symbol), ts=when, qty=qty,
                    entry_price=_positive(position.get("entryPrice")),
                    leverage=_positive(position.get("leverage")), desk=desk,
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


def _binance_margin_balance(info: object, settlement: str) -> float | None:
    """USDⓈ-M ``GET /fapi/v*/account``: the settlement asset's ``marginBalance``."""
    if not isinstance(info, Mapping):
        return None
    for asset in info.get("assets") or ():
        if isinstance(asset, Mapping) and asset.get("asset") == settlement:
            return _number(asset.get("marginBalance"))
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
                return _number(coin.get("equity"))
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
    when = _utc(ts) or ms_to_datetime(balance.get("timestamp"))
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
        equity = _number((balance.get("total") or {}).get(settlement))
    if equity is None:
        raise ValueError(f"{exchange_id} balance has no {settlement} entry")
    return equity


def _spot_equity(balance: Mapping[str, Any], settlement: str,
                 prices: Mapping[str, float]) -> float:
    totals = balance.get("total") or {}
    equity = _number(totals.get(settlement)) or 0.0
    for code, amount in totals.items():
        price = prices.get(f"{code}{settlement}")
        quantity = _number(amount)
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
    when = _utc(ts) or ms_to_datetime(balance.get("timestamp"))
    if when is None:
        raise ValueError(f"{exchange_id} balance without time; pass ts")
    totals = balance.get("total") or {}
    positions = []
    for symbol in symbols:
        if not symbol.endswith(settlement) or symbol == settlement:
            raise ValueError(f"{symbol!r} is not quoted in {settlement}")
        base = symbol[: -len(settlement)]
        qty = _number(totals.get(base)) or 0.0
        positions.append(Position(account=account, symbol=symbol, ts=when, qty=qty + 0.0,
                                  desk=desk, source=exchange_id))
    return positions


# -- the live path ------------------------------------------------------------------------------


class ExchangeSource:
    """Prices and account state of one exchange account, one poll at a time.

    Parameters
    ----------
    exchange : ccxt.Exchange
        From :func:`make_exchange` (tests inject an offline instance).
    symbols : Sequence[str]
        ccxt unified symbols to price, all settled in ``settlement``:
        ``BTC/USDT:USDT`` for Binance/Bybit perpetuals, ``BTC/USDT`` for Kraken.
        On Kraken they are also the holdings reported as positions.
    account : str, optional
        Our account name; required (with credentials) for :meth:`poll_account`.
    settlement : str
        The deployment's settlement currency.
    desk : str, optional
        Desk of the account.
    clock : Callable[[], datetime]
        Current aware UTC time (tests pass a fixed one).

    Notes
    -----
    Every poll stamps account state with the poll time (the snapshot is valid
    as of the poll, not as of each position's last change). Each
    :meth:`poll_account` reports every open position; a symbol that was open at
    the previous poll and is flat now, and on the first poll every tracked
    symbol that is flat, is reported once with ``qty`` 0.0 so the book closes it
    (exchanges simply stop listing closed positions). Derivatives positions in
    symbols outside ``symbols`` are reported too: the exposure exists even when
    this source does not price it.
    """

    def __init__(self, exchange: ccxt.Exchange, symbols: Sequence[str],
                 account: str | None = None, *, settlement: str = "USDT",
                 desk: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.exchange = exchange
        self.exchange_id: str = exchange.id
        if self.exchange_id not in SUPPORTED_EXCHANGES:
            raise ValueError(f"unsupported exchange {self.exchange_id!r}")
        if not symbols:
            raise ValueError("at least one symbol is required")
        for symbol in symbols:
            self._check_settled(symbol, settlement)
        if account is not None and not account:
            raise ValueError("account must be non-empty")
        if account is not None and not exchange.check_required_credentials(False):
            raise ValueError(f"{self.exchange_id} account {account!r} needs API credentials")
        self.symbols = list(symbols)
        self.account = account
        self.settlement = settlement
        self.desk = desk
        self._clock = clock
        self._tracked = {normalise_symbol(s) for s in symbols}
        self._last_prices: dict[str, float] = {}
        self._open: set[str] | None = None  # None until the first account poll

    def _check_settled(self, symbol: str, settlement: str) -> None:
        _, quote, settle = _symbol_parts(symbol)
        if self.exchange_id in SPOT_EXCHANGES:
            settled, expected = settle is None, f"BASE/{settlement}"
        else:
            settled, expected = settle == settlement, f"BASE/{settlement}:{settlement}"
        if quote != settlement or not settled:
            raise ValueError(f"{self.exchange_id}: {symbol!r} is not a {expected} symbol")

    def __repr__(self) -> str:
        return (f"ExchangeSource(exchange={self.exchange_id!r}, account={self.account!r}, "
                f"symbols={len(self.symbols)})")

    __str__ = __repr__

    # -- polls --------------------------------------------------------------------------------

    def poll_prices(self) -> list[Price]:
        """Latest price of every tracked symbol (one ``fetch_tickers`` call).

        Raises
        ------
        ExchangeUnavailable
            The call failed; nothing is returned partially.
        """
        asked_at = self._clock()
        tickers = self._call(lambda: self.exchange.fetch_tickers(self.symbols))
        converted = self._convert(lambda: [
            ticker_to_price(self.exchange_id, ticker, fallback_ts=asked_at)
            for ticker in tickers.values()])
        prices = [p for p in converted if p is not None and p.symbol in self._tracked]
        self._last_prices.update((p.symbol, p.price) for p in prices)
        return prices

    def poll_account(self) -> list[Position | Account]:
        """The account's equity and positions (``fetch_balance``, ``fetch_positions``).

        On Kraken (spot) the account message is left out while a held tracked
        symbol has no polled price yet (call :meth:`poll_prices` first): an
        equity without that holding would be wrong, the previous one is better.

        Raises
        ------
        ExchangeUnavailable
            A call failed or its payload was unusable; nothing is returned partially.
        """
        if self.account is None:
            raise ValueError("poll_account needs an account name and credentials")
        observed_at = self._clock()
        if self.exchange_id in SPOT_EXCHANGES:
            messages = self._poll_spot(self.account, observed_at)
        else:
            messages = self._poll_derivatives(self.account, observed_at)
        open_now = [m for m in messages if isinstance(m, Position)]
        return messages + self._closed(self.account, open_now, observed_at)

    def _poll_derivatives(self, account: str, observed_at: datetime) -> list[Position | Account]:
        # Bybit lists linear positions per settle coin; ask for ours, not ccxt's default
        params = {"settleCoin": self.settlement} if self.exchange_id == "bybit" else {}
        raw_positions = self._call(lambda: self.exchange.fetch_positions(None, params))
        balance = self._call(self.exchange.fetch_balance)
        terms = self._convert(lambda: balance_to_account(
            self.exchange_id, account, balance, self.settlement, self.desk, ts=observed_at))
        positions = self._convert(lambda: positions_to_messages(
            self.exchange_id, account, raw_positions, self.desk, ts=observed_at))
        return [terms, *(p for p in positions if p.qty != 0.0)]

    def _poll_spot(self, account: str, observed_at: datetime) -> list[Position | Account]:
        balance = self._call(self.exchange.fetch_balance)
        positions = self._convert(lambda: balance_to_spot_positions(
            self.exchange_id, account, balance, sorted(self._tracked), self.settlement,
            self.desk, ts=observed_at))
        held: list[Position | Account] = [p for p in positions if p.qty != 0.0]
        unpriced = sorted(p.symbol for p in positions
                          if p.qty != 0.0 and p.symbol not in self._last_prices)
        if unpriced:
            log.warning("spot equity not reported: no price yet for held %s", ", ".join(unpriced),
                        extra={"exchange": self.exchange_id, "account": account})
            return held
        terms = self._convert(lambda: balance_to_account(
            self.exchange_id, account, balance, self.settlement, self.desk,
            prices=self._last_prices, ts=observed_at))
        return [terms, *held]

    def _closed(self, account: str, open_positions: list[Position],
                observed_at: datetime) -> list[Position]:
        """Zero positions for symbols that went flat (or are flat on the first poll)."""
        now_open = {p.symbol for p in open_positions if p.qty != 0.0}
        was_open = self._tracked if self._open is None else self._open
        self._open = now_open
        return [Position(account=account, symbol=symbol, ts=observed_at, qty=0.0,
                         desk=self.desk, source=self.exchange_id)
                for symbol in sorted(was_open - now_open)]

    # -- error boundary -----------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        values = (getattr(self.exchange, name, None) for name in ("apiKey", "secret", "password"))
        return tuple(v for v in values if isinstance(v, str) and v)

    def _unavailable(self, error: Exception, *, transient: bool) -> ExchangeUnavailable:
        text = redact(f"{type(error).__name__}: {error}", self._secrets())
        return ExchangeUnavailable(self.exchange_id, text[:_MAX_ERROR_CHARS], transient=transient)

    def _call(self, call: Callable[[], T]) -> T:
        """Run a ccxt call; any failure becomes ExchangeUnavailable.

        The cause is dropped (``from None``): its message or request could quote a
        credential. ccxt's parsers can also fail on a payload they do not expect
        (TypeError, KeyError, ...); that is the exchange's answer, not our bug.
        """
        try:
            return call()
        except ccxt.BaseError as error:
            raise self._unavailable(
                error, transient=isinstance(error, ccxt.OperationFailed)) from None
        except _PAYLOAD_ERRORS as error:
            raise self._unavailable(error, transient=False) from None

    def _convert(self, conversion: Callable[[], T]) -> T:
        """Run a conversion; a payload we cannot read is the exchange's failure, not ours."""
        try:
            return conversion()
        except _PAYLOAD_ERRORS as error:
            raise self._unavailable(error, transient=False) from None
