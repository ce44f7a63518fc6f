from typer.testing import CliRunner

from heatmap.cli.main import app


def test_every_command_has_a_one_line_description() -> None:
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    for command in ("stack", "replay", "bench"):
        assert command in top.output
    stack = runner.invoke(app, ["stack", "--help"])
    for command in ("up", "down", "status", "env"):
        assert command in stack.output
