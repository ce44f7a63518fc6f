"""The ``heat`` command tree: every command describes itself and answers ``--help``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from heatmap.cli.main import app

EXPECTED_COMMANDS = {
    "heat", "heat stack", "heat stack up", "heat stack down", "heat stack status",
    "heat stack env", "heat db", "heat db migrate", "heat db status", "heat replay",
    "heat ingest", "heat ingest simulate", "heat ingest replay", "heat ingest exchange",
    "heat ingest positions", "heat sink", "heat grafana", "heat grafana dashboards",
    "heat grafana provision", "heat snapshot", "heat compare", "heat demo",
    "heat topics", "heat topics ensure",
    "heat token", "heat token create", "heat token list", "heat token revoke",
    "heat alerts", "heat alerts report", "heat alerts calibrate",
}


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, child in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(child, (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app), ("heat",)))


def test_the_tree_holds_every_command() -> None:
    assert {" ".join(path) for path, _ in COMMANDS} >= EXPECTED_COMMANDS


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_a_one_line_description(path: tuple[str, ...], command: Any) -> None:
    text = (command.help or "").strip()
    assert text, f"{' '.join(path)} has no help text"
    first = text.splitlines()[0].strip()
    # A sentence: starts with a capital (or a quoted command) and ends with a full stop.
    assert first[0].isupper() or first[0] in "`\"'", first
    assert first.endswith("."), f"{' '.join(path)}: first help line is not a sentence: {first}"
    assert command.get_short_help_str(limit=200).strip(), " ".join(path)


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_works(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    for child_path, _ in COMMANDS:
        if len(child_path) == len(path) + 1 and child_path[:-1] == path:
            assert child_path[-1] in result.output
