"""A desk reader sees its desks' rows and no others, in every heat_api view and in the
tables behind them; heat_reader still sees every desk; the writer still writes. On plain
PostgreSQL and on TimescaleDB (whose rollup views read continuous aggregates)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from heatmap.db import desk_readers
from heatmap.settings.database import READER_ROLE
from support.desk_roles import login_url

PASSWORD = "desk-test-password"
# Views without a book or account: market data every reader sees.
MARKET_VIEWS = {"prices", "correlations"}


@pytest.fixture
def alpha_reader(replayed):
    """A login role reading desk alpha only; dropped afterwards (roles are cluster-wide)."""
    role = f"heat_desk_t{uuid.uuid4().hex[:8]}"
    reader = desk_readers.create(replayed, role, ["alpha"], PASSWORD)
    assert reader.desks == ("alpha",)
    yield reader
    desk_readers.drop(replayed, role)



def _views(connection: psycopg.Connection) -> dict[str, list[str]]:
    rows = connection.execute(
        "SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) "
        "FROM information_schema.columns WHERE table_schema = 'heat_api' "
        "GROUP BY table_name").fetchall()
    return dict(rows)


def _books(connection: psycopg.Connection, desk: str) -> set[tuple[str, str]]:
    rows = connection.execute("SELECT DISTINCT book_kind, book FROM heat.frames WHERE desk = %s",
                              (desk,)).fetchall()
    return {(kind, book) for kind, book in rows}


def _seen(connection: psycopg.Connection, view: str, columns: list[str]) -> set[tuple]:
    """The books (book_kind, book) or accounts a view shows."""
    key = ["book_kind", "book"] if "book" in columns else ["account"]
    return set(connection.execute(sql.SQL("SELECT DISTINCT {} FROM heat_api.{}").format(
        sql.SQL(", ").join(map(sql.Identifier, key)), sql.Identifier(view))).fetchall())


def test_desk_reader_sees_only_its_desk(replayed, alpha_reader) -> None:
    with psycopg.connect(replayed.admin_url(), autocommit=True) as admin:
        alpha, beta = _books(admin, "alpha"), _books(admin, "beta")
        views = _views(admin)
    assert alpha and beta and not alpha & beta
    alpha_accounts = {(book,) for kind, book in alpha if kind == "account"}
    with psycopg.connect(login_url(replayed, alpha_reader.role, PASSWORD)) as desk, \
            psycopg.connect(replayed.role_url(READER_ROLE)) as everyone:
        for view, columns in sorted(views.items()):
            if view in MARKET_VIEWS:
                continue
            if "book" not in columns and "account" not in columns:
                # Rows per desk (the alert levels): its own, and the defaults' (NULL).
                assert "desk" in columns, view
                query = sql.SQL("SELECT DISTINCT desk FROM heat_api.{}").format(
                    sql.Identifier(view))
                seen_desks = {desk_name for (desk_name,) in desk.execute(query)}
                assert seen_desks == {"alpha", None}, f"heat_api.{view}: {seen_desks}"
                assert {name for (name,) in everyone.execute(query)} > seen_desks, view
                continue
            seen = _seen(desk, view, columns)
            allowed = alpha if "book" in columns else alpha_accounts
            assert seen, f"desk reader sees nothing in heat_api.{view}"
            assert seen <= allowed, f"heat_api.{view} shows {seen - allowed} to desk alpha"
            all_seen = _seen(everyone, view, columns)
            assert all_seen > seen, f"heat_reader sees only desk alpha in heat_api.{view}"
        # The functions read through the views.
        books = desk.execute("SELECT DISTINCT book_kind, book FROM heat_api.most_concentrated("
                             "'2018-01-01', '2018-02-01', 1000, '1h')").fetchall()
        assert books and set(books) <= alpha
        assert set(everyone.execute("SELECT DISTINCT book_kind, book FROM heat_api.frames")
                   ) >= alpha | beta


def test_desk_reader_cannot_read_the_tables(replayed, alpha_reader) -> None:
    """Every table, aggregate and the desk list itself are out of a desk reader's reach."""
    with psycopg.connect(replayed.admin_url(), autocommit=True) as admin:
        relations = [name for (name,) in admin.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'heat' AND c.relkind IN ('r', 'v', 'm', 'p')")]
    assert {"frames", "positions", "desk_readers", "book_desks"} <= set(relations)
    with psycopg.connect(login_url(replayed, alpha_reader.role, PASSWORD), autocommit=True) as desk:
        for relation in relations:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                desk.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(
                    sql.Identifier("heat", relation)))


