"""Streaming readers of price, position and account CSV files.

Each file is read row by row (memory does not grow with its length) and
must be in time order. Rows are validated with the message schema; a bad
row is counted with its reason and skipped, never fatal.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import msgspec

from heatmap.schema import Account, InputMessage, Position, Price, datetime_to_ms

# At equal timestamps prices apply first, then account terms, then positions.
# A row this far after the previous one is taken for a typo (a mistyped year would
# otherwise close millions of empty bars) and rejected.
MAX_GAP_MS = 366 * 86_400_000
KIND_ORDER: dict[type[msgspec.Struct], int] = {Price: 0, Account: 1, Position: 2}


class ReplayInputError(ValueError):
    """An input file cannot be replayed (unknown columns, rows out of time order)."""


@dataclass
class ReadStats:
    """Rows read and rejected (by reason), and bytes consumed for progress.

    ``on_reject(kind, reason, raw)`` is told of every rejected row with its
    original bytes (ingest sends them to the deadletter topic).
    """

    rows: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0
    on_reject: Callable[[str, str, bytes], None] | None = None

    def reject(self, kind: str, reason: str, raw: bytes) -> None:
        self.rejected[f"{kind}: {reason}"] += 1
        if self.on_reject is not None:
            self.on_reject(kind, reason, raw)


def price_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into their ``*.csv`` files (sorted)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.csv")) if path.is_dir() else [path])
    return files


def _lines(path: Path, stats: ReadStats, consumed: list[str]) -> Iterator[str]:
    # utf-8-sig: spreadsheet exports often start with a byte-order mark. Bytes that
    # are not UTF-8 become surrogates here and reject their row in _rows.
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        for line in handle:
            stats.bytes_read += len(line)
            consumed.append(line)
            yield line


def _rows(path: Path, kind: str,
          stats: ReadStats) -> Iterator[tuple[dict[str, str], bytes]]:
    """Rows as stripped strings, each with its original bytes (for dead letters)."""
    consumed: list[str] = []
    reader = csv.DictReader(_lines(path, stats, consumed))
    _ = reader.fieldnames  # reads the header, which belongs to no row
    consumed.clear()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # e.g. a field over the csv module's size limit
            stats.reject(kind, str(error), _raw(consumed))
            continue
        raw = _raw(consumed)
        values = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        try:
            "".join(values.values()).encode("utf-8")
        except UnicodeEncodeError:
            stats.reject(kind, "not valid UTF-8", raw)
            continue
        yield values, raw


def _raw(consumed: list[str]) -> bytes:
    raw = "".join(consumed).encode("utf-8", "surrogateescape")
    consumed.clear()
    return raw


def _empty_to_none(row: dict[str, str], *names: str) -> None:
    for name in names:
        if row.get(name) == "":
            del row[name]  # read back with row.get(name): None


def _header(path: Path) -> set[str]:
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        return {name.strip() for name in next(csv.reader(handle), [])}


def _require(path: Path, columns: set[str], *required: str) -> None:
    missing = [name for name in required if name not in columns]
    if missing:
        raise ReplayInputError(f"{path}: missing column(s) {', '.join(missing)}")


def _read(path: Path, kind: type[InputMessage], stats: ReadStats,
          prepare: Callable[[dict[str, str]], dict[str, object]]
          ) -> Iterator[tuple[int, int, InputMessage]]:
    name = kind.__name__.lower()
    previous_ms = None
    for row, raw in _rows(path, name, stats):
        try:
            message = msgspec.convert(prepare(row), kind, strict=False)
            if message.ts.tzinfo is None:  # CSV exports often omit the offset: UTC
                message = msgspec.structs.replace(message, ts=message.ts.replace(tzinfo=UTC))
            ts_ms = datetime_to_ms(message.ts)
        except (msgspec.ValidationError, ValueError, KeyError, TypeError,
                OverflowError) as error:
            stats.reject(name, str(error), raw)
            continue
        if previous_ms is not None and ts_ms < previous_ms:
            # Files are streamed, so a row older than its predecessor cannot be placed.
            stats.reject(name, "out of time order", raw)
            continue
        if previous_ms is not None and ts_ms - previous_ms > MAX_GAP_MS:
            stats.reject(name, "more than a year after the previous row", raw)
            continue
        previous_ms = ts_ms
        stats.rows[name] += 1
        yield ts_ms, KIND_ORDER[kind], message


def read_prices(path: Path, stats: ReadStats) -> Iterator[tuple]:
    """``SYMBOL.csv`` with ``timestamp`` and ``close`` (or ``price``), or a long CSV
    with ``timestamp,symbol,price``. A row's timestamp is when the price was observed."""
    columns = _header(path)
    value_column = "price" if "price" in columns else "close"
    _require(path, columns, "timestamp", value_column)
    file_symbol = None if "symbol" in columns else path.stem

    def prepare(row: dict[str, str]) -> dict[str, object]:
        return {"symbol": file_symbol or row["symbol"], "ts": row["timestamp"],
                "price": row[value_column], "source": "replay"}

    return _read(path, Price, stats, prepare)


def read_positions(path: Path, stats: ReadStats) -> Iterator[tuple]:
    """``timestamp,account,symbol,qty[,strategy,conviction,entry_price]``."""
    _require(path, _header(path), "timestamp", "account", "symbol", "qty")

    def prepare(row: dict[str, str]) -> dict[str, object]:
        _empty_to_none(row, "strategy", "conviction", "entry_price")
        return {"account": row["account"], "symbol": row["symbol"], "ts": row["timestamp"],
                "qty": row["qty"], "strategy": row.get("strategy"),
                "conviction": row.get("conviction"), "entry_price": row.get("entry_price")}

    return _read(path, Position, stats, prepare)


def read_accounts(path: Path, stats: ReadStats) -> Iterator[tuple]:
    """``timestamp,account,equity[,desk,maintenance_rate]``."""
    _require(path, _header(path), "timestamp", "account", "equity")

    def prepare(row: dict[str, str]) -> dict[str, object]:
        _empty_to_none(row, "desk", "maintenance_rate")
        return {"account": row["account"], "ts": row["timestamp"], "equity": row["equity"],
                "desk": row.get("desk"), "maintenance_rate": row.get("maintenance_rate")}

    return _read(path, Account, stats, prepare)
