"""``heat db desk-role`` and ``heat db reader``: login roles that read only their desks'
rows (as the owner). ``desk-role`` is the primary spelling; ``reader create`` is the same
operation adding desks instead of setting them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed, UsageFailed
from heatmap.db import desk_readers
from heatmap.settings.database import DatabaseSettings

app = typer.Typer(help="Per-desk read roles: each sees only its desks' rows in heat_api.",
                  no_args_is_help=True)
console = Console()


def _password(path: Path | None) -> str:
    """The password from ``path`` (first line), or asked twice on the terminal."""
    if path is None:
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        try:
            password = path.read_text().strip()
        except OSError as error:
            raise UsageFailed(f"--password-file {path}: {error.strerror}") from error
    if not password:
        raise UsageFailed("the password is empty")
    return password


def _make(role: str, desks: list[str], password_file: Path | None, replace: bool) -> None:
    """Create or update ``role`` as a reader of ``desks`` and print what it reads."""
    try:
        desk_readers.check_role_name(role)
    except desk_readers.DeskReaderError as error:
        raise UsageFailed(str(error)) from error
    password = _password(password_file)
    settings = DatabaseSettings()
    checks.database_url(settings)
    try:
        reader = desk_readers.create(settings, role, desks, password, replace=replace)
    except desk_readers.DeskReaderError as error:
        raise CommandFailed(str(error)) from error
    console.print(f"{reader.role} reads desk(s) {', '.join(reader.desks)}")


_DESKS_HELP = "A desk the role reads; repeat for several."
_FILE_HELP = "Read the password from this file instead of asking."


def desk_role(
    role: str = typer.Argument(..., help="The login role, e.g. heat_desk_alpha."),
    desks: list[str] = typer.Option(..., "--desk", help=_DESKS_HELP),
    password_file: Path | None = typer.Option(None, "--password-file",
                                              help=_FILE_HELP),
) -> None:
    """Create or update a login role that sees only the rows of the desks named.

    It reads exactly those desks afterwards: desks it read before and not named now are
    taken away."""
    _make(role, desks, password_file, replace=True)


@app.command()
def create(
    desks: list[str] = typer.Option(..., "--desk", help=_DESKS_HELP),
    role: str | None = typer.Option(None, "--role", help="Role name. Default for one desk: "
                                    "heat_desk_<desk>."),
    password_file: Path | None = typer.Option(None, "--password-file",
                                              help=_FILE_HELP),
) -> None:
    """Create a login role that sees only the rows of its desks (or add desks to one)."""
    try:
        name = role or desk_readers.default_role(desks)
    except desk_readers.DeskReaderError as error:
        raise UsageFailed(str(error)) from error
    _make(name, desks, password_file, replace=False)


@app.command("list")
def list_() -> None:
    """Every desk reader and its desks."""
    settings = DatabaseSettings()
    checks.database_url(settings)
    try:
        readers = desk_readers.list_readers(settings)
    except desk_readers.DeskReaderError as error:
        raise CommandFailed(str(error)) from error
    for reader in readers:
        console.print(f"{reader.role}: {', '.join(reader.desks)}")


@app.command()
def drop(role: str = typer.Argument(..., help="The desk reader to remove.")) -> None:
    """Remove a desk reader role and its desks."""
    settings = DatabaseSettings()
    checks.database_url(settings)
    try:
        desk_readers.drop(settings, role)
    except desk_readers.DeskReaderError as error:
        raise CommandFailed(str(error)) from error
    console.print(f"{role} dropped")
