"""Per-desk read roles: login roles that see only the rows of their desks.

Each is a member of ``heat_desk_reader`` and listed with its desks in
``heat.desk_readers``; the row security of ``0006_desk_readers.sql`` does the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from heatmap.db import reader_limits
from heatmap.db.migrations import scram_verifier
from heatmap.settings.database import DatabaseSettings

DESK_READER_GROUP = "heat_desk_reader"
# Role names a person can type into a URL without quoting: the default is heat_desk_<desk>.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DeskReaderError(RuntimeError):
    """A desk reader cannot be made or changed as asked (one line)."""


@dataclass(frozen=True)
class DeskReader:
    role: str
    desks: tuple[str, ...]


def default_role(desks: Sequence[str]) -> str:
    """``heat_desk_<desk>`` for a single desk, its name lowered and anything but letters,
    digits and ``_`` made ``_``.

    Raises
    ------
    DeskReaderError
        With several desks, which need a role name given.
    """
    if len(desks) != 1:
        raise DeskReaderError("a reader of several desks needs a role name (--role)")
    return "heat_desk_" + re.sub(r"[^a-z0-9_]", "_", desks[0].lower())


def check_role_name(role: str) -> str:
    """``role`` when it is a plain lower-case identifier, else :class:`DeskReaderError`."""
    if not _ROLE_NAME.match(role):
        raise DeskReaderError(f"role name {role!r}: use lower-case letters, digits and _, "
                              "starting with a letter or _, at most 63 characters")
    return role


def create(settings: DatabaseSettings, role: str, desks: Sequence[str],
           password: str, replace: bool = False) -> DeskReader:
    """Create the login role ``role`` reading only ``desks`` (or, if it is already a desk
    reader, set its password and add the desks); returns every desk it now reads.

    The password goes to the server as a SCRAM-SHA-256 verifier computed here; the role
    gets the readers' statement timeout (``settings.reader_statement_timeout_ms``).

    Parameters
    ----------
    replace : bool
        The role reads exactly ``desks`` afterwards: desks it read before and not
        named now are taken away (``heat db desk-role``). False adds to them.

    Raises
    ------
    DeskReaderError
        When ``role`` exists but is not a desk reader (e.g. ``heat_reader``), or the
        database is not migrated.
    """
    check_role_name(role)
    if not desks or any(not desk.strip() for desk in desks):
        raise DeskReaderError("give at least one desk, none empty")
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        _require_migrated(connection)
        verifier = scram_verifier(connection, role, password)
        with connection.transaction():
            exists = connection.execute("SELECT pg_has_role(oid, %s, 'MEMBER') FROM pg_roles "
                                        "WHERE rolname = %s",
                                        (DESK_READER_GROUP, role)).fetchone()
            if exists is not None and not exists[0]:
                raise DeskReaderError(f"role {role} exists and is not a desk reader; "
                                      "choose another name")
            verb = "ALTER" if exists else "CREATE"
            connection.execute(sql.SQL("{} ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(role), sql.Literal(verifier)))
            connection.execute(sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(DESK_READER_GROUP), sql.Identifier(role)))
            # A role may log in to this database; other databases keep their own grants.
            connection.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(connection.info.dbname), sql.Identifier(role)))
            if replace:
                connection.execute("DELETE FROM heat.desk_readers "
                                   "WHERE role = %s AND NOT desk = ANY(%s)",
                                   (role, list(desks)))
            with connection.cursor() as cursor:
                cursor.executemany("INSERT INTO heat.desk_readers (role, desk) VALUES (%s, %s) "
                                   "ON CONFLICT DO NOTHING",
                                   [(role, desk) for desk in desks])
            reader_limits.set_statement_timeout(connection, role,
                                                settings.reader_statement_timeout_ms)
        return DeskReader(role, _desks(connection, role))


def drop(settings: DatabaseSettings, role: str) -> None:
    """Remove a desk reader: its desks, then the role itself.

    Raises
    ------
    DeskReaderError
        When ``role`` is not a desk reader.
    """
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection, \
            connection.transaction():
        _require_migrated(connection)
        member = connection.execute("SELECT pg_has_role(oid, %s, 'MEMBER') FROM pg_roles "
                                    "WHERE rolname = %s", (DESK_READER_GROUP, role)).fetchone()
        if member is None or not member[0]:
            raise DeskReaderError(f"{role} is not a desk reader")
        connection.execute("DELETE FROM heat.desk_readers WHERE role = %s", (role,))
        connection.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
            sql.Identifier(connection.info.dbname), sql.Identifier(role)))
        try:
            connection.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        except psycopg.errors.DependentObjectsStillExist as error:
            # Roles are the server's, desk lists each database's: another database still
            # lists or grants to this role.
            detail = (error.diag.message_detail or str(error)).splitlines()[0]
            raise DeskReaderError(f"{role} is still used elsewhere ({detail}); drop it there "
                                  "first with that database's HEAT_DATABASE_URL") from error


def list_readers(settings: DatabaseSettings) -> list[DeskReader]:
    """Every desk reader of this database with its desks, by role name."""
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        _require_migrated(connection)
        rows = connection.execute(
            "SELECT role::text, array_agg(desk ORDER BY desk) FROM heat.desk_readers "
            "GROUP BY role ORDER BY role").fetchall()
    return [DeskReader(role, tuple(desks)) for role, desks in rows]


def _desks(connection: psycopg.Connection, role: str) -> tuple[str, ...]:
    rows = connection.execute("SELECT desk FROM heat.desk_readers WHERE role = %s "
                              "ORDER BY desk", (role,))
    return tuple(desk for (desk,) in rows)


def _require_migrated(connection: psycopg.Connection) -> None:
    found = connection.execute("SELECT to_regclass('heat.desk_readers')").fetchone()
    if found is None or found[0] is None:
        raise DeskReaderError("heat.desk_readers does not exist: run `heat db migrate`")