def test_writer_still_writes_and_books_get_desks(replayed) -> None:
    """The replay wrote as heat_writer; the trigger named every desk book it wrote."""
    with psycopg.connect(replayed.admin_url(), autocommit=True) as admin:
        books = set(admin.execute("SELECT book_kind, book, desk FROM heat.book_desks"))
        framed = set(admin.execute(
            "SELECT DISTINCT book_kind, book, desk FROM heat.frames WHERE desk IS NOT NULL"))
    assert books == framed and {desk for *_, desk in books} >= {"alpha", "beta"}


def _heat(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "heatmap.cli.main", *args], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_heat_db_reader_create_makes_a_login_for_a_desk(postgresql_migrated,
                                                        tmp_path: Path) -> None:
    """As a user runs it: the role logs in with its password and reads desk beta only; a
    role that is not a desk reader is refused in one line."""
    role = f"heat_desk_c{uuid.uuid4().hex[:8]}"
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    env = {**os.environ, "HEAT_DATABASE_URL": postgresql_migrated.admin_url()}
    created = _heat("db", "reader", "create", "--desk", "beta", "--role", role,
                    "--password-file", str(secret), env=env)
    try:
        assert created.returncode == 0, created.stderr
        assert f"{role} reads desk(s) beta" in created.stdout
        with psycopg.connect(login_url(postgresql_migrated, role, PASSWORD)) as desk:
            assert desk.execute("SELECT r.desk FROM heat_api.frames r").fetchall() == []
        listed = _heat("db", "reader", "list", env=env)
        assert f"{role}: beta" in listed.stdout
        refused = _heat("db", "reader", "create", "--desk", "beta", "--role", READER_ROLE,
                        "--password-file", str(secret), env=env)
        assert refused.returncode == 1
        assert refused.stderr.strip().count("\n") == 0
        assert "exists and is not a desk reader" in refused.stderr
    finally:
        dropped = _heat("db", "reader", "drop", role, env=env)
    assert dropped.returncode == 0, dropped.stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(login_url(postgresql_migrated, role, PASSWORD)).close()


def test_heat_db_desk_role_sets_exactly_the_desks_named(postgresql_migrated,
                                                        tmp_path: Path) -> None:
    """``heat db desk-role`` creates the role, and run again sets its desks to those named
    (not adding to them); the role has the readers' statement timeout."""
    role = f"heat_desk_r{uuid.uuid4().hex[:8]}"
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    env = {**os.environ, "HEAT_DATABASE_URL": postgresql_migrated.admin_url()}
    try:
        created = _heat("db", "desk-role", role, "--desk", "alpha", "--desk", "beta",
                        "--password-file", str(secret), env=env)
        assert created.returncode == 0, created.stderr
        assert f"{role} reads desk(s) alpha, beta" in created.stdout
        updated = _heat("db", "desk-role", role, "--desk", "beta", "--password-file",
                        str(secret), env=env)
        assert updated.returncode == 0, updated.stderr
        assert f"{role} reads desk(s) beta" in updated.stdout
        assert f"{role}: beta" in _heat("db", "reader", "list", env=env).stdout
        with psycopg.connect(login_url(postgresql_migrated, role, PASSWORD)) as desk:
            assert desk.execute("SHOW statement_timeout").fetchone() == ("5min",)
        refused = _heat("db", "desk-role", READER_ROLE, "--desk", "beta", "--password-file",
                        str(secret), env=env)
        assert refused.returncode == 1
        assert refused.stderr.strip().count("\n") == 0
        assert "exists and is not a desk reader" in refused.stderr
    finally:
        desk_readers.drop(postgresql_migrated, role)


def test_a_readers_long_statement_is_cancelled(postgresql_migrated) -> None:
    """heat_reader and desk readers get HEAT_READER_STATEMENT_TIMEOUT_MS from migrate and
    desk-role: a statement running longer is cancelled by the server."""
    from heatmap.db import migrations

    settings = postgresql_migrated.model_copy(update={"reader_statement_timeout_ms": 300})
    migrations.migrate(settings)
    role = f"heat_desk_s{uuid.uuid4().hex[:8]}"
    desk_readers.create(settings, role, ["alpha"], PASSWORD)
    try:
        for url in (settings.role_url(READER_ROLE), login_url(settings, role, PASSWORD)):
            with psycopg.connect(url, autocommit=True) as reader:
                assert reader.execute("SHOW statement_timeout").fetchone() == ("300ms",)
                reader.execute("SELECT pg_sleep(0.01)")
                with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
                    reader.execute("SELECT pg_sleep(10)")
        # The writer is not a reader: its batches are not cut short.
        with psycopg.connect(settings.role_url("heat_writer")) as writer:
            assert writer.execute("SHOW statement_timeout").fetchone() == ("0",)
    finally:
        desk_readers.drop(settings, role)
