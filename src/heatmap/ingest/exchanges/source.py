"""The live path: polls of one exchange account through ccxt, failures made safe to show."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import ccxt

from heatmap.ingest.exchanges.balances import balance_to_account, balance_to_spot_positions
from heatmap.ingest.exchanges.credentials import redact
from heatmap.ingest.exchanges.payload import (
    SPOT_EXCHANGES,
    SUPPORTED_EXCHANGES,
    normalise_symbol,
    symbol_parts,
)
from heatmap.ingest.exchanges.positions import positions_to_messages
from heatmap.ingest.exchanges.prices import ticker_to_price
from heatmap.schema import Account, Position, Price

# Named after the package, not this module: one logger for every exchange adapter.
log = logging.getLogger("heatmap.ingest.exchanges")

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
        _, quote, settle = symbol_parts(symbol)
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
