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
