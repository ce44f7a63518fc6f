"""Versioned SQL migrations: ``infra/db/migrations`` always, ``infra/db/timescale`` when
the TimescaleDB extension is available. Each file runs once, in order, recorded with
its checksum in ``public.heat_schema_migrations``; a changed applied file is an error.

What follows the settings rather than a version runs on every migration: the TimescaleDB
layer's retention and refresh policies (:mod:`heatmap.db.retention`), the role
passwords and the readers' statement timeout (:mod:`heatmap.db.reader_limits`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import psycopg
import sqlparse
from psycopg import sql

from heatmap.db import reader_limits, retention
from heatmap.settings.database import READER_ROLE, WRITER_ROLE, DatabaseSettings

SERIES = ("core", "timescale")
_FOLDERS = {"core": "migrations", "timescale": "timescale"}
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
NO_TRANSACTION_MARKER = "-- heat:no-transaction"
# Any constant works; all migrators of one database must agree on it.
_LOCK_KEY = 0x68656174  # "heat"

LEDGER = """
CREATE TABLE IF NOT EXISTS public.heat_schema_migrations (
    series     text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series, version)
)
"""


class MigrationError(RuntimeError):
    """The database and the migration files disagree, or a migration failed."""


@dataclass(frozen=True)
class Migration:
    series: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def in_transaction(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION_MARKER)

    @property
    def label(self) -> str:
        return f"{self.series}/{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class MigrationStatus:
    migration: Migration
    applied_at: datetime | None
    checksum_matches: bool


def sql_root() -> Path:
    return Path(str(resources.files("heatmap.db") / "sql"))


def load(series: str) -> list[Migration]:
    """The migrations of a series, by version; file names are ``NNNN_name.sql``."""
    folder = sql_root() / _FOLDERS[series]
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        migrations.append(Migration(series, int(match.group(1)), match.group(2),
                                    path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{folder}: two migrations share a version")
    return migrations


@dataclass(frozen=True)
class TimescaleSupport:
    """Whether this server can run the TimescaleDB layer, and if not, why (one line)."""

    usable: bool
    reason: str = ""


def timescale_support(connection: psycopg.Connection) -> TimescaleSupport:
    """Whether ``CREATE EXTENSION timescaledb`` can work on this server.

    The extension must be installed *and* preloaded: without
    ``shared_preload_libraries = 'timescaledb'`` the server ends the session
    that tries to create it.
    """
    if connection.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return TimescaleSupport(True)  # created before, so it loads
    if not connection.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
        return TimescaleSupport(False, "the timescaledb extension is not installed on this "
                                       "server")
    if not _preloaded(connection, "timescaledb"):
        return TimescaleSupport(False, "the timescaledb extension is installed but not "
                                       "preloaded (add it to shared_preload_libraries and "
                                       "restart PostgreSQL)")
    return TimescaleSupport(True)


def _preloaded(connection: psycopg.Connection, library: str) -> bool:
    try:
        with connection.transaction():
            row = connection.execute("SHOW shared_preload_libraries").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        # Only superusers read the list; a loaded library has defined its settings.
        row = connection.execute(
            "SELECT current_setting(%s, true) IS NOT NULL",
            (f"{library}.license",)).fetchone()
        return bool(row and row[0])
    libraries = row[0] if row else ""
    return library in (name.strip().strip('"') for name in libraries.split(","))


def _applied(connection: psycopg.Connection) -> dict[tuple[str, int], tuple[str, datetime]]:
    rows = connection.execute(
        "SELECT series, version, checksum, applied_at FROM public.heat_schema_migrations")
    return {(series, version): (checksum, at) for series, version, checksum, at in rows}


def status(settings: DatabaseSettings) -> tuple[list[MigrationStatus], TimescaleSupport]:
    """Every known migration with when it was applied; and whether TimescaleDB is usable."""
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        connection.execute(LEDGER)
        applied = _applied(connection)
        timescale = _timescale_decision(connection, settings)
    result = []
    for series in SERIES:
        for migration in load(series):
            checksum, at = applied.get((series, migration.version), (None, None))
            result.append(MigrationStatus(migration, at, checksum in (None, migration.checksum)))
    return result, timescale


def _run(connection: psycopg.Connection, migration: Migration,
         session_settings: dict[str, str]) -> None:
    for name, value in session_settings.items():
        connection.execute("SELECT set_config(%s, %s, false)", (name, value))
    record = ("INSERT INTO public.heat_schema_migrations (series, version, name, checksum) "
              "VALUES (%s, %s, %s, %s)")
    values = (migration.series, migration.version, migration.name, migration.checksum)
    if migration.in_transaction:
        with connection.transaction():
            connection.execute(migration.sql)
            connection.execute(record, values)
        return
    # Statements TimescaleDB refuses inside a transaction block run one by one;
    # such files are written to be re-runnable if a statement fails half-way.
    for statement in sqlparse.split(migration.sql):
        if sqlparse.format(statement, strip_comments=True).strip():
            connection.execute(statement)
    connection.execute(record, values)


def _timescale_decision(connection: psycopg.Connection,
                        settings: DatabaseSettings) -> TimescaleSupport:
    """Whether to apply the TimescaleDB layer, as ``HEAT_TIMESCALEDB`` says."""
    if settings.timescaledb == "off":
        return TimescaleSupport(False, "HEAT_TIMESCALEDB=off")
    support = timescale_support(connection)
    if not support.usable and settings.timescaledb == "require":
        raise MigrationError(f"HEAT_TIMESCALEDB=require, but {support.reason}")
    return support


def migrate(settings: DatabaseSettings, on_apply: Callable[[Migration], None] = lambda _: None,
            on_notice: Callable[[str], None] = lambda _: None) -> list[Migration]:
    """Apply every pending migration (idempotent); bring the TimescaleDB layer's policies
    in line with the retention settings; set role passwords when configured and the
    readers' statement timeout (``HEAT_READER_STATEMENT_TIMEOUT_MS``).

    ``on_notice`` hears, in one line each, why the TimescaleDB layer is not applied and
    which policies changed. Concurrent migrators wait for each other on an advisory lock.
    """
    applied_now = []
    with psycopg.connect(settings.admin_url(), autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            connection.execute(LEDGER)
            series = ["core"]
            timescale = _timescale_decision(connection, settings)
            if timescale.usable:
                series.append("timescale")
            else:
                on_notice(f"applying the plain PostgreSQL layer only: {timescale.reason}")
            for name in series:
                applied = _applied(connection)
                if name == "timescale":
                    connection.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                for migration in load(name):
                    known = applied.get((name, migration.version))
                    if known is not None:
                        if known[0] != migration.checksum:
                            raise MigrationError(f"{migration.label} was changed after it was "
                                                 "applied; add a new migration instead")
                        continue
                    on_apply(migration)
                    try:
                        _run(connection, migration,
                             settings.layer_settings() if name == "timescale" else {})
                    except psycopg.Error as error:
                        raise MigrationError(f"{migration.label} failed: {error}") from error
                    applied_now.append(migration)
            if timescale.usable:
                _apply_policies(connection, settings, on_notice)
            _set_role_passwords(connection, settings)
            reader_limits.apply_statement_timeouts(connection,
                                                   settings.reader_statement_timeout_ms)
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _apply_policies(connection: psycopg.Connection, settings: DatabaseSettings,
                    on_notice: Callable[[str], None]) -> None:
    try:
        changed = retention.apply_policies(connection, settings)
    except retention.RetentionError as error:
        raise MigrationError(str(error)) from error
    except psycopg.Error as error:
        raise MigrationError(f"setting the retention policies failed: {error}") from error
    if changed:
        on_notice(f"{len(changed)} retention and refresh policies set from the settings "
                  "(heat db status lists them)")


def scram_verifier(connection: psycopg.Connection, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password`` for ``role``, computed by libpq here: the
    password itself never reaches the server, its logs or its statistics."""
    verifier = connection.pgconn.encrypt_password(password.encode(), role.encode(),
                                                  b"scram-sha-256")
    return verifier.decode()


def _set_role_passwords(connection: psycopg.Connection, settings: DatabaseSettings) -> None:
    for role in (WRITER_ROLE, READER_ROLE):
        password = settings.role_password(role)
        if password is not None:
            connection.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(scram_verifier(connection, role, password))))
