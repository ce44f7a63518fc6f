"""``heat db``: versioned migrations of the heat database."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed
from heatmap.db import migrations
from heatmap.db.settings import DbSettings

app = typer.Typer(help="Database migrations and status (HEAT_DATABASE_URL).",
                  no_args_is_help=True)
# Progress goes to stdout; stderr holds only the one line of a failure.
console = Console()


@app.command()
def migrate() -> None:
    """Apply pending migrations (TimescaleDB layer too when available); idempotent."""
    settings = DbSettings()
    checks.database_url(settings)
    applied = migrations.migrate(settings, on_apply=lambda m: console.log(f"applying {m.label}"),
                                 on_notice=console.print)
    console.print(f"[green]{len(applied)} migration(s) applied[/green]" if applied
                  else "Database is up to date")


@app.command()
def status() -> None:
    """List migrations: applied (when), pending, or changed since applied."""
    settings = DbSettings()
    checks.database_url(settings)
    rows, timescale = migrations.status(settings)
    table = Table("migration", "applied at", "state")
    for row in rows:
        if row.migration.series == "timescale" and not timescale.usable:
            state = f"[dim]skipped ({timescale.reason})[/dim]"
        elif row.applied_at is None:
            state = "[yellow]pending[/yellow]"
        else:
            state = "ok" if row.checksum_matches else "[red]changed after applied[/red]"
        table.add_row(row.migration.label, str(row.applied_at or "-"), state)
    console.print(table)
    changed = [row.migration.label for row in rows if not row.checksum_matches]
    if changed:
        raise CommandFailed(f"migration(s) {', '.join(changed)} changed after they were "
                            "applied: restore the files or migrate a fresh database")
