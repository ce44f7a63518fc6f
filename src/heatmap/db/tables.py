"""The raw tables as the writer sees them: columns with their PostgreSQL types, and
the conversion of each message into rows in exactly that column order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import msgspec
from psycopg.types.json import Jsonb

from heatmap.schema import Account, Alert, Frame, Position, Price, parse_rfc3339_ms


@dataclass(frozen=True)
class Table:
    """A table of schema ``heat``: name, (column, type) pairs in write order, its natural
    key, and whether a newer row with the same key replaces the stored one.

    Inputs (prices, positions, equity) replace: the latest message is the truth, and a
    repeat carries the same values anyway. Engine outputs and alerts keep the first
    row: the same key means the same computation.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    replace: bool = False

    @property
    def key_indexes(self) -> list[int]:
        names = self.column_names
        return [names.index(column) for column in self.key]

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def column_types(self) -> list[str]:
        return [kind for _, kind in self.columns]


class CorrelationSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The correlation matrix of one timeframe at one bar close.

    ``rho`` is the upper triangle without the diagonal, row by row:
    ``k (k - 1) / 2`` values for ``k`` symbols.
    """

    ts_ms: int
    timeframe: str
    params_hash: str
    symbols: list[str]
    rho: list[float]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A record that broke the message contract, with where it sat in Kafka."""

    ts_ms: int
    topic: str
    partition: int
    offset: int
    reason: str
    key: bytes | None
    payload: bytes


_BOOK = (("ts", "timestamptz"), ("book_kind", "text"), ("book", "text"),
         ("timeframe", "text"), ("trigger", "text"), ("params_hash", "text"))

_FRAME_KEY = ("book_kind", "book", "timeframe", "ts", "trigger", "params_hash")

PRICES = Table("prices", (("ts", "timestamptz"), ("symbol", "text"), ("source", "text"),
                          ("price", "float8"), ("bid", "float8"), ("ask", "float8")),
               key=("symbol", "source", "ts"), replace=True)
POSITIONS = Table("positions", (
    ("ts", "timestamptz"), ("account", "text"), ("symbol", "text"), ("strategy", "text"),
    ("qty", "float8"), ("conviction", "float8"), ("entry_price", "float8"),
    ("leverage", "float8"), ("desk", "text"), ("source", "text")),
    key=("account", "symbol", "strategy", "ts"), replace=True)
ACCOUNT_EQUITY = Table("account_equity", (
    ("ts", "timestamptz"), ("account", "text"), ("equity", "float8"), ("desk", "text"),
    ("maintenance_rate", "float8"), ("currency", "text")),
    key=("account", "ts"), replace=True)
FRAMES = Table("frames", (
    *_BOOK, ("account", "text"), ("desk", "text"), ("equity", "float8"), ("gross", "float8"),
    ("net", "float8"), ("correlated_exposure", "float8"), ("stress_exposure", "float8"),
    ("effective_bets", "float8"), ("hhi", "float8"), ("max_cluster_concentration", "float8"),
    ("liq_distance", "float8"), ("var99_1d", "float8"), ("absorption_ratio", "float8"),
    ("regime_break", "float8"), ("stale", "bool"), ("max_price_age_s", "float8"),
    ("warming_up", "bool"), ("params", "jsonb")), key=_FRAME_KEY)
FRAME_POSITIONS = Table("frame_positions", (
    *_BOOK, ("symbol", "text"), ("strategy", "text"), ("qty", "float8"), ("price", "float8"),
    ("notional", "float8"), ("share", "float8"), ("heat", "float8"), ("heat_share", "float8"),
    ("risk_contribution", "float8"), ("cluster", "text"), ("quadrant", "text"),
    ("conviction", "float8"), ("stale", "bool"), ("price_age_s", "float8")),
    key=(*_FRAME_KEY, "symbol"))
FRAME_CLUSTERS = Table("frame_clusters", (
    *_BOOK, ("cluster", "text"), ("members", "text[]"), ("gross", "float8"), ("net", "float8"),
    ("concentration", "float8"), ("stress_concentration", "float8"),
    ("liq_distance", "float8"), ("liq_sigma", "float8")), key=(*_FRAME_KEY, "cluster"))
