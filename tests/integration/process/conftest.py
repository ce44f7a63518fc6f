"""The processor's integration tests: each starts its workers on topics of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.heat_pipeline import Pipeline, pipeline


@pytest.fixture
def running(stack, migrated, tmp_path: Path) -> Iterator[Pipeline]:
    """Processor and sink workers of one test on fresh topics and a migrated database
    (``running.process()``, ``running.sink()``); all killed at the end."""
    yield from pipeline(stack.kafka_bootstrap, migrated, tmp_path)
