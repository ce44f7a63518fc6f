"""``heat sink``: store frames, alerts, correlations, inputs and dead letters."""

from __future__ import annotations

import logging
from collections.abc import Callable

import faust

from heatmap.cli import checks
from heatmap.cli.faust_worker import run_worker, start_logging, web_port
from heatmap.settings.database import WRITER_ROLE
from heatmap.sink.app import SinkService, build_app, sink_topics
from heatmap.sink.settings import SinkSettings
from heatmap.topics import Topics
from heatmap.web.views import add_metrics_and_health

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
    start_logging(settings.log_level)
    topics = Topics.from_settings(settings.kafka.topics)
    checks.kafka_ready(settings.kafka.connection("heat-sink"), sink_topics(topics))
    writer_url = checks.database_url(settings.database, WRITER_ROLE)
    port = web_port(settings.web_host, settings.web_port, "HEAT_SINK_WEB_PORT")
    services: list[SinkService] = []

    def build(datadir: str, stop_worker: Callable[[], None]) -> faust.App:
        app, service = build_app(settings, topics, writer_url, port, datadir, stop_worker)
        add_metrics_and_health(app, service.healthy)
        services.append(service)
        log.info("sink web server", extra={"url": f"http://{settings.web_host}:{port}"})
        return app

    try:
        run_worker("sink", settings.log_level, build)
    finally:
        failure = services[0].failure if services else None
        if failure is not None:
            raise failure
