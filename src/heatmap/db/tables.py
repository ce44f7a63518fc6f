"""The raw tables as the writer sees them: columns with their PostgreSQL types, and
the conversion of each message into rows in exactly that column order.

A table that stores a message of :mod:`heatmap.schema` takes its columns from the
message's Struct (:func:`field_columns`); what differs from the message (the book
columns, timestamps stored as timestamptz, jsonb, key columns that cannot be NULL)
is an explicit column, documented where the table is defined. The integration
tests compare every table here with the migrated database.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from heatmap.schema import (
    Account,
    Alert,
    AlertLevels,
    ClusterRow,
    CorrelationSnapshot,
    Frame,
    Position,
    PositionRow,
    Price,
    ms_to_datetime,
    rfc3339_to_ms,
)

__all__ = ["CorrelationSnapshot"]  # re-exported: the writer's batches carry them

Column = tuple[str, str]  # (name, PostgreSQL type)
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Table:
    """A table of schema ``heat``: name, (column, type) pairs in write order, its natural
    key, and whether a newer row with the same key replaces the stored one.

    Inputs (prices, positions, equity) replace: the latest message is the truth, and a
    repeat carries the same values anyway. Engine outputs and alerts keep the first
    row: the same key means the same computation.
    """

    name: str
    columns: tuple[Column, ...]
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


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A record that broke the message contract, with where it sat in Kafka."""

    ts_ms: int
    topic: str
    partition: int
    offset: int
    reason: str
    key: bytes | None
    payload: bytes


# PostgreSQL types of msgspec's field types (optional fields: the type of their value).
_PG_TYPES: dict[type[msgspec.inspect.Type], str] = {
    msgspec.inspect.StrType: "text",
    msgspec.inspect.LiteralType: "text",
    msgspec.inspect.FloatType: "float8",
    msgspec.inspect.IntType: "int8",
    msgspec.inspect.BoolType: "bool",
    msgspec.inspect.DateTimeType: "timestamptz",
}


def _pg_type(kind: msgspec.inspect.Type, where: str) -> str:
    if isinstance(kind, msgspec.inspect.UnionType):
        values = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(values) == 1:
            return _pg_type(values[0], where)
    if isinstance(kind, msgspec.inspect.ListType):
        return f"{_pg_type(kind.item_type, where)}[]"
    if type(kind) in _PG_TYPES:
        return _PG_TYPES[type(kind)]
    raise TypeError(f"{where}: no column type for {kind}; store it as an explicit column")


def field_columns(struct: type[msgspec.Struct], names: Sequence[str] | None = None,
                  exclude: Collection[str] = ()) -> tuple[Column, ...]:
    """Columns mirroring fields of a message Struct, typed from their annotations.

    ``names`` in that order, or else every field in field order except ``exclude``
    (fields stored as explicit columns or in another table). Naming a field the
    Struct lacks is an error, so a renamed field cannot silently drop a column.
    """
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    types = {f.name: f.type for f in info.fields}
    unknown = [name for name in (*(names or ()), *exclude) if name not in types]
    if unknown:
        raise ValueError(f"{struct.__name__} has no field(s) {', '.join(unknown)}")
    chosen = names if names is not None else [n for n in types if n not in exclude]
    return tuple((name, _pg_type(types[name], f"{struct.__name__}.{name}"))
                 for name in chosen)


