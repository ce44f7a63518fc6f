"""A desk reader's rows are exactly heat_reader's rows of its desks, in every relation of
schema heat_api as the catalog lists them (views, and set-returning functions called
for every book they take), on plain PostgreSQL and on TimescaleDB (whose rollup views
read continuous aggregates, refreshed first); and a desk reader writes nowhere and
reads nothing in schema heat."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from heatmap.db import desk_readers, rollups
from heatmap.settings.database import READER_ROLE
from support.desk_roles import login_url

PASSWORD = "desk-rows-password"
DESK = "alpha"
# Market data: no desk's, every reader sees all of it.
MARKET = {"prices", "correlations", "correlation_matrix"}
# Values for the functions' arguments, by name. Limits are far above the row counts so
# that a ranking over a desk's books is the ranking over every book, filtered.
ARGUMENTS: dict[str, Any] = {
    "p_from": "2018-01-01T00:00:00Z", "p_to": "2018-02-01T00:00:00Z",
    "p_ts": "2018-01-12T12:00:00Z", "p_timeframe": "1h", "p_n": 1_000_000,
}
# Arguments naming one book: the function is called for each book of every desk.
BOOK_ARGUMENTS = {"p_book", "p_book_kind"}


@dataclass(frozen=True)
class Relation:
    """A heat_api view, or a set-returning function with the names of its arguments and
    how many of the last ones have defaults."""

    name: str
    columns: tuple[str, ...]
    arguments: tuple[str, ...] = ()
    defaults: int = 0
    function: bool = False

    @property
    def required(self) -> tuple[str, ...]:
        return self.arguments[:len(self.arguments) - self.defaults]


@pytest.fixture
def desk_role(replayed) -> Iterator[str]:
    """A login role reading desk alpha; the TimescaleDB rollups refreshed before."""
    rollups.refresh_rollups(replayed)
    role = f"heat_desk_x{uuid.uuid4().hex[:8]}"
    desk_readers.create(replayed, role, [DESK], PASSWORD, replace=True)
    yield role
    desk_readers.drop(replayed, role)



def _relations(admin: psycopg.Connection) -> list[Relation]:
    """Every view and set-returning function of heat_api, from the catalog."""
    views = [Relation(name, tuple(columns)) for name, columns in admin.execute(
        "SELECT c.relname::text, array_agg(a.attname::text ORDER BY a.attnum) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = 'heat_api' AND c.relkind IN ('v', 'm') GROUP BY c.relname")]
    functions = [Relation(name, tuple(columns), tuple(arguments), defaults, function=True)
                 for name, arguments, columns, defaults in admin.execute(
        "SELECT p.proname::text, "
        "       (SELECT array_agg(n ORDER BY i) FROM unnest(p.proargnames, p.proargmodes) "
        "            WITH ORDINALITY AS a(n, m, i) WHERE m IS NULL OR m IN ('i', 'b')), "
        "       (SELECT array_agg(n ORDER BY i) FROM unnest(p.proargnames, p.proargmodes) "
        "            WITH ORDINALITY AS a(n, m, i) WHERE m IN ('t', 'o', 'b')), "
        "       p.pronargdefaults "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'heat_api' AND p.proretset")]
    return views + functions


def _canonical(value: Any) -> Any:
    """A hashable, order-free form of a value: floats to 12 significant digits (a desk's
    aggregate may sum the same rows in another order), lists and documents as tuples."""
    if isinstance(value, float):
        return value if not math.isfinite(value) else float(f"{value:.12g}")
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _canonical(item)) for key, item in value.items()))
    return value


def _rows(connection: psycopg.Connection, relation: Relation,
          arguments: dict[str, Any]) -> list[dict[str, Any]]:
    if relation.function:
        source = sql.SQL("{}({})").format(
            sql.Identifier("heat_api", relation.name),
            sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(name),
                                                          sql.Placeholder(name))
                               for name in arguments))
    else:
        source = sql.Identifier("heat_api", relation.name)
    with connection.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute(sql.SQL("SELECT * FROM {}").format(source), arguments).fetchall()


def _sorted(rows: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(repr(_canonical(tuple(sorted(row.items())))) for row in rows)


@dataclass(frozen=True)
class Desk:
    """What the desk owns, from the frames written (not from the desk lists)."""

    books: frozenset[tuple[str, str]]

    @property
    def accounts(self) -> frozenset[str]:
        return frozenset(book for kind, book in self.books if kind == "account")

    def owns(self, relation: Relation, row: dict[str, Any]) -> bool:
        """Whether a heat_reader row is one of the desk's (``relation`` not market data)."""
        columns = set(relation.columns)
        if {"book_kind", "book"} <= columns:
            return (row["book_kind"], row["book"]) in self.books
        if "account" in columns:
            return row["account"] in self.accounts or row.get("desk") == DESK
        if "book" in columns:  # a book named without its kind is an account
            return row["book"] in self.accounts
        if "desk" in columns:  # a desk's own, and what applies to no desk (NULL)
            return row["desk"] in (DESK, None)
        raise AssertionError(f"heat_api.{relation.name}: no book, account or desk column "
                             f"to filter by ({relation.columns}); add a rule for it")


