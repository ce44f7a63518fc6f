"""Recorded files merged into one stream: time order, kind order at equal times, gaps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from heatmap.schema import Account, Position, Price, encode
from heatmap.sources.csv_files import ReadStats
from heatmap.sources.merge import merged_events


def write(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


def describe(message: Price | Position | Account) -> tuple[str, str, str]:
    name = message.symbol if isinstance(message, Price) else message.account
    return f"{message.ts:%H:%M}", type(message).__name__, name


def test_events_come_in_time_order_prices_then_accounts_then_positions(tmp_path: Path) -> None:
    btc = write(tmp_path / "BTCUSDT.csv", "timestamp,close\n2026-01-01T00:00:00Z,1\n"
                "2026-01-01T00:02:00Z,2\n")
    eth = write(tmp_path / "ETHUSDT.csv", "timestamp,close\n2026-01-01T00:01:00Z,1\n"
                "2026-01-01T00:02:00Z,2\n")
    positions = write(tmp_path / "positions.csv", "timestamp,account,symbol,qty\n"
                      "2026-01-01T00:00:00Z,acct-1,BTCUSDT,1\n"
                      "2026-01-01T00:02:00Z,acct-1,ETHUSDT,1\n")
    accounts = write(tmp_path / "accounts.csv", "timestamp,account,equity\n"
                     "2026-01-01T00:00:00Z,acct-1,100\n"
                     "2026-01-01T00:02:00Z,acct-1,101\n")
    stats = ReadStats()
    events = [describe(m) for m in merged_events([btc, eth], positions, accounts, stats)]
    assert events == [
        ("00:00", "Price", "BTCUSDT"), ("00:00", "Account", "acct-1"),
        ("00:00", "Position", "acct-1"),
        ("00:01", "Price", "ETHUSDT"),
        ("00:02", "Price", "BTCUSDT"), ("00:02", "Price", "ETHUSDT"),
        ("00:02", "Account", "acct-1"), ("00:02", "Position", "acct-1"),
    ]
    assert stats.rows == {"price": 4, "position": 2, "account": 2}


def test_positions_and_accounts_are_optional(tmp_path: Path) -> None:
    btc = write(tmp_path / "BTCUSDT.csv", "timestamp,close\n2026-01-01T00:00:00Z,1\n")
    assert [describe(m) for m in merged_events([btc], None, None, ReadStats())] == [
        ("00:00", "Price", "BTCUSDT")]


def test_a_file_starting_a_year_after_the_others_is_rejected_unless_gaps_are_allowed(
        tmp_path: Path) -> None:
    early = write(tmp_path / "BTCUSDT.csv", "timestamp,close\n2026-01-01T00:00:00Z,1\n")
    late = write(tmp_path / "ETHUSDT.csv", "timestamp,close\n2027-06-01T00:00:00Z,2\n")
    seen: list[tuple[str, str, bytes]] = []
    stats = ReadStats(on_reject=lambda *rejected: seen.append(rejected))
    kept = list(merged_events([early, late], None, None, stats))
    assert [m.symbol for m in kept] == ["BTCUSDT"]
    # Each file is in order on its own; the gap shows only once merged. The dead letter
    # carries the message as JSON (its CSV line is no longer at hand).
    ((kind, reason, raw),) = seen
    assert (kind, reason) == ("price", "more than a year after the previous row")
    assert raw == encode(Price(symbol="ETHUSDT", ts=datetime(2027, 6, 1, tzinfo=UTC),
                               price=2.0, source="replay"))
    # None: every gap is accepted (ingest, where recordings of different years may mix).
    everything = list(merged_events([early, late], None, None, ReadStats(), max_gap_ms=None))
    assert [m.symbol for m in everything] == ["BTCUSDT", "ETHUSDT"]
