"""``heat token`` as a user runs it: the token is the one line on stdout, the file holds
only its hash, list never shows tokens, revoke; and how ``heat process`` takes the
tokens file (none: a warning and an API that refuses everyone; a bad one: one line)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from heatmap.cli.errors import CommandFailed, UsageFailed
from heatmap.cli.main import app as heat
from heatmap.cli.process import api_access
from heatmap.stack.services import HEAT
from heatmap.web.settings import ApiSettings
from heatmap.web.tokens import create_token, token_hash


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HEAT, "token", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
                               **(env or {})})


def test_create_prints_the_token_alone_and_stores_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    created = run("create", "--name", "bot-1", "--desk", "alpha", "--desk", "beta",
                  "--scope", "read,whatif", env={"HEAT_API_TOKENS_FILE": str(path)})
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("heat_")
    token = lines[0]
    assert token not in path.read_text() and token_hash(token) in path.read_text()
    assert (path.stat().st_mode & 0o777) == 0o600

    runner = CliRunner()
    listed = runner.invoke(heat, ["token", "list", "--file", str(path)])
    assert listed.exit_code == 0, listed.output
    assert "bot-1" in listed.stdout and "alpha,beta" in listed.stdout
    assert "read,whatif" in listed.stdout
    assert token not in listed.output and token_hash(token) not in listed.output

    revoked = runner.invoke(heat, ["token", "revoke", "bot-1", "--file", str(path)])
    assert revoked.exit_code == 0
    assert "bot-1" not in runner.invoke(heat, ["token", "list", "--file", str(path)]).stdout


@pytest.mark.parametrize(("args", "code", "says"), [
    (["create", "--name", "x", "--scope", "read"], 2, "give one or more --desk, or --all-desks"),
    (["create", "--name", "x", "--all-desks", "--desk", "a"], 2, "give one or more --desk"),
    (["create", "--name", "x", "--all-desks", "--scope", "admin"], 2, "comma-separated"),
    (["create", "--name", "a b", "--all-desks"], 2, "letters, digits"),
    (["revoke", "nobody"], 1, "no token named 'nobody'"),
])
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    result = run(*args, env={"HEAT_API_TOKENS_FILE": str(tmp_path / "tokens.json")})
    assert result.returncode == code
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], result.stderr


def test_a_name_is_taken_once(tmp_path: Path) -> None:
    runner = CliRunner()
    argv = ["token", "create", "--name", "twice", "--all-desks", "--file",
            str(tmp_path / "tokens.json")]
    assert runner.invoke(heat, argv).exit_code == 0
    again = runner.invoke(heat, argv)  # the failure the command line prints in one line
    assert isinstance(again.exception, UsageFailed) and "exists" in str(again.exception)


def test_without_a_file_setting_the_command_says_so() -> None:
    result = run("list", env={"HEAT_API_TOKENS_FILE": ""})
    assert result.returncode == 2 and "HEAT_API_TOKENS_FILE" in result.stderr


def test_the_processor_without_a_tokens_file_refuses_every_request(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "heatmap.process"):
        access = api_access(ApiSettings(api_tokens_file=None))
    assert access.store is None
    assert "answer 401 to every request" in caplog.text


def test_the_processor_waits_for_a_tokens_file_not_made_yet(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens.json"
    with caplog.at_level(logging.WARNING, "heatmap.process"):
        access = api_access(ApiSettings(api_tokens_file=path, api_tokens_check_interval_s=1e-9))
    assert "does not exist yet" in caplog.text
    assert access.store is not None and access.store.records == []
    token = create_token(path, "desk-a-bot", ["desk-a"], ("read",))
    assert access.store.find(token) is not None


def test_the_processor_refuses_to_start_on_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    bad.chmod(0o600)
    with pytest.raises(CommandFailed, match="not a tokens file"):
        api_access(ApiSettings(api_tokens_file=bad))
    bad.chmod(0o666)
    with pytest.raises(CommandFailed, match="chmod 600"):
        api_access(ApiSettings(api_tokens_file=bad))
