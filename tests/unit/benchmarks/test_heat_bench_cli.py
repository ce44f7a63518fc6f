"""The ``heat-bench`` command tree: every benchmark describes itself and answers
``--help``; the product's ``heat`` has no benchmark command."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from benchmarks.cli.main import app
from heatmap.cli.main import app as heat

EXPECTED_COMMANDS = {"heat-bench", "heat-bench engine", "heat-bench storage",
                     "heat-bench ingest", "heat-bench pipeline", "heat-bench whatif"}


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, child in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(child, (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app), ("heat-bench",)))


def test_the_tree_holds_every_benchmark() -> None:
    assert {" ".join(path) for path, _ in COMMANDS} == EXPECTED_COMMANDS


def test_heat_has_no_benchmark_command() -> None:
    assert "bench" not in getattr(typer.main.get_command(heat), "commands", {})


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_a_one_line_description(path: tuple[str, ...], command: Any) -> None:
    first = (command.help or "").strip().splitlines()[0].strip()
    assert first[0].isupper() or first[0] in "`\"'", first
    assert first.endswith("."), f"{' '.join(path)}: first help line is not a sentence: {first}"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_works(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
