"""Streaming readers of price, position and account CSV files, merged by time.

Each file is read row by row (memory does not grow with its length) and
must be in time order. Rows are validated with the message schema; a bad
row is counted with its reason and skipped, never fatal.
"""

from __future__ import annotations

import csv
import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import msgspec

from heatmap.schema import Account, Position, Price, ts_to_ms

# At equal timestamps prices apply first, then account terms, then positions.
# A row this far after the previous one is taken for a typo (a mistyped year would
# otherwise close millions of empty bars) and rejected.
MAX_GAP_MS = 366 * 86_400_000
KIND_ORDER = {Price: 0, Account: 1, Position: 2}


class ReplayInputError(ValueError):
    """An input file cannot be replayed (unknown columns, rows out of time order)."""


@dataclass
class ReadStats:
    """Rows read and rejected (by reason), and bytes consumed for progress."""

    rows: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0


def price_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into their ``*.csv`` files (sorted)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.csv")) if path.is_dir() else [path])
    return files


def _lines(path: Path, stats: ReadStats) -> Iterator[str]:
    # utf-8-sig: spreadsheet exports often start with a byte-order mark. Bytes that
    # are not UTF-8 become surrogates here and reject their row in _rows.
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        for line in handle:
            stats.bytes_read += len(line)
            yield line


def _rows(path: Path, kind: str, stats: ReadStats) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(_lines(path, stats))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # e.g. a field over the csv module's size limit
            stats.rejected[f"{kind}: {error}"] += 1
            continue
        values = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        try:
            "".join(values.values()).encode("utf-8")
        except UnicodeEncodeError:
            stats.rejected[f"{kind}: not valid UTF-8"] += 1
            continue
        yield reader.line_num, values


def _empty_to_none(row: dict[str, str], *names: str) -> None:
    for name in names:
        if row.get(name) == "":
            row[name] = None


def _header(path: Path) -> set[str]:
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        return {name.strip() for name in next(csv.reader(handle), [])}


def _require(path: Path, columns: set[str], *required: str) -> None:
    missing = [name for name in required if name not in columns]
    if missing:
        raise ReplayInputError(f"{path}: missing column(s) {', '.join(missing)}")


def _read(path: Path, kind: type, stats: ReadStats, prepare) -> Iterator[tuple]:
    name = kind.__name__.lower()
    previous_ms = None
    for _, row in _rows(path, name, stats):
        try:
            message = msgspec.convert(prepare(row), kind, strict=False)
            if message.ts.tzinfo is None:  # CSV exports often omit the offset: UTC
                message = msgspec.structs.replace(message, ts=message.ts.replace(tzinfo=UTC))
            ts_ms = ts_to_ms(message.ts)
        except (msgspec.ValidationError, ValueError, KeyError, TypeError,
                OverflowError) as error:
            stats.rejected[f"{name}: {error}"] += 1
            continue
        if previous_ms is not None and ts_ms < previous_ms:
            # Files are streamed, so a row older than its predecessor cannot be placed.
            stats.rejected[f"{name}: out of time order"] += 1
            continue
        if previous_ms is not None and ts_ms - previous_ms > MAX_GAP_MS:
            stats.rejected[f"{name}: more than a year after the previous row"] += 1
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


def merged_events(prices: list[Path], positions: Path | None, accounts: Path | None,
                  stats: ReadStats) -> Iterator[Price | Position | Account]:
    """All rows of all files as messages, in time order (prices first at equal times).

    Rows far ahead of everything before them are rejected (see ``MAX_GAP_MS``).
    """
    streams = [read_prices(path, stats) for path in prices]
    if accounts is not None:
        streams.append(read_accounts(accounts, stats))
    if positions is not None:
        streams.append(read_positions(positions, stats))
    last_ms = None
    for ts_ms, _, message in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        if last_ms is not None and ts_ms - last_ms > MAX_GAP_MS:
            stats.rejected[f"{type(message).__name__.lower()}: more than a year after "
                           "the previous row"] += 1
            continue
        last_ms = ts_ms
        yield message
