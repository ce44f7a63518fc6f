"""Recorded exchange payloads and offline ccxt exchange objects for the adapter tests.

Raw payloads in tests/data/exchanges are in the formats the exchanges document
(Binance spot and USDⓈ-M, Bybit v5, Kraken REST). They go through ccxt's own
parsers on exchange objects built by ``make_exchange`` with hand-written markets
(``set_markets``). The live-path tests serve the same payloads as HTTP bodies
from a recording session in place of the network, so ccxt's endpoint choice,
signing and response handling run unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import ccxt
import requests

from heatmap.ingest.exchanges import ExchangeCredentials, make_exchange
from heatmap.schema import Account, Position, Price, decode, encode

DATA = Path(__file__).resolve().parents[3] / "data" / "exchanges"
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
