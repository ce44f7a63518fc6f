"""``heat db``: versioned migrations of the heat database, and rollup refreshes."""

from __future__ import annotations

from datetime import datetime

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from heatmap.db import migrations, rollups
from heatmap.db.settings import DbSettings
from heatmap.db.tables import moment
from heatmap.schema import parse_rfc3339_ms

app = typer.Typer(help="Database migrations and status (HEAT_DATABASE_URL).",
                  no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def migrate() -> None:
    """Apply pending migrations (TimescaleDB layer too when available); idempotent."""
    settings = DbSettings()
    try:
        applied = migrations.migrate(
            settings, on_apply=lambda m: console.log(f"applying {m.label}"),
            on_notice=console.print)
    except (migrations.MigrationError, ValueError) as error:
        console.print(f"[red]migrate failed:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(f"[green]{len(applied)} migration(s) applied[/green]" if applied
                  else "Database is up to date")


@app.command()
def status() -> None:
    """List migrations: applied (when), pending, or changed since applied."""
    try:
        rows, timescale = migrations.status(DbSettings())
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    table = Table("migration", "applied at", "state")
    for row in rows:
        if row.migration.series == "timescale" and not timescale.usable:
            state = f"[dim]skipped ({timescale.reason})[/dim]"
        elif row.applied_at is None:
            state = "[yellow]pending[/yellow]"
        else:
            state = "ok" if row.checksum_matches else "[red]changed after applied[/red]"
        table.add_row(row.migration.label, str(row.applied_at or "-"), state)
    Console().print(table)
    if any(not row.checksum_matches for row in rows):
        raise typer.Exit(1)


def _moment(text: str | None) -> datetime | None:
    return None if text is None else moment(parse_rfc3339_ms(text))


@app.command("refresh-rollups")
def refresh_rollups(
    from_ts: str | None = typer.Option(None, "--from", help="First time written: RFC 3339 or "
                                       "a date, UTC unless it has an offset. Default: the "
                                       "oldest stored frame."),
    to_ts: str | None = typer.Option(None, "--to", help="Last time written. Default: now."),
) -> None:
    """Bring the 1m/1h/1d rollups up to date after a backfill (TimescaleDB; as the owner)."""
    try:
        windows = rollups.refresh_rollups(DbSettings(), _moment(from_ts), _moment(to_ts))
    except (rollups.RollupRefreshError, ValueError, psycopg.Error) as error:
        console.print(f"[red]refresh-rollups failed:[/red] {str(error).splitlines()[0]}")
        raise typer.Exit(1) from error
    if not windows:
        console.print("Nothing to refresh: no stored frames in that range, or plain "
                      "PostgreSQL (its rollups are always current)")
        return
    console.print(f"{len(windows)} rollups refreshed from "
                  f"{min(w.start for w in windows):%Y-%m-%d %H:%M} to "
                  f"{max(w.end for w in windows):%Y-%m-%d %H:%M} UTC")
