"""``heat db``: versioned migrations of the heat database."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from heatmap.db import migrations
from heatmap.settings.database import DatabaseSettings

app = typer.Typer(help="Database migrations and status (HEAT_DATABASE_URL).",
                  no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def migrate() -> None:
    """Apply pending migrations (TimescaleDB layer too when available); idempotent."""
    settings = DatabaseSettings()
    try:
        applied = migrations.migrate(
            settings, on_apply=lambda m: console.log(f"applying {m.label}"))
    except (migrations.MigrationError, ValueError) as error:
        console.print(f"[red]migrate failed:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(f"[green]{len(applied)} migration(s) applied[/green]" if applied
                  else "Database is up to date")


@app.command()
def status() -> None:
    """List migrations: applied (when), pending, or changed since applied."""
    try:
        rows, timescale = migrations.status(DatabaseSettings())
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    table = Table("migration", "applied at", "state")
    for row in rows:
        if row.migration.series == "timescale" and not timescale:
            state = "[dim]skipped (no timescaledb)[/dim]"
        elif row.applied_at is None:
            state = "[yellow]pending[/yellow]"
        else:
            state = "ok" if row.checksum_matches else "[red]changed after applied[/red]"
        table.add_row(row.migration.label, str(row.applied_at or "-"), state)
    Console().print(table)
    if any(not row.checksum_matches for row in rows):
        raise typer.Exit(1)
