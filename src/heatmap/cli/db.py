"""``heat db``: versioned migrations of the heat database, and rollup refreshes."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from heatmap.cli import checks, db_readers
from heatmap.cli.errors import CommandFailed, UsageFailed
from heatmap.db import migrations, retention, rollups
from heatmap.schema import ms_to_datetime, rfc3339_to_ms
from heatmap.settings.database import DatabaseSettings

app = typer.Typer(help="Database migrations and status (HEAT_DATABASE_URL).",
                  no_args_is_help=True)
# Progress goes to stdout; stderr holds only the one line of a failure.
console = Console()
app.command("desk-role")(db_readers.desk_role)
app.add_typer(db_readers.app, name="reader")


@app.command()
def migrate() -> None:
    """Apply pending migrations (TimescaleDB layer too when available); idempotent."""
    settings = DatabaseSettings()
    checks.database_url(settings)
    applied = migrations.migrate(settings, on_apply=lambda m: console.log(f"applying {m.label}"),
                                 on_notice=console.print)
    console.print(f"[green]{len(applied)} migration(s) applied[/green]" if applied
                  else "Database is up to date")


@app.command()
def status() -> None:
    """List migrations and each table's retention window and policy (with its next run)."""
    settings = DatabaseSettings()
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
    console.print(_retention_table(retention.read_status(settings), timescale.usable))
    changed = [row.migration.label for row in rows if not row.checksum_matches]
    if changed:
        raise CommandFailed(f"migration(s) {', '.join(changed)} changed after they were "
                            "applied: restore the files or migrate a fresh database")


def _retention_table(rows: list[retention.RetentionStatus], timescale: bool) -> Table:
    """One line per table: its setting, the window asked for, the policy there is (plain
    PostgreSQL keeps every row: its windows are shown, and apply once on TimescaleDB)."""
    table = Table("table", "setting", "window", "policy", "next run",
                  title="Retention (TimescaleDB drops chunks created longer ago than the "
                  "window)")
    for row in rows:
        if not timescale:
            policy = "[dim]none (plain PostgreSQL keeps every row)[/dim]"
        elif row.policy is None:
            policy = "none" if row.window is None else "[yellow]none[/yellow]"
        else:
            policy = f"by {row.policy}, {row.policy_window}"
            if row.policy != "creation time":
                policy = f"[yellow]{policy}[/yellow]"
        table.add_row(f"heat.{row.relation}", f"HEAT_RETENTION_{row.group.upper()}",
                      row.window or "off", policy,
                      _next_run(row))
    return table


def _next_run(row: retention.RetentionStatus) -> str:
    if row.policy is None:
        return "-"
    # A job that never ran has no next start yet: the scheduler starts it when it sees it.
    return f"{row.next_run:%Y-%m-%d %H:%M:%S}" if row.next_run else "due"


def _moment(text: str | None) -> datetime | None:
    return None if text is None else ms_to_datetime(rfc3339_to_ms(text))


@app.command("refresh-rollups")
def refresh_rollups(
    from_ts: str | None = typer.Option(None, "--from", help="First time written: RFC 3339 or "
                                       "a date, UTC unless it has an offset. Default: the "
                                       "oldest stored frame."),
    to_ts: str | None = typer.Option(None, "--to", help="Last time written. Default: now."),
) -> None:
    """Bring the 1m/1h/1d rollups up to date after a backfill (TimescaleDB; as the owner)."""
    try:
        first, last = _moment(from_ts), _moment(to_ts)
    except ValueError as error:
        raise UsageFailed(f"--from/--to: {error}: give RFC 3339 times or dates") from error
    if first is not None and last is not None and first > last:
        raise UsageFailed(f"--from {from_ts} is after --to {to_ts}")
    settings = DatabaseSettings()
    checks.database_url(settings)
    try:
        windows = rollups.refresh_rollups(settings, first, last)
    except rollups.RollupRefreshError as error:
        raise CommandFailed(f"refresh-rollups failed: {str(error).splitlines()[0]}") from error
    if not windows:
        console.print("Nothing to refresh: no stored frames in that range, or plain "
                      "PostgreSQL (its rollups are always current)")
        return
    console.print(f"{len({w.aggregate for w in windows})} rollups refreshed from "
                  f"{min(w.start for w in windows):%Y-%m-%d %H:%M} to "
                  f"{max(w.end for w in windows):%Y-%m-%d %H:%M} UTC")
