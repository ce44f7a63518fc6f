"""``heat sink``: store frames, alerts, correlations, inputs and dead letters."""

from __future__ import annotations

import logging
import tempfile

import faust

from heatmap.cli import checks
from heatmap.cli.errors import DETAILS_HINT, CommandFailed, UsageFailed
from heatmap.observability import configure_logging
from heatmap.settings.database import WRITER_ROLE
from heatmap.sink.app import build_app, sink_topics
from heatmap.sink.settings import SinkSettings
from heatmap.stack import ports
from heatmap.topics import Topics

log = logging.getLogger("heatmap.sink")


def sink() -> None:
    """Store what the processor and ingest publish in PostgreSQL/TimescaleDB.

    Reads heat-frames, alerts, correlations, prices (thinned: bar closes and at most
    one tick per HEAT_SINK_PRICE_INTERVAL), positions, accounts and dead letters,
    committed records only, as the consumer group {prefix}sink (start several to
    share the partitions). Serves /metrics and /health on HEAT_WEB_HOST and
    HEAT_SINK_WEB_PORT. SIGTERM finishes the current batch and exits.
    """
    settings = SinkSettings()
    try:
        configure_logging(settings.log_level)
    except ValueError as error:
        raise UsageFailed(f"setting HEAT_LOG_LEVEL={settings.log_level!r} is not a log level; "
                          "use DEBUG, INFO, WARNING or ERROR") from error
    topics = Topics.from_settings(settings.kafka.topics)
    checks.kafka_ready(settings.kafka.bootstrap_servers, sink_topics(topics))
    writer_url = checks.database_url(settings.database, WRITER_ROLE)
    web_port = settings.web_port or ports.free_port()
    if settings.web_host == ports.LOOPBACK and not ports.is_free(web_port):
        raise CommandFailed(f"port {web_port} on {settings.web_host} is in use; set "
                            "HEAT_SINK_WEB_PORT to a free port (0 picks one)")
    with tempfile.TemporaryDirectory(prefix="heat-sink-") as datadir:
        worker: faust.Worker | None = None

        def stop_worker() -> None:
            assert worker is not None
            worker.loop.create_task(worker.stop())

        app, service = build_app(settings, topics, writer_url, web_port, datadir, stop_worker)
        log.info("sink web server", extra={"url": f"http://{settings.web_host}:{web_port}"})
        worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True,
                              redirect_stdouts=False, override_logging=False)
        worker.spinner = None  # a terminal spinner would garble the JSON log lines
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            code = exit_.code
        else:
            code = 0
    if service.failure is not None:
        raise service.failure
    crash = worker.crash_reason or app.crash_reason
    if crash is not None or code not in (0, None):
        raise CommandFailed(f"the sink worker stopped: {crash or f'exit code {code}'} "
                            f"({DETAILS_HINT})")
