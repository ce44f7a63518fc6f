"""Limits on the reading roles: ``heat_reader`` and every desk reader.

A desk's ad-hoc SQL runs on the same server as the sink's writes; a statement timeout
set on the role (``ALTER ROLE … IN DATABASE … SET statement_timeout``) cancels a
runaway query whatever the client asks for at connect time, short of the client
setting it again itself, which a reader may do only to lower it on purpose.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from heatmap.settings.database import READER_ROLE


def set_statement_timeout(connection: psycopg.Connection, role: str, timeout_ms: int) -> None:
    """Give ``role`` a statement timeout of ``timeout_ms`` in the connected database
    (0: none). Per database, as the desk lists are: another database keeps its own."""
    connection.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET statement_timeout = {}").format(
        sql.Identifier(role), sql.Identifier(connection.info.dbname), sql.Literal(timeout_ms)))


def reader_roles(connection: psycopg.Connection) -> list[str]:
    """``heat_reader`` and the desk readers this database lists, by name."""
    listed = connection.execute("SELECT to_regclass('heat.desk_readers')").fetchone()
    roles: list[str] = [READER_ROLE]
    if listed is not None and listed[0] is not None:
        roles += [role for (role,) in connection.execute(
            "SELECT DISTINCT role::text FROM heat.desk_readers r "
            "JOIN pg_roles g ON g.rolname = r.role ORDER BY 1")]
    return roles


def apply_statement_timeouts(connection: psycopg.Connection, timeout_ms: int) -> list[str]:
    """Set the statement timeout of every reading role; returns the roles set."""
    roles = reader_roles(connection)
    for role in roles:
        set_statement_timeout(connection, role, timeout_ms)
    return roles
