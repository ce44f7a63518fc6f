"""Markers from the folder a test lives in: tests/unit -> unit, tests/integration -> integration."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        relative = Path(str(item.path)).relative_to(TESTS_DIR)
        if relative.parts[0] in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, relative.parts[0]))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Show how many tests of each kind ran, so a run proves its integration tests ran."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            kind = next((k for k in ("integration", "unit") if k in report.keywords), "other")
            counts.setdefault(kind, {}).setdefault(outcome, 0)
            counts[kind][outcome] += 1
    for kind, outcomes in sorted(counts.items()):
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        terminalreporter.write_line(f"{kind} tests: {summary}")
