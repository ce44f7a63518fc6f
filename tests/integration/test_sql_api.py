"""Every query docs/sql.md documents runs as heat_reader on replayed real data and
returns the columns it documents."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from heatmap.db.writer import HeatWriter
from heatmap.engine.params import EngineParams
from heatmap.replay.run import DatabaseOutput, replay
from heatmap.settings.database import READER_ROLE, WRITER_ROLE

ROOT = Path(__file__).parents[2]
SQL_DOC = ROOT / "docs" / "sql.md"
QUERY = re.compile(r"```sql\n-- columns: (?P<columns>[^\n]+)\n(?P<sql>.*?)```", re.S)


def _documented_queries() -> list[tuple[list[str], str]]:
    section = SQL_DOC.read_text().split("## Queries", 1)[1]
    section = section.split("\n## ", 1)[0]
    return [([c.strip() for c in m.group("columns").split(",")], m.group("sql"))
            for m in QUERY.finditer(section)]


@pytest.fixture
def replayed(migrated, tmp_path: Path):
    """The real 5-minute bars of 2018-01-10..12 and the replay fixture, stored by --to-db."""

    def until_jan_13(path: Path) -> Path:
        header, *rows = path.read_text().splitlines()
        target = tmp_path / path.name
        target.write_text("\n".join([header, *(r for r in rows if r < "2018-01-13")]) + "\n")
        return target

    prices = [until_jan_13(path) for path in sorted((ROOT / "data" / "binance-5m").glob("*.csv"))]
    fixture = ROOT / "tests" / "data" / "replay"
    params = EngineParams(bar_interval_s=300)
    with HeatWriter(migrated.role_url(WRITER_ROLE), migrated) as writer:
        result = replay(prices, until_jan_13(fixture / "positions.csv"),
                        until_jan_13(fixture / "accounts.csv"), params, None,
                        database=DatabaseOutput(writer.write))
    assert result.rows_written["frames"] > 1000
    return migrated


def test_readme_documents_nine_queries() -> None:
    assert len(_documented_queries()) == 9


def test_documented_queries_run_as_reader(replayed) -> None:
    with psycopg.connect(replayed.role_url(READER_ROLE)) as reader:
        for columns, query in _documented_queries():
            cursor = reader.execute(query)
            assert [d.name for d in cursor.description] == columns, query
            assert cursor.fetchall(), f"no rows from: {query}"
