"""Fields of ccxt's unified structures: which exchanges, symbols, numbers and times.

Pure: no ccxt, no network, no clock.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

SUPPORTED_EXCHANGES = ("binance", "bybit", "kraken")
SPOT_EXCHANGES = frozenset({"kraken"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def symbol_parts(ccxt_symbol: str) -> tuple[str, str, str | None]:
    """``(base, quote, settle)`` of a unified symbol; settle None for spot."""
    if "/" not in ccxt_symbol:
        raise ValueError(f"{ccxt_symbol!r} is not a ccxt unified symbol (BASE/QUOTE[:SETTLE])")
    base, rest = ccxt_symbol.split("/", 1)
    quote, colon, settle_and_expiry = rest.partition(":")
    settle = settle_and_expiry.partition("-")[0] if colon else None
    return base, quote, settle


def finite_number(value: object) -> float | None:
    """A finite float of a ccxt number or numeric string; None when absent or unusable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def positive_number(value: object) -> float | None:
    """:func:`finite_number` when above zero, else None (prices, sizes, leverage)."""
    number = finite_number(value)
    return number if number is not None and number > 0.0 else None


def ms_to_datetime(ts_ms: object) -> datetime | None:
    """Aware UTC datetime of epoch milliseconds; None for a missing or zero time.

    Exchanges send 0 for "never updated" (Binance flat positions), so 0 is no time.
    """
    number = finite_number(ts_ms)
    if number is None or number <= 0:
        return None
    # timedelta keeps whole milliseconds exact, where fromtimestamp(ms / 1000) may not
    return _EPOCH + timedelta(milliseconds=int(number))


def as_utc(ts: datetime | None) -> datetime | None:
    """The same instant in UTC (None stays None); a naive time is refused (ValueError)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC)
