"""Expected failures map to one line and an exit code; anything else stays a traceback."""

from __future__ import annotations

import errno

import psycopg
import pytest
from kafka.errors import KafkaTimeoutError
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.cli.errors import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CommandFailed,
    UsageFailed,
    describe,
)
from heatmap.cli.main import app
from heatmap.db.migrations import MigrationError
from heatmap.ingest.settings import IngestSettings
from heatmap.preflight import ServiceUnreachable
from heatmap.settings.database import DatabaseSettings
from heatmap.sources.csv_files import ReplayInputError
from heatmap.stack.kafka import StackError
from heatmap.stack.settings import StackSettings
from heatmap.topics import TopicSettings


def _validation_error(settings_class: type, env: dict[str, str],
                      monkeypatch: pytest.MonkeyPatch) -> ValidationError:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        settings_class()
    return caught.value


@pytest.mark.parametrize(("settings_class", "variable", "value"), [
    (IngestSettings, "HEAT_METRICS_PORT", "http"),
    (DatabaseSettings, "HEAT_RETRY_ATTEMPTS", "0"),
    (StackSettings, "HEAT_START_TIMEOUT_S", "soon"),
    (TopicSettings, "HEAT_TOPIC_PRICES_PARTITIONS", "six"),
])
def test_a_bad_setting_names_its_variable(settings_class: type, variable: str, value: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    problem = describe(_validation_error(settings_class, {variable: value}, monkeypatch))
    assert problem is not None
    assert problem.exit_code == EXIT_USAGE
    assert f"setting {variable} is invalid" in problem.line
    assert "\n" not in problem.line


@pytest.mark.parametrize(("error", "expected", "exit_code"), [
    (CommandFailed("it broke: do this"), "it broke: do this", EXIT_FAILURE),
    (UsageFailed("give --out"), "give --out", EXIT_USAGE),
    (ServiceUnreachable("Kafka", "h:1", "connection refused", "start it"),
     "cannot reach Kafka at h:1 (connection refused): start it", EXIT_FAILURE),
    (KafkaTimeoutError("Unable to bootstrap from h:1"), "HEAT_KAFKA_BOOTSTRAP", EXIT_FAILURE),
    (psycopg.OperationalError("connection failed: connection to server at \"h\", port 1 "
                              "failed: Connection refused\nIs the server running?"),
     "PostgreSQL failed: connection refused", EXIT_FAILURE),
    (StackError("Maven could not resolve the Kafka jars:\n[ERROR] lots of output"),
     "stack: Maven could not resolve the Kafka jars (HEAT_LOG_LEVEL=DEBUG shows the details)",
     EXIT_FAILURE),
    (MigrationError("core/0002_x was changed after it was applied; add a new migration"),
     "core/0002_x was changed", EXIT_FAILURE),
    (ReplayInputError("p.csv: missing column(s) close"), "heat replay --help", EXIT_FAILURE),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x.csv"),
     "/x.csv: no such file or directory: check the path", EXIT_FAILURE),
    (PermissionError(errno.EACCES, "Permission denied", "/x"),
     "/x: permission denied: check its permissions", EXIT_FAILURE),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp"),
     "/tmp: is a directory: give a file, not a directory", EXIT_FAILURE),
])
def test_expected_failures_are_one_line(error: Exception, expected: str,
                                        exit_code: int) -> None:
    problem = describe(error)
    assert problem is not None
    assert expected in problem.line
    assert "\n" not in problem.line
    assert problem.exit_code == exit_code


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyError("x"), TypeError("y"),
                                   OSError("no file involved")])
def test_anything_else_is_left_to_a_traceback(error: Exception) -> None:
    assert describe(error) is None


def test_an_aliased_setting_keeps_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    class AliasedSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="HEAT_")
        home_port: int = Field(default=1, validation_alias="HOME_PORT")

    problem = describe(_validation_error(AliasedSettings, {"HOME_PORT": "x"}, monkeypatch))
    assert problem is not None and "setting HOME_PORT is invalid" in problem.line


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        app(args)
    return int(exited.value.code or 0), capsys.readouterr().err


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["replay", "--colour"], capsys)
    assert code == EXIT_USAGE
    assert err.count("\n") == 1
    assert err.startswith("error: heat replay: No such option: --colour")
    assert err.strip().endswith("see `heat replay --help`")


def test_help_and_no_arguments_are_not_failures(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["db", "--help"], capsys)
    assert (code, err) == (0, "")
    code, err = _run(["db"], capsys)
    assert code == EXIT_USAGE and "error" not in err


def test_debug_log_level_adds_the_traceback(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_LOG_LEVEL", "debug")
    code, err = _run(["replay", "--colour"], capsys)
    assert code == EXIT_USAGE
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("error: heat replay: No such option")
