"""``heat-bench pipeline`` refuses what it cannot measure before touching any service."""

from __future__ import annotations

from typer.testing import CliRunner

from benchmarks.cli.main import app


def test_an_unknown_figure_is_refused_in_one_line() -> None:
    result = CliRunner().invoke(app, ["pipeline", "--figures", "throughput,speed"])
    assert result.exit_code == 2
    assert "--figures" in result.output
    assert "Traceback" not in result.output
