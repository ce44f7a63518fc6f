"""Expected failures of ``heat`` commands as one line on stderr, with an exit code.

Every command runs inside :class:`HeatTyper`, which maps the failures a user
can cause or fix (a service down, a bad file, a bad option or setting) to one
line saying what failed and what to do. Anything else is a bug and keeps its
traceback. ``HEAT_LOG_LEVEL=DEBUG`` shows the traceback of expected failures too.

Exit codes:

- 0: done.
- 1 (:data:`EXIT_FAILURE`): something failed: a service, a file, the input data.
- 2 (:data:`EXIT_USAGE`): the command line or a ``HEAT_*`` setting is wrong.
- 130 (:data:`EXIT_INTERRUPTED`): interrupted (Ctrl-C).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
import typer
from kafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from heatmap.db.migrations import MigrationError
from heatmap.preflight import (
    KAFKA_SETTING,
    ServiceSettingError,
    ServiceUnreachable,
    connection_failure,
    first_line,
)
from heatmap.schema import InvalidMessageError
from heatmap.sources.csv_files import ReplayInputError
from heatmap.stack.kafka import StackError
from heatmap.web.tokens import TokensFileError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DETAILS_HINT = "HEAT_LOG_LEVEL=DEBUG shows the details"

# Usage errors come from the click that typer runs on (newer typer versions bundle their
# own copy): take its base class from where typer's BadParameter lives.
ClickException: Any = importlib.import_module(
    typer.BadParameter.__module__).ClickException


class CommandFailed(Exception):  # noqa: N818 - reads as what happened
    """A failure a command detected itself; ``message`` says what failed and what to do."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageFailed(CommandFailed):
    """The command line or a setting is wrong (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def bad_option(message: str, option: str) -> typer.BadParameter:
    """A usage error naming ``option`` (exit code 2)."""
    return typer.BadParameter(message, param_hint=option)


@dataclass(frozen=True)
class Problem:
    """What the user sees of an expected failure: one line, and the exit code."""

    line: str
    exit_code: int = EXIT_FAILURE


# -- messages ------------------------------------------------------------------------------------


def _summary(text: str) -> str:
    """The first line of a message, saying where the rest is when there is more."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    head = lines[0].strip().rstrip(":")
    return f"{head} ({DETAILS_HINT})" if len(lines) > 1 else head


def _settings_classes() -> dict[str, type[BaseSettings]]:
    found: dict[str, type[BaseSettings]] = {}
    pending: list[type[BaseSettings]] = [BaseSettings]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found


def _env_name(model: str, field: str) -> str:
    """The environment variable behind ``field`` of the settings class named ``model``."""
    cls = _settings_classes().get(model)
    if cls is None:
        return field
    info = cls.model_fields.get(field)
    if info is None:  # errors name a field by its alias when it has one
        return field
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    prefix = str(cls.model_config.get("env_prefix") or "")
    return f"{prefix}{field}".upper()


def _bad_setting(error: ValidationError) -> Problem:
    details = error.errors(include_url=False)
    first = details[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    name = _env_name(error.title, field) if field else error.title
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return Problem(f"setting {name} is invalid: {first['msg'].lower()}{more}; fix or unset it",
                   EXIT_USAGE)


_FILE_REMEDIES = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EISDIR: "give a file, not a directory",
    errno.ENOTDIR: "check the path",
    errno.EEXIST: "remove it or choose another path",
    errno.ENOSPC: "free some disk space",
    errno.EROFS: "choose a writable path",
}


def _file_problem(error: OSError) -> Problem:
    reason = (error.strerror or str(error)).lower()
    remedy = _FILE_REMEDIES.get(error.errno or 0, "check the path")
    return Problem(f"{error.filename}: {reason}: {remedy}")


def _click_problem(error: Any) -> Problem:
    message = first_line(error.format_message()).rstrip(".")
    ctx = getattr(error, "ctx", None)
    if ctx is not None:
        message = f"{ctx.command_path}: {message}; see `{ctx.command_path} --help`"
    return Problem(message, error.exit_code)


