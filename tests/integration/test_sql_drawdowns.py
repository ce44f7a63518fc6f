"""heat_api.drawdowns: the drawdowns `heat compare` finds over files, found by SQL over the
same files stored by `heat replay --to-db`, on plain PostgreSQL and on TimescaleDB."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from heatmap.compare.run import CompareSettings, compare
from heatmap.db.writer import HeatWriter
from heatmap.engine.params import EngineParams
from heatmap.replay.run import DatabaseOutput, replay
from heatmap.schema import ms_to_datetime, rfc3339_to_ms
from heatmap.settings.database import READER_ROLE, WRITER_ROLE
from heatmap.sources.csv_files import ReadStats
from heatmap.sources.merge import merged_events

ROOT = Path(__file__).parents[2]
UNTIL = "2018-01-17T06"
BOOKS = ("alts-clustered", "evenly-spread")
ALTS = {"ADABTC", "XLMBTC", "TRXBTC"}
PARAMS = EngineParams(bar_interval_s=300, timeframes={"1d": 86400})
QUERY = ("SELECT book, rank, peak_ts, trough_ts, recovery_ts, peak_equity, trough_equity, "
         "depth, heat_ts, max_cluster_concentration, effective_bets, top_cluster, "
         "top_cluster_members FROM heat_api.drawdowns('2018-01-01', '2018-02-01', '1d', 3)")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, Path]:
    """Real bars up to 17 January 06:00 and the two compare books (without desks)."""
    folder = tmp_path_factory.mktemp("slice")
    prices = []
    for path in sorted((ROOT / "data" / "binance-5m").glob("*.csv")):
        header, *rows = path.read_text().splitlines()
        prices.append(folder / path.name)
        prices[-1].write_text("\n".join([header, *(r for r in rows if r < UNTIL)]) + "\n")
    books = ROOT / "tests" / "data" / "compare"
    positions, accounts = folder / "positions.csv", folder / "accounts.csv"
    header, *rows = (books / "positions.csv").read_text().splitlines()
    positions.write_text("\n".join([header, *(r for r in rows if r.split(",")[1] in BOOKS)]))
    accounts.write_text("timestamp,account,equity\n" + "".join(
        f"{row.split(',')[0]},{row.split(',')[1]},{row.split(',')[2]}\n"
        for row in (books / "accounts.csv").read_text().splitlines()[1:]
        if row.split(",")[1] in BOOKS))
    return prices, positions, accounts


def test_drawdowns_in_sql_match_heat_compare(migrated, inputs) -> None:
    prices, positions, accounts = inputs
    with HeatWriter(migrated.role_url(WRITER_ROLE), migrated) as writer:
        replay(prices, positions, accounts, PARAMS, None, database=DatabaseOutput(writer.write))
    with psycopg.connect(migrated.role_url(READER_ROLE)) as reader:
        rows = reader.execute(QUERY).fetchall()
    stored = {(row[0], row[1]): row for row in rows}

    outcome = compare(merged_events(prices, positions, accounts, ReadStats()),
                      CompareSettings(params=PARAMS))
    expected = {(result.book, drawdown.rank): drawdown
                for result in outcome.report.scenarios for drawdown in result.drawdowns}
    assert sorted(stored) == sorted(expected)
    assert {book for book, _ in stored} == set(BOOKS)
    for key, drawdown in expected.items():
        (_, _, peak, trough, recovery, peak_equity, trough_equity, depth, heat_ts,
         concentration, bets, cluster, members) = stored[key]
        assert peak == ms_to_datetime(rfc3339_to_ms(drawdown.peak_ts)), key
        assert trough == ms_to_datetime(rfc3339_to_ms(drawdown.trough_ts)), key
        assert recovery == (None if drawdown.recovery_ts is None
                            else ms_to_datetime(rfc3339_to_ms(drawdown.recovery_ts))), key
        assert (peak_equity, trough_equity, depth) == pytest.approx(
            (drawdown.peak_equity, drawdown.trough_equity, drawdown.depth), rel=1e-9), key
        # The heat before the peak, as stored (against the recorded equity).
        assert peak - timedelta(hours=1) <= heat_ts <= peak
        assert concentration > 0.0 and bets is not None and bets >= 1.0 - 1e-9
        assert cluster in members

    worst = stored[("alts-clustered", 1)]
    assert worst[3] == ms_to_datetime(rfc3339_to_ms("2018-01-16T22:25:00.000Z"))
    assert worst[7] == pytest.approx(0.365, abs=5e-4)
    assert worst[11] in ALTS
    assert stored[("evenly-spread", 1)][7] < worst[7]
