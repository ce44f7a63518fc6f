"""Running one Faust worker for a ``heat`` service command: web port, data directory,
logging, and the worker's exit turned into the command's."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import faust

from heatmap.cli.errors import DETAILS_HINT, CommandFailed, UsageFailed
from heatmap.observability import configure_logging
from heatmap.stack import ports


def start_logging(level: str) -> None:
    try:
        configure_logging(level)
    except ValueError as error:
        raise UsageFailed(f"setting HEAT_LOG_LEVEL={level!r} is not a log level; "
                          "use DEBUG, INFO, WARNING or ERROR") from error


def web_port(host: str, port: int, setting: str) -> int:
    """``port``, or a free one when 0; fails in one line when it is taken."""
    chosen = port or ports.free_port()
    if host == ports.LOOPBACK and not ports.is_free(chosen):
        raise CommandFailed(f"port {chosen} on {host} is in use; set {setting} to a free "
                            "port (0 picks one)")
    return chosen


def run_worker(service: str, log_level: str,
               build: Callable[[str, Callable[[], None]], faust.App]) -> None:
    """Build the app with ``build(datadir, stop_worker)`` and run its worker until it
    stops (SIGTERM, SIGINT or ``stop_worker()``); CommandFailed when it crashed."""
    with tempfile.TemporaryDirectory(prefix=f"heat-{service}-") as datadir:
        worker: faust.Worker | None = None

        def stop_worker() -> None:
            assert worker is not None
            worker.loop.create_task(worker.stop())

        app = build(datadir, stop_worker)
        worker = faust.Worker(app, loglevel=log_level.lower(), quiet=True,
                              redirect_stdouts=False, override_logging=False)
        worker.spinner = None  # a terminal spinner would garble the JSON log lines
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            code = exit_.code
        else:
            code = 0
    crash = worker.crash_reason or app.crash_reason
    if crash is not None or code not in (0, None):
        raise CommandFailed(f"the {service} worker stopped: {crash or f'exit code {code}'} "
                            f"({DETAILS_HINT})")