def _kafka_timeout(error: Exception) -> Problem:
    detail = str(error).removeprefix(f"{type(error).__name__}: ")
    return Problem(f"Kafka did not answer ({detail}): check the broker with `heat stack "
                   f"status`, start it with `heat stack up` or set {KAFKA_SETTING}")


def _database_failure(error: psycopg.Error) -> Problem:
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return Problem(f"PostgreSQL refused: {first_line(str(error))}; connect as a role that "
                       "has the grants (`heat db migrate` creates them)")
    return Problem(f"PostgreSQL failed: {connection_failure(str(error))}; check the database "
                   "with `heat stack status` and HEAT_DATABASE_URL")


_MAPPING: list[tuple[type[BaseException] | tuple[type[BaseException], ...],
                     Callable[[Any], Problem]]] = [
    (CommandFailed, lambda e: Problem(str(e), e.exit_code)),
    (ServiceUnreachable, lambda e: Problem(str(e))),
    (ServiceSettingError, lambda e: Problem(f"{e}; fix the setting", EXIT_USAGE)),
    (ValidationError, _bad_setting),
    (typer.Abort, lambda e: Problem("aborted", EXIT_INTERRUPTED)),
    (ClickException, _click_problem),
    ((KafkaTimeoutError, KafkaConnectionError), _kafka_timeout),
    ((psycopg.OperationalError, psycopg.errors.InsufficientPrivilege), _database_failure),
    (StackError, lambda e: Problem(f"stack: {_summary(str(e))}")),
    (MigrationError, lambda e: Problem(_summary(str(e)))),
    (ReplayInputError, lambda e: Problem(f"{_summary(str(e))}; `heat replay --help` lists "
                                         "the columns each file needs")),
    (InvalidMessageError, lambda e: Problem(f"invalid input: {_summary(str(e))}")),
    (TokensFileError, lambda e: Problem(str(e))),
]


def describe(error: BaseException) -> Problem | None:
    """The one line and exit code of an expected failure; None for anything else (a bug)."""
    if isinstance(error, KeyboardInterrupt):
        return Problem("", EXIT_INTERRUPTED)
    for types, problem in _MAPPING:
        if isinstance(error, types):
            return problem(error)
    if isinstance(error, OSError) and error.filename is not None:
        return _file_problem(error)
    # Only commands that loaded the exchanges module (and ccxt, slow to import) raise this.
    exchanges = sys.modules.get("heatmap.ingest.exchanges")
    if exchanges is not None and isinstance(error, exchanges.ExchangeUnavailable):
        return Problem(f"{error.exchange_id}: {error.message}")
    return None


# -- running -------------------------------------------------------------------------------------


def debugging() -> bool:
    """Whether full tracebacks were asked for.

    Read straight from the environment: this must work while a settings class
    is what failed to load.
    """
    return os.environ.get("HEAT_LOG_LEVEL", "").strip().upper() == "DEBUG"


def report(error: BaseException, problem: Problem) -> None:
    if debugging():
        traceback.print_exception(error, file=sys.stderr)
    if problem.line:
        print(f"error: {problem.line}", file=sys.stderr, flush=True)


def run(main: Callable[[], object]) -> NoReturn:
    """Run ``main``; exit with its code, or report an expected failure in one line."""
    try:
        code = main()
    except ClickException as error:
        if type(error).__name__ != "NoArgsIsHelpError":
            _fail(error)
        # The help was asked for by giving no arguments (rich help prints while it is
        # built, plain help is the message); nothing failed.
        if error.format_message().strip():
            error.show()
        sys.exit(error.exit_code)
    except Exception as error:
        _fail(error)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(error: Exception) -> NoReturn:
    problem = describe(error)
    if problem is None:
        raise error
    report(error, problem)
    sys.exit(problem.exit_code)


class HeatTyper(typer.Typer):
    """A Typer app whose expected failures end in one line on stderr (see :func:`run`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().__call__(*args, **kwargs)
        kwargs["standalone_mode"] = False
        kwargs.setdefault("prog_name", "heat")
        call = super().__call__
        run(lambda: call(*args, **kwargs))
