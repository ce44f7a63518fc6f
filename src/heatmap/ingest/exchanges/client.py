"""ccxt exchange objects configured for our ingest: market types, rate limits, redacted logs."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import ccxt

from heatmap.ingest.exchanges.credentials import ExchangeCredentials, redact
from heatmap.ingest.exchanges.payload import SUPPORTED_EXCHANGES

# ccxt's own request/response lines, under the package's logger (silenced or shown apart).
CCXT_LOGGER = "heatmap.ingest.exchanges.ccxt"

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
        "logger": _RedactingLogger(logging.getLogger(CCXT_LOGGER), secrets),
    }
    if credentials is not None:
        config.update(credentials.ccxt_config())
    exchange = getattr(ccxt, exchange_id)(config)
    if sandbox:
        if not exchange.urls.get("test"):
            raise ValueError(f"{exchange_id} has no sandbox in ccxt")
        exchange.set_sandbox_mode(True)
    return exchange