CORRELATIONS = Table("correlations", (
    ("ts", "timestamptz"), ("timeframe", "text"), ("params_hash", "text"),
    ("symbols", "text[]"), ("rho", "float4[]")), key=("timeframe", "params_hash", "ts"))
ALERTS = Table("alerts", (
    ("ts", "timestamptz"), ("book_kind", "text"), ("book", "text"), ("account", "text"),
    ("desk", "text"), ("timeframe", "text"), ("kind", "text"), ("subject", "text"),
    ("severity", "text"), ("state", "text"), ("value", "float8"), ("threshold", "float8"),
    ("message", "text")),
    key=("book_kind", "book", "timeframe", "kind", "subject", "ts", "state"))
DEADLETTERS = Table("deadletters", (
    ("ts", "timestamptz"), ("topic", "text"), ("kafka_partition", "int4"),
    ("kafka_offset", "int8"), ("reason", "text"), ("record_key", "bytea"),
    ("payload", "bytea")), key=("topic", "kafka_partition", "kafka_offset", "ts"))

ALL_TABLES = (PRICES, POSITIONS, ACCOUNT_EQUITY, FRAMES, FRAME_POSITIONS, FRAME_CLUSTERS,
              CORRELATIONS, ALERTS, DEADLETTERS)


def moment(ts_ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    seconds, millis = divmod(ts_ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=millis * 1000)


@lru_cache(maxsize=4096)
def _frame_moment(ts: str) -> datetime:
    # Every frame of a bar shares its timestamp string.
    return moment(parse_rfc3339_ms(ts))


def _book(account: str | None, desk: str | None) -> tuple[str, str]:
    return ("account", account) if account is not None else ("desk", desk or "")


def price_rows(prices: list[Price]) -> Iterator[tuple]:
    for p in prices:
        yield (p.ts, p.symbol, p.source or "", p.price, p.bid, p.ask)


def position_rows(positions: list[Position]) -> Iterator[tuple]:
    for p in positions:
        yield (p.ts, p.account, p.symbol, p.strategy or "", p.qty, p.conviction,
               p.entry_price, p.leverage, p.desk, p.source)


def account_rows(accounts: list[Account]) -> Iterator[tuple]:
    for a in accounts:
        yield (a.ts, a.account, a.equity, a.desk, a.maintenance_rate, a.currency)


def frame_rows(frames: list[Frame]) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Rows of ``frames``, ``frame_positions`` and ``frame_clusters`` for some frames."""
    heads, positions, clusters = [], [], []
    for f in frames:
        book_kind, book = _book(f.account, f.desk)
        key = (_frame_moment(f.ts), book_kind, book, f.timeframe, f.trigger, f.params_hash)
        heads.append((*key, f.account, f.desk, f.equity, f.gross, f.net,
                      f.correlated_exposure, f.stress_exposure, f.effective_bets, f.hhi,
                      f.max_cluster_concentration, f.liq_distance, f.var99_1d,
                      f.absorption_ratio, f.regime_break, f.stale, f.max_price_age_s,
                      f.warming_up, Jsonb(f.params)))
        positions.extend(
            (*key, p.symbol, p.strategy, p.qty, p.price, p.notional, p.share, p.heat,
             p.heat_share, p.risk_contribution, p.cluster, p.quadrant, p.conviction, p.stale,
             p.price_age_s) for p in f.positions)
        clusters.extend(
            (*key, c.cluster, c.members, c.gross, c.net, c.concentration,
             c.stress_concentration, c.liq_distance, c.liq_sigma) for c in f.clusters)
    return heads, positions, clusters


def correlation_rows(snapshots: list[CorrelationSnapshot]) -> Iterator[tuple]:
    for c in snapshots:
        yield (moment(c.ts_ms), c.timeframe, c.params_hash, c.symbols, c.rho)


def alert_rows(alerts: list[Alert]) -> Iterator[tuple]:
    for a in alerts:
        book_kind, book = _book(a.account, a.desk)
        yield (_frame_moment(a.ts), book_kind, book, a.account, a.desk, a.timeframe, a.kind,
               a.subject, a.severity, a.state, a.value, a.threshold, a.message)


def deadletter_rows(letters: list[DeadLetter]) -> Iterator[tuple]:
    for d in letters:
        yield (moment(d.ts_ms), d.topic, d.partition, d.offset, d.reason, d.key, d.payload)
