"""Markers from the folder a test lives in: tests/unit -> unit, tests/integration -> integration."""

from __future__ import annotations

from pathlib import Path

import pytest

# First, before any plugin or test module loads numpy: the package pins the BLAS kernel.
import heatmap  # noqa: F401

TESTS_DIR = Path(__file__).parent


def _database_of(item: pytest.Item) -> str | None:
    """The database server kind a test runs on, if any."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "database_server" in callspec.params:
        return str(callspec.params["database_server"])
    fixtures = getattr(item, "fixturenames", ())
    if "scheduled_timescaledb_server" in fixtures:
        return "timescaledb with its job scheduler"
    if "timescaledb_server" in fixtures:
        return "timescaledb"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        relative = Path(str(item.path)).relative_to(TESTS_DIR)
        if relative.parts[0] in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, relative.parts[0]))
        database = _database_of(item)
        if database is not None:
            item.user_properties.append(("database", database))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Show how many tests of each kind, and on each database, ran.

    So a run proves its integration tests ran, and on which database servers.
    """
    counts: dict[str, dict[str, int]] = {}
    by_database: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            kind = next((k for k in ("integration", "unit") if k in report.keywords), "other")
            counts.setdefault(kind, {}).setdefault(outcome, 0)
            counts[kind][outcome] += 1
            database = dict(report.user_properties).get("database")
            if database is not None:
                by_database.setdefault(database, {}).setdefault(outcome, 0)
                by_database[database][outcome] += 1
    for kind, outcomes in sorted(counts.items()):
        terminalreporter.write_line(f"{kind} tests: {_outcomes(outcomes)}")
    for database, outcomes in sorted(by_database.items()):
        terminalreporter.write_line(f"tests on {database}: {_outcomes(outcomes)}")


def _outcomes(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