def _calls(relation: Relation, books: Sequence[tuple[str, str]]
           ) -> Iterator[tuple[dict[str, Any], tuple[str, str] | None]]:
    """The argument sets a relation is read with, each with the book it names (if any)."""
    unknown = set(relation.required) - set(ARGUMENTS) - BOOK_ARGUMENTS
    assert not unknown, f"heat_api.{relation.name}: no test value for {unknown}"
    given = {name: ARGUMENTS[name] for name in relation.arguments if name in ARGUMENTS}
    if "p_book" not in relation.arguments:
        yield given, None
        return
    for kind, book in books:
        if "p_book_kind" in relation.arguments:
            yield {**given, "p_book": book, "p_book_kind": kind}, (kind, book)
        elif kind == "account":
            yield {**given, "p_book": book}, (kind, book)


def test_a_desk_role_reads_exactly_its_desks_rows(replayed, desk_role: str) -> None:
    with psycopg.connect(replayed.admin_url(), autocommit=True) as admin:
        relations = _relations(admin)
        books = sorted(admin.execute("SELECT DISTINCT book_kind, book FROM heat.frames "
                                     "WHERE desk IS NOT NULL").fetchall())
        desk = Desk(frozenset(admin.execute(
            "SELECT DISTINCT book_kind, book FROM heat.frames WHERE desk = %s", (DESK,))))
    assert desk.books and set(books) > desk.books
    names = {relation.name for relation in relations}
    # The catalog lists what the product documents, functions included.
    assert {"frames", "positions", "frame_metrics_1h", "cluster_metrics_1d", "prices",
            "heat_history", "most_concentrated", "drawdowns"} <= names, names
    compared: set[str] = set()
    desk_url = login_url(replayed, desk_role, PASSWORD)
    with psycopg.connect(desk_url, autocommit=True) as reader_of_desk, \
            psycopg.connect(replayed.role_url(READER_ROLE), autocommit=True) as everyone:
        for relation in relations:
            for arguments, book in _calls(relation, books):
                every_row = _rows(everyone, relation, arguments)
                if relation.name in MARKET:
                    expected = every_row
                elif book is not None:
                    expected = every_row if book in desk.books else []
                else:
                    expected = [row for row in every_row if desk.owns(relation, row)]
                seen = _rows(reader_of_desk, relation, arguments)
                assert _sorted(seen) == _sorted(expected), (
                    f"heat_api.{relation.name}({arguments}): the desk role sees "
                    f"{len(seen)} rows, heat_reader {len(expected)} of desk {DESK}")
                if expected:
                    compared.add(relation.name)
    # Not a comparison of empty sets: every relation holds rows of the desk.
    assert compared == names, names - compared


def test_a_desk_role_writes_nowhere_and_reads_nothing_in_heat(replayed,
                                                              desk_role: str) -> None:
    with psycopg.connect(replayed.admin_url(), autocommit=True) as admin:
        writable = admin.execute(
            "SELECT n.nspname::text, c.relname::text, p.privilege "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(privilege) "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "  AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "  AND has_table_privilege(%s, c.oid, p.privilege)", (desk_role,)).fetchall()
        relations = admin.execute(
            "SELECT n.nspname::text, c.relname::text, "
            "       (SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid "
            "        AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('heat', 'heat_api') AND c.relkind IN ('r', 'p', 'v', 'm')"
        ).fetchall()
    assert writable == [], f"the desk role may write to {writable}"
    heat_relations = [(schema, name) for schema, name, _ in relations if schema == "heat"]
    assert {("heat", "frames"), ("heat", "desk_readers")} <= set(heat_relations)
    desk_url = login_url(replayed, desk_role, PASSWORD)
    with psycopg.connect(desk_url, autocommit=True) as reader_of_desk:
        for schema, name, column in relations:
            target, first = sql.Identifier(schema, name), sql.Identifier(column)
            for statement in (sql.SQL("INSERT INTO {} DEFAULT VALUES").format(target),
                              sql.SQL("UPDATE {} SET {} = {}").format(target, first, first),
                              sql.SQL("DELETE FROM {}").format(target)):
                # A view that is not updatable says so before privileges are checked;
                # either way nothing is written.
                with pytest.raises((psycopg.errors.InsufficientPrivilege,
                                    psycopg.errors.FeatureNotSupported,
                                    psycopg.errors.ObjectNotInPrerequisiteState)):
                    reader_of_desk.execute(statement)
        for schema, name in heat_relations:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader_of_desk.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(
                    sql.Identifier(schema, name)))
