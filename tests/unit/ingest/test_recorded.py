"""Recorded files as an ingest source: rejected rows become dead letters on their topic."""

from __future__ import annotations

from pathlib import Path

from heatmap.ingest.recorded import recorded_files
from heatmap.ingest.rejected import Rejected
from heatmap.schema import Position, Price
from heatmap.sources.csv_files import ReadStats
from heatmap.topics import Topics


def test_rejected_rows_become_dead_letters_on_the_topic_of_their_file(tmp_path: Path) -> None:
    btc = tmp_path / "BTCUSDT.csv"
    btc.write_text("timestamp,close\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,-1\n")
    eth = tmp_path / "ETHUSDT.csv"  # years after BTCUSDT: replay would refuse the gap
    eth.write_text("timestamp,close\n2030-01-01T00:00:00Z,2\n")
    positions = tmp_path / "positions.csv"
    positions.write_text("timestamp,account,symbol,qty\n2026-01-01T00:00:30Z,acct-1,BTCUSDT,x\n"
                         "2026-01-01T00:02:00Z,acct-1,BTCUSDT,1\n")
    topics = Topics.from_settings()
    items = list(recorded_files([btc, eth], positions, None, topics, ReadStats()))
    messages = [item for item in items if not isinstance(item, Rejected)]
    rejected = {item.topic: item.payload for item in items if isinstance(item, Rejected)}
    # No gap limit across files: recordings of different years may be produced together.
    assert [type(m).__name__ for m in messages] == ["Price", "Position", "Price"]
    assert isinstance(messages[1], Position) and isinstance(messages[2], Price)
    assert messages[2].ts.year == 2030
    assert rejected == {topics.prices: b"2026-01-01T00:01:00Z,-1\n",
                        topics.positions: b"2026-01-01T00:00:30Z,acct-1,BTCUSDT,x\n"}
    # A rejection is handed on no later than the message read after it.
    assert items.index(messages[1]) > max(i for i, item in enumerate(items)
                                          if isinstance(item, Rejected))
