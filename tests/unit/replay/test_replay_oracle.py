"""`heat replay` over the real 5-minute bars equals an independent pandas/scipy recomputation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oracle.reference import check_replay_output
from support.heat_pipeline import recorded_inputs

ROOT = Path(__file__).parents[3]
PRICES = sorted((ROOT / "data" / "binance-5m").glob("*.csv"))
POSITIONS = ROOT / "tests" / "data" / "replay" / "positions.csv"
ACCOUNTS = ROOT / "tests" / "data" / "replay" / "accounts.csv"
ORACLE_STRIDE = 29  # a prime, so the sample walks through every frame kind
ORACLE_END = "2018-01-18"


@pytest.mark.slow
def test_replay_frames_match_the_reference(tmp_path: Path) -> None:
    # A week of the real bars through the 16-17 January crash: every trigger, desk and
    # alert kind occurs, about 40,000 frames.
    inputs = recorded_inputs(tmp_path / "inputs", ORACLE_END)
    frames, alerts = tmp_path / "frames.jsonl", tmp_path / "alerts.jsonl"
    completed = subprocess.run(
        [sys.executable, "-m", "heatmap.cli.main", "replay", *inputs.args(), "--bar", "5m",
         "--timeframes", "1h,4h,1d", "--out", str(frames), "--alerts", str(alerts)],
        capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    # Every ORACLE_STRIDE-th frame (all triggers, accounts, desks and timeframes
    # interleave) is recomputed from scratch; the whole file is checked for missing bar
    # frames. HEAT_ORACLE_STRIDE=1 recomputes every frame.
    stride = int(os.environ.get("HEAT_ORACLE_STRIDE", ORACLE_STRIDE))
    summary = check_replay_output(frames, inputs.prices, inputs.positions, inputs.accounts,
                                  rel_tol=1e-6, stride=stride)
    assert summary.frames_checked > 30_000 // stride
    assert summary.ok, (summary.mismatches[:10], summary.missing_bar_frames[:5])
    assert set(summary.by_trigger) == {"bar", "position", "equity"}

    with open(frames) as lines:
        first = json.loads(next(lines))
    assert first["params"]["bar_interval_s"] == 300
    assert len(first["params_hash"]) == 16
    kinds = {json.loads(line)["kind"] for line in alerts.read_text().splitlines()}
    assert {"cluster_concentration", "liquidation_proximity", "regime_break"} <= kinds


def _replay_1m(prices: Path, positions: Path, out: Path) -> tuple[list[dict], str]:
    """Run `heat replay` on 1-minute bars; returns the frames and the report it printed."""
    completed = subprocess.run(
        [sys.executable, "-m", "heatmap.cli.main", "replay", "--prices", str(prices),
         "--positions", str(positions), "--bar", "1m", "--timeframes", "1h",
         "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    return frames, " ".join(completed.stderr.split())


def test_replay_rejects_bad_rows_and_keeps_going(tmp_path: Path) -> None:
    prices = tmp_path / "BTCUSDT.csv"
    prices.write_text("timestamp,close\n2026-01-01T00:00:00Z,100\n"
                      "2026-01-01T00:00:30Z,nan\n2026-01-01T00:01:00Z,-5\n"
                      "not-a-time,101\n2026-01-01T00:02:00Z,102\n")
    positions = tmp_path / "positions.csv"
    positions.write_text("timestamp,account,symbol,qty\n2026-01-01T00:00:10Z,a,BTCUSDT,1\n"
                         "2026-01-01T00:00:20Z,,BTCUSDT,1\n")
    frames, report = _replay_1m(prices, positions, tmp_path / "frames.jsonl")
    assert "4 rows rejected" in report
    assert [frame["trigger"] for frame in frames] == ["position", "bar", "bar"]


def test_hostile_rows_are_counted_not_fatal(tmp_path: Path) -> None:
    prices = tmp_path / "ETHUSDT.csv"
    prices.write_bytes(
        b"\xef\xbb\xbftimestamp,close\n"          # byte-order mark
        b"2026-01-01T00:00:00Z,100\n"
        b"2026-01-01 00:00:30,100.5\n"            # no offset: read as UTC
        b"2026-01-01T00:00:20Z,99\n"              # older than its predecessor
        b"2026-01-01T00:01:00Z," + b"9" * 200_000 + b"\n"  # over the csv field limit
        b"9999-12-31T23:59:59Z,101\n"             # a mistyped year
        b"2026-01-01T00:02:00Z,102\n")
    positions = tmp_path / "positions.csv"
    positions.write_bytes(b"timestamp,account,symbol,qty\n"
                          b"2026-01-01T00:00:10Z,caf\xe9,ETHUSDT,1\n"  # Latin-1, not UTF-8
                          b"2026-01-01T00:00:10Z,desk-1,ETHUSDT,1\n")
    frames, report = _replay_1m(prices, positions, tmp_path / "frames.jsonl")
    assert "4 rows rejected" in report
    assert [(f["trigger"], f["ts"][11:19]) for f in frames] == [
        ("position", "00:00:10"), ("bar", "00:01:00"), ("bar", "00:02:00")]
    assert frames[1]["positions"][0]["price"] == 100.5
