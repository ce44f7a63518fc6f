"""``heat snapshot``: a PNG of one account's heat from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed, UsageFailed
from heatmap.engine.params import parse_duration_s
from heatmap.schema import ms_to_datetime, rfc3339_to_ms
from heatmap.settings.database import READER_ROLE, DatabaseSettings


def snapshot(
    account: str = typer.Option(..., "--account", help="The account to draw."),
    timeframe: str = typer.Option("1h", "--timeframe", help="Correlation timeframe."),
    at: str | None = typer.Option(None, "--at", help="Moment (RFC 3339 or a date, UTC): "
                                  "the newest frame at or before it. Default: now."),
    span: str | None = typer.Option(None, "--range", help="Draw heat per symbol over this "
                                    "range ending at --at (e.g. 24h, 7d) instead of one "
                                    "moment."),
    png: Path = typer.Option(..., "--png", help="Where to write the picture."),
) -> None:
    """Draw an account's heat from the database as a PNG (one moment or a range)."""
    from heatmap.snapshot.render import NothingToDraw, Snapshot, render

    try:
        moment = datetime.now(UTC) if at is None else ms_to_datetime(rfc3339_to_ms(at))
    except ValueError as error:
        raise UsageFailed(f"--at {at}: {error}: give an RFC 3339 time or a date") from error
    length = None
    if span is not None:
        try:
            length = timedelta(seconds=parse_duration_s(span))
        except ValueError as error:
            raise UsageFailed(f"--range {span}: {error}") from error
    url = checks.database_url(DatabaseSettings(), READER_ROLE)
    try:
        written = render(url, Snapshot(account, timeframe, moment, length), png)
    except NothingToDraw as error:
        raise CommandFailed(f"{error}: check --account, --timeframe and --at") from error
    print(f"wrote {written}")