def _values(columns: tuple[Column, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of these (field) columns of a message, in column order."""
    getter = attrgetter(*(name for name, _ in columns))
    return getter if len(columns) > 1 else lambda message: (getter(message),)


# Inputs mirror their messages field for field. Position.strategy is optional in the
# message but part of the key, so it is an explicit column: '' when absent.
_POSITION_FIELDS = field_columns(Position, exclude={"strategy"})
PRICES = Table("prices", field_columns(Price), key=("symbol", "source", "ts"), replace=True)
POSITIONS = Table("positions", (("strategy", "text"), *_POSITION_FIELDS),
                  key=("account", "symbol", "strategy", "ts"), replace=True)
ACCOUNT_EQUITY = Table("account_equity", field_columns(Account), key=("account", "ts"),
                       replace=True)

# Frames, their positions and clusters, and alerts carry explicit columns first: ``ts``
# (RFC 3339 text in the message, timestamptz here) and the book (``book_kind``
# 'account' or 'desk', ``book`` its name). Every frame row starts with the frame's key.
_BOOK = (("ts", "timestamptz"), ("book_kind", "text"), ("book", "text"))
_FRAME_KEY_FIELDS = field_columns(Frame, ("timeframe", "trigger", "params_hash"))
_FRAME_KEY_COLUMNS = (*_BOOK, *_FRAME_KEY_FIELDS)
_FRAME_KEY = ("book_kind", "book", "timeframe", "ts", "trigger", "params_hash")
# ``params`` is explicit too (a jsonb value); positions and clusters have their tables.
_FRAME_FIELDS = field_columns(Frame, exclude={
    "ts", *(name for name, _ in _FRAME_KEY_FIELDS), "params", "positions", "clusters"})
_FRAME_POSITION_FIELDS = field_columns(PositionRow)
_FRAME_CLUSTER_FIELDS = field_columns(ClusterRow)
_ALERT_FIELDS = field_columns(Alert, exclude={"ts"})

FRAMES = Table("frames", (*_FRAME_KEY_COLUMNS, *_FRAME_FIELDS, ("params", "jsonb")),
               key=_FRAME_KEY)
FRAME_POSITIONS = Table("frame_positions", (*_FRAME_KEY_COLUMNS, *_FRAME_POSITION_FIELDS),
                        key=(*_FRAME_KEY, "symbol"))
FRAME_CLUSTERS = Table("frame_clusters", (*_FRAME_KEY_COLUMNS, *_FRAME_CLUSTER_FIELDS),
                       key=(*_FRAME_KEY, "cluster"))
ALERTS = Table("alerts", (*_BOOK, *_ALERT_FIELDS),
               key=("book_kind", "book", "timeframe", "kind", "subject", "ts", "state"))

# The thresholds in effect, one row per desk ('' for the defaults: the key cannot be
# NULL), replaced at every bar close the processor publishes them.
_ALERT_LEVEL_FIELDS = field_columns(AlertLevels, exclude={"ts", "desk"})
ALERT_LEVELS = Table("alert_levels", (("desk", "text"), ("ts", "timestamptz"),
                                      *_ALERT_LEVEL_FIELDS), key=("desk",), replace=True)

# Not messages of the schema: written by hand. Correlations keep float4 to halve their
# size; dead letters name Kafka's partition and offset explicitly.
CORRELATIONS = Table("correlations", (
    ("ts", "timestamptz"), ("timeframe", "text"), ("params_hash", "text"),
    ("symbols", "text[]"), ("rho", "float4[]")), key=("timeframe", "params_hash", "ts"))
DEADLETTERS = Table("deadletters", (
    ("ts", "timestamptz"), ("topic", "text"), ("kafka_partition", "int4"),
    ("kafka_offset", "int8"), ("reason", "text"), ("record_key", "bytea"),
    ("payload", "bytea")), key=("topic", "kafka_partition", "kafka_offset", "ts"))

ALL_TABLES = (PRICES, POSITIONS, ACCOUNT_EQUITY, FRAMES, FRAME_POSITIONS, FRAME_CLUSTERS,
              CORRELATIONS, ALERTS, ALERT_LEVELS, DEADLETTERS)

_price_values = _values(PRICES.columns)
_position_values = _values(_POSITION_FIELDS)
_account_values = _values(ACCOUNT_EQUITY.columns)
_frame_values = _values(_FRAME_FIELDS)
_frame_key_values = _values(_FRAME_KEY_FIELDS)
_frame_position_values = _values(_FRAME_POSITION_FIELDS)
_frame_cluster_values = _values(_FRAME_CLUSTER_FIELDS)
_alert_values = _values(_ALERT_FIELDS)
_alert_level_values = _values(_ALERT_LEVEL_FIELDS)


@lru_cache(maxsize=4096)
def _frame_moment(ts: str) -> datetime:
    # Every frame of a bar shares its timestamp string.
    return ms_to_datetime(rfc3339_to_ms(ts))


def _book(account: str | None, desk: str | None) -> tuple[str, str]:
    return ("account", account) if account is not None else ("desk", desk or "")


def price_rows(prices: list[Price]) -> Iterator[Row]:
    return map(_price_values, prices)


def position_rows(positions: list[Position]) -> Iterator[Row]:
    for p in positions:
        yield (p.strategy or "", *_position_values(p))


def account_rows(accounts: list[Account]) -> Iterator[Row]:
    return map(_account_values, accounts)


def frame_rows(frames: list[Frame]) -> tuple[list[Row], list[Row], list[Row]]:
    """Rows of ``frames``, ``frame_positions`` and ``frame_clusters`` for some frames."""
    heads: list[Row] = []
    positions: list[Row] = []
    clusters: list[Row] = []
    for f in frames:
        key = (_frame_moment(f.ts), *_book(f.account, f.desk), *_frame_key_values(f))
        heads.append((*key, *_frame_values(f), Jsonb(f.params)))
        positions.extend((*key, *_frame_position_values(p)) for p in f.positions)
        clusters.extend((*key, *_frame_cluster_values(c)) for c in f.clusters)
    return heads, positions, clusters


def correlation_rows(snapshots: list[CorrelationSnapshot]) -> Iterator[Row]:
    for c in snapshots:
        yield (ms_to_datetime(c.ts_ms), c.timeframe, c.params_hash, c.symbols, c.rho)


def alert_rows(alerts: list[Alert]) -> Iterator[Row]:
    for a in alerts:
        yield (_frame_moment(a.ts), *_book(a.account, a.desk), *_alert_values(a))


def alert_level_rows(levels: list[AlertLevels]) -> Iterator[Row]:
    for published in levels:
        yield (published.desk or "", _frame_moment(published.ts),
               *_alert_level_values(published))


def deadletter_rows(letters: list[DeadLetter]) -> Iterator[Row]:
    for d in letters:
        yield (ms_to_datetime(d.ts_ms), d.topic, d.partition, d.offset, d.reason, d.key,
               d.payload)
