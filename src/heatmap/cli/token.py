"""``heat token``: create, list and revoke the bot API's bearer tokens."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from heatmap.cli.errors import CommandFailed, UsageFailed, bad_option
from heatmap.web.settings import ApiSettings
from heatmap.web.tokens import (
    TokensFileError,
    create_token,
    list_tokens,
    parse_scopes,
    revoke_token,
)

app = typer.Typer(help="Bearer tokens of the bot API and live page of `heat process` "
                       "(stored as hashes in HEAT_API_TOKENS_FILE).", no_args_is_help=True)

_FILE_HELP = ("The tokens file (default: HEAT_API_TOKENS_FILE); `heat process` re-reads it "
              "within a second of a change.")


def _tokens_file(given: Path | None) -> Path:
    path = given or ApiSettings().api_tokens_file
    if path is None:
        raise UsageFailed("give --file or set HEAT_API_TOKENS_FILE (the tokens file "
                          "`heat process` reads)")
    return path


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="A unique name: who or what uses it "
                             "(letters, digits, '.', '_', '-', '@')."),
    desks: list[str] = typer.Option([], "--desk", help="A desk whose books the token "
                                    "sees (repeat for more)."),
    all_desks: bool = typer.Option(False, "--all-desks", help="Every desk's books, and "
                                   "accounts of no desk."),
    scope: str = typer.Option("read", "--scope", help="read (books, frames, alerts, "
                              "stream), whatif, or read,whatif."),
    tokens_file: Path | None = typer.Option(None, "--file", dir_okay=False, help=_FILE_HELP),
) -> None:
    """Create a token and print it: its only line on stdout, shown this once.

    Only its SHA-256 is stored; a lost token cannot be recovered (revoke it and
    create another).
    """
    if bool(desks) == all_desks:
        raise bad_option("give one or more --desk, or --all-desks", "--desk")
    try:
        scopes = parse_scopes(scope)
    except ValueError as error:
        raise bad_option(str(error), "--scope") from error
    path = _tokens_file(tokens_file)
    try:
        token = create_token(path, name, None if all_desks else desks, scopes)
    except ValueError as error:
        raise UsageFailed(str(error)) from error
    except TokensFileError as error:
        raise CommandFailed(str(error)) from error
    print(token, flush=True)
    print(f"token {name!r} stored in {path} (only its hash); copy it now, it is not shown "
          "again", file=sys.stderr)


@app.command("list")
def list_(
    tokens_file: Path | None = typer.Option(None, "--file", dir_okay=False, help=_FILE_HELP),
) -> None:
    """Names, desks, scopes and creation times of the stored tokens (never a token)."""
    path = _tokens_file(tokens_file)
    try:
        records = list_tokens(path)
    except TokensFileError as error:
        raise CommandFailed(str(error)) from error
    rows = [("NAME", "DESKS", "SCOPES", "CREATED")]
    rows += [(record.name, "(all)" if record.desks is None else ",".join(record.desks),
              ",".join(record.scopes), record.created) for record in records]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
              + "  " + row[3])
    if not records:
        print(f"no tokens in {path}", file=sys.stderr)


@app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The token's name."),
    tokens_file: Path | None = typer.Option(None, "--file", dir_okay=False, help=_FILE_HELP),
) -> None:
    """Revoke a token: `heat process` refuses it within a second, open streams included."""
    path = _tokens_file(tokens_file)
    try:
        revoked = revoke_token(path, name)
    except TokensFileError as error:
        raise CommandFailed(str(error)) from error
    if not revoked:
        raise CommandFailed(f"no token named {name!r} in {path}; `heat token list` shows "
                            "them")
    print(f"token {name!r} revoked", file=sys.stderr)
