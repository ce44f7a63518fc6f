"""``heat compare`` on the real 5-minute bars in data/binance-5m (10 to 19 January 2018)
with a clustered-alts book and an evenly spread book (tests/data/compare)."""

from __future__ import annotations

import csv
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from heatmap.cli.main import app
from heatmap.compare.report import CompareReport

ROOT = Path(__file__).parents[3]
BARS = ROOT / "data" / "binance-5m"
BOOKS = ROOT / "tests" / "data" / "compare"
UNTIL = "2018-01-19"
ALTS = ("ADABTC", "XLMBTC", "TRXBTC")
BOOK_NAMES = ("alts-clustered", "evenly-spread")


def _equal_weight_drawdown() -> tuple[str, str, float]:
    """Straight from the CSVs: an equal-weight ADA/XLM/TRX long bought at the 11 January
    00:00 closes, its deepest fall from a running high (peak time, trough time, depth)."""
    closes: dict[str, dict[str, float]] = {}
    for symbol in ALTS:
        with open(BARS / f"{symbol}.csv", newline="") as handle:
            closes[symbol] = {row["timestamp"]: float(row["close"])
                              for row in csv.DictReader(handle)}
    times = sorted(t for t in set().union(*closes.values()) if t >= "2018-01-11T00:00:00Z")
    last: dict[str, float] = {}
    entry: dict[str, float] = {}
    high, high_at, worst = 0.0, "", (0.0, "", "")
    for ts in times:
        for symbol in ALTS:
            last[symbol] = closes[symbol].get(ts, last.get(symbol, 0.0))
        entry = entry or dict(last)
        value = sum(last[s] / entry[s] for s in ALTS) / len(ALTS)
        if value >= high:
            high, high_at = value, ts
        depth = 1.0 - value / high
        if depth > worst[0]:
            worst = (depth, high_at, ts)
    return worst[1], worst[2], worst[0]


def test_the_alts_lose_36_5_percent_against_btc_from_13_to_16_january() -> None:
    peak, trough, depth = _equal_weight_drawdown()
    assert peak.startswith("2018-01-13")
    assert trough == "2018-01-16T22:25:00Z"
    assert round(depth, 3) == 0.365


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command line's input options: bars up to 19 January, the two books."""
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "bars").mkdir()
    for path in sorted(BARS.glob("*.csv")):
        header, *rows = path.read_text().splitlines()
        (folder / "bars" / path.name).write_text(
            "\n".join([header, *(r for r in rows if r < UNTIL)]))
    for name in ("positions.csv", "accounts.csv"):
        header, *rows = (BOOKS / name).read_text().splitlines()
        (folder / name).write_text("\n".join(
            [header, *(r for r in rows if r.split(",")[1] in BOOK_NAMES)]))
    return ["--prices", str(folder / "bars"), "--positions", str(folder / "positions.csv"),
            "--accounts", str(folder / "accounts.csv"), "--bar", "5m", "--timeframes",
            "1h,4h,1d", "--leverage", "asis"]


def _compare(options: list[str]) -> None:
    result = CliRunner().invoke(app, ["compare", *options])
    assert result.exit_code == 0, result.output
    assert "Worst drawdowns" in result.output


@pytest.mark.slow
def test_report_is_deterministic_and_finds_the_sell_off(inputs: list[str],
                                                        tmp_path: Path) -> None:
    first, second, picture = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.png"
    _compare([*inputs, "--out", str(first), "--png", str(picture)])
    _compare([*inputs, "--out", str(second)])
    assert first.read_bytes() == second.read_bytes()
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 50_000

    report = msgspec.json.decode(first.read_bytes(), type=CompareReport)
    books = {row.book: row for row in report.scenarios}
    assert sorted(books) == sorted(BOOK_NAMES)
    clustered, spread = books["alts-clustered"], books["evenly-spread"]
    worst = clustered.drawdowns[0]
    assert worst.peak_ts == "2018-01-13T00:05:00.000Z"
    assert worst.trough_ts == "2018-01-16T22:25:00.000Z"
    _, _, depth = _equal_weight_drawdown()
    assert worst.depth == pytest.approx(depth, abs=1e-4)
    assert clustered.max_drawdown == worst.depth
    assert {c.cluster for c in worst.loss_by_cluster[:3]} == set(ALTS)
    assert worst.heat_before is not None and worst.heat_before.top_cluster in ALTS
    # Spread over ten coins the same days cost less.
    assert spread.max_drawdown < 0.75 * clustered.max_drawdown
    assert clustered.liquidation is None and spread.liquidation is None
