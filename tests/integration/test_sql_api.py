"""Every query docs/sql.md documents runs as heat_reader on replayed real data and
returns the columns it documents."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from heatmap.settings.database import READER_ROLE

ROOT = Path(__file__).parents[2]
SQL_DOC = ROOT / "docs" / "sql.md"
QUERY = re.compile(r"```sql\n-- columns: (?P<columns>[^\n]+)\n(?P<sql>.*?)```", re.S)


def _documented_queries() -> list[tuple[list[str], str]]:
    section = SQL_DOC.read_text().split("## Queries", 1)[1]
    section = section.split("\n## ", 1)[0]
    return [([c.strip() for c in m.group("columns").split(",")], m.group("sql"))
            for m in QUERY.finditer(section)]


def test_the_docs_document_ten_queries() -> None:
    assert len(_documented_queries()) == 10


def test_documented_queries_run_as_reader(replayed) -> None:
    with psycopg.connect(replayed.role_url(READER_ROLE)) as reader:
        for columns, query in _documented_queries():
            cursor = reader.execute(query)
            assert [d.name for d in cursor.description] == columns, query
            assert cursor.fetchall(), f"no rows from: {query}"
