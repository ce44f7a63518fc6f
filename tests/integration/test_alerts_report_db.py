"""``heat alerts report --from-db`` reads the alerts a replay stored (as heat_reader) and
reports exactly what it reports from the same replay's alerts file."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from heatmap.alert_report.build import build_report
from heatmap.alert_report.stored import stored_alerts
from heatmap.db.writer import HeatWriter
from heatmap.engine.params import EngineParams
from heatmap.replay.run import DatabaseOutput, replay
from heatmap.schema import Alert
from heatmap.settings.database import READER_ROLE, WRITER_ROLE

ROOT = Path(__file__).parents[2]


def _until_jan_13(path: Path, tmp_path: Path) -> Path:
    header, *rows = path.read_text().splitlines()
    target = tmp_path / path.name
    target.write_text("\n".join([header, *(r for r in rows if r < "2018-01-13")]) + "\n")
    return target


def test_stored_alerts_report_as_the_file_does(postgresql_migrated, tmp_path: Path) -> None:
    settings = postgresql_migrated
    prices = [_until_jan_13(path, tmp_path)
              for path in sorted((ROOT / "data" / "binance-5m").glob("*.csv"))]
    books = ROOT / "tests" / "data" / "replay"
    alerts_out = io.BytesIO()
    with HeatWriter(settings.role_url(WRITER_ROLE), settings) as writer:
        result = replay(prices, _until_jan_13(books / "positions.csv", tmp_path),
                        _until_jan_13(books / "accounts.csv", tmp_path),
                        EngineParams(bar_interval_s=300), None, alerts_out,
                        database=DatabaseOutput(writer.write))
    assert result.alerts > 10
    decoder = msgspec.json.Decoder(Alert)
    from_file = [decoder.decode(line) for line in alerts_out.getvalue().splitlines()]

    stored = stored_alerts(settings.role_url(READER_ROLE), datetime(2018, 1, 1, tzinfo=UTC),
                           datetime(2018, 2, 1, tzinfo=UTC))

    assert len(stored) == len(from_file)
    assert msgspec.to_builtins(build_report(stored, None)) == msgspec.to_builtins(
        build_report(from_file, None))
    assert stored_alerts(settings.role_url(READER_ROLE), datetime(2018, 2, 1, tzinfo=UTC),
                         datetime(2018, 3, 1, tzinfo=UTC)) == []
