"""``heat process``: the stream processor worker (active engine or standby)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import faust
from threadpoolctl import threadpool_limits

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed, UsageFailed
from heatmap.cli.faust_worker import run_worker, start_logging, web_port
from heatmap.process.alert_config import AlertConfigError
from heatmap.process.app import ProcessWorker, build_app
from heatmap.process.settings import ProcessSettings
from heatmap.topics import Topics
from heatmap.web.access import Access, Limits
from heatmap.web.api import BotApi, Routing, add_bot_api
from heatmap.web.live import LiveView
from heatmap.web.page import add_live_page
from heatmap.web.settings import ApiSettings
from heatmap.web.tokens import TokensFileError, TokenStore
from heatmap.web.views import add_metrics_and_health

log = logging.getLogger("heatmap.process")


def process() -> None:
    """Turn prices, positions and accounts into heat frames, alerts and correlations.

    Start one or more workers: the one holding the group's lease runs the engine,
    the others stand by and take over (from the last checkpoint) within seconds of
    its death. Bars and timeframes come from HEAT_BAR_INTERVAL and HEAT_TIMEFRAMES;
    /metrics, /health, the bot API and the live page are served on HEAT_WEB_HOST and
    HEAT_WEB_PORT (0: a free port). The API takes the tokens of HEAT_API_TOKENS_FILE
    (`heat token create`); without it, it answers 401 to every request. SIGTERM hands
    the lease over at once.
    """
    settings = ProcessSettings()
    api_settings = ApiSettings()
    try:
        settings.alert_thresholds()  # a bad alert file stops the worker here, not later
    except AlertConfigError as error:
        raise UsageFailed(f"HEAT_ALERT_CONFIG: {error}") from error
    start_logging(settings.log_level)
    access = api_access(api_settings)
    # A frame's matrices are a book's held symbols (tens to a few hundred): threaded BLAS
    # gains nothing there and, with the event loop and Kafka's clients on the same cores,
    # made a bar close of desk books several times slower (`heat-bench pipeline`).
    threadpool_limits(limits=1, user_api="blas")
    topics = Topics.from_settings(settings.kafka.topics)
    checks.kafka_ready(settings.kafka.connection(settings.app_id),
                       [topics.prices, topics.positions, topics.accounts, topics.heat_frames,
                        topics.alerts, topics.correlations, topics.alert_levels,
                        topics.deadletter,
                        topics.sequence, topics.checkpoints])
    port = web_port(settings.web_host, settings.web_port, "HEAT_WEB_PORT")

    # What the web views read of the engine, fed by it.
    view = LiveView(stall_timeout_s=api_settings.api_stream_stall_timeout_s)

    def build(datadir: str, stop_worker: Callable[[], None]) -> faust.App:
        worker = build_app(settings, topics, port, datadir, observer=view)
        mount_web_views(worker, view, access)
        log.info("process web server", extra={
            "url": f"http://{settings.web_host}:{port}", "engine": settings.engine_name})
        return worker.app

    run_worker("process", settings.log_level, build)


def api_access(settings: ApiSettings) -> Access:
    """The API's access checks: the tokens file read once now, so a missing or broken
    one stops the start in one line; no file configured: a warning, and every API
    request is refused (the engine still runs: heat keeps flowing to Kafka)."""
    limits = Limits(streams_per_token=settings.api_streams_per_token,
                    whatif_rate_per_s=settings.api_whatif_rate_per_s,
                    whatif_burst=settings.api_whatif_burst,
                    stream_stall_timeout_s=settings.api_stream_stall_timeout_s,
                    ticket_ttl_s=settings.api_stream_ticket_ttl_s)
    path = settings.api_tokens_file
    if path is None:
        log.warning("HEAT_API_TOKENS_FILE is not set: the bot API and live page answer 401 "
                    "to every request (create tokens with `heat token create`)")
        return Access(None, limits)
    store = TokenStore(path, settings.api_tokens_check_interval_s)
    try:
        store.load()
    except FileNotFoundError:
        # A deployment starts before its first token exists; the file is read within
        # a check interval of `heat token create` making it.
        log.warning("HEAT_API_TOKENS_FILE=%s does not exist yet: the bot API and live page "
                    "answer 401 until `heat token create` makes it", path)
        return Access(store, limits)
    except (OSError, TokensFileError) as error:
        raise CommandFailed(f"HEAT_API_TOKENS_FILE: {error}") from error
    log.info("API tokens read", extra={"path": str(path), "tokens": len(store.records)})
    return Access(store, limits)


def mount_web_views(worker: ProcessWorker, view: LiveView, access: Access) -> None:
    """/metrics, /health, the bot API and the live page on the worker's web server; a
    standby redirects book requests to the worker holding the lease."""
    add_metrics_and_health(worker.app, worker.health)
    routing = Routing(worker.holds_lease, worker.active_url, worker.own_url)
    add_bot_api(worker.app, BotApi(view, routing, access))
    add_live_page(worker.app, routing)
