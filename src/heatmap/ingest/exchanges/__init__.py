"""Exchange adapters: Binance, Bybit and Kraken through ccxt, into our input messages.

ccxt does the talking (REST, signing, rate limits, exchange quirks); this package
only turns ccxt's *unified* structures into :class:`~heatmap.schema.Price`,
:class:`~heatmap.schema.Position` and :class:`~heatmap.schema.Account`. The
conversions (``payload``, ``prices``, ``positions``, ``balances``) are pure
functions, so they are tested offline on payloads parsed by ccxt's own parsers;
:class:`ExchangeSource` (``source``) is the thin live path ("construct with
:func:`make_exchange` from ``client``, call ``poll_*``"). Polling cadence and
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

from heatmap.ingest.exchanges.balances import balance_to_account, balance_to_spot_positions
from heatmap.ingest.exchanges.client import make_exchange
from heatmap.ingest.exchanges.credentials import ExchangeCredentials, redact
from heatmap.ingest.exchanges.payload import SUPPORTED_EXCHANGES, ms_to_datetime, normalise_symbol
from heatmap.ingest.exchanges.positions import position_to_message, positions_to_messages
from heatmap.ingest.exchanges.prices import ticker_to_price, trade_to_price
from heatmap.ingest.exchanges.source import ExchangeSource, ExchangeUnavailable

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
