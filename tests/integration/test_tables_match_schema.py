"""The writer's table definitions (derived from the message Structs) match the migrated
database column for column and type for type."""

from __future__ import annotations

import psycopg

from heatmap.db import tables


def _udt_name(column_type: str) -> str:
    """information_schema's name of a type: ``_text`` for ``text[]``."""
    return f"_{column_type[:-2]}" if column_type.endswith("[]") else column_type


def test_every_table_matches_the_migrated_schema(migrated) -> None:
    with psycopg.connect(migrated.admin_url()) as connection:
        for table in tables.ALL_TABLES:
            stored = dict(connection.execute(
                "SELECT column_name, udt_name FROM information_schema.columns "
                "WHERE table_schema = 'heat' AND table_name = %s", (table.name,)).fetchall())
            derived = {name: _udt_name(kind) for name, kind in table.columns}
            assert derived == stored, table.name
            key = connection.execute(
                "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (f"heat.{table.name}",)).fetchone()
            assert key is not None and key[0] == sorted(table.key), table.name
