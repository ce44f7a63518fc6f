"""psycopg 3 against the real PostgreSQL cluster of the test stack."""

from __future__ import annotations

import psycopg

from heatmap.stack.local import StackState


def test_round_trip_keeps_values_verbatim(stack: StackState) -> None:
    hostile = "x'); drop table frames; --"
    with psycopg.connect(stack.database_url) as connection:
        version = connection.execute("SHOW server_version_num").fetchone()[0]
        assert int(version) >= 150000
        connection.execute(
            "CREATE TEMP TABLE round_trip (account text, ts timestamptz, share double precision)")
        connection.execute(
            "INSERT INTO round_trip VALUES (%s, '2026-01-02T03:04:05.678Z', %s)", (hostile, 0.25))
        row = connection.execute("SELECT account, ts, share FROM round_trip").fetchone()
    assert row[0] == hostile
    assert row[1].isoformat() == "2026-01-02T03:04:05.678000+00:00"
    assert row[2] == 0.25
