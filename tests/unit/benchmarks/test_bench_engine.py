"""The engine benchmark runs end to end at its small size (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from benchmarks.cli.main import app


def test_small_engine_benchmark_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "engine.json"
    result = CliRunner().invoke(app, ["engine", "--size", "small", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["frames_measured"] == 30 * 3
    assert figures["speedup_vs_naive"] > 0
    assert set(figures["correlation_updates_per_s"]) == {"20", "50"}
