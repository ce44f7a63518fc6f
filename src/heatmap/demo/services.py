"""The processes ``heat demo`` runs: the local stack (reused when it is up), and one
ingest source, one ``heat process`` and one ``heat sink`` as child processes on the
run's own topics.

Children run in sessions of their own, so Ctrl-C reaches only the demo, which stops
them in order: the source first, then (once the pipeline has caught up) the
processor and the sink.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from heatmap.demo.options import SIMULATOR_ALERT_CONFIG, TIMEFRAMES, DemoOptions
from heatmap.demo.view import ServiceView
from heatmap.schema import ms_to_rfc3339
from heatmap.settings.database import WRITER_ROLE, DatabaseSettings
from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.stack import ports, postgres
from heatmap.stack.local import LocalStack, StackState
from heatmap.stack.services import HeatService, child_env
from heatmap.topics import Topics, topic_specs

Step = Callable[[str], None]
ENGINE_NAME = "demo"
POLL_EVERY_S = 1.0


class ServiceFailed(RuntimeError):  # noqa: N818 - reads as what happened
    """A child service stopped on its own; the message names its log."""


# -- the stack -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackUse:
    """The stack the run uses, and what of it the run started (and so stops)."""

    stack: LocalStack
    state: StackState
    started: frozenset[str]  # "kafka", "postgres"

    def stop_started(self, step: Step) -> str:
        """Stop what the run started (data kept); returns a sentence saying what is kept."""
        if not self.started:
            return "the stack was already running and is left running"
        self.stack.down(step=step, only=self.started)
        kept = [f"Kafka's in {self.stack.kafka_home}" if "kafka" in self.started else "",
                f"PostgreSQL's in {self.state.postgres_root}" if "postgres" in self.started
                else ""]
        return (f"stopped {' and '.join(sorted(self.started))}; their data is kept "
                f"({', '.join(part for part in kept if part)}): `heat stack up` starts them "
                "again, `heat stack down --purge` deletes it")


def _running(stack: LocalStack) -> set[str]:
    """The stack's own services running now (its PostgreSQL lives at a known place)."""
    running = set()
    if stack.kafka_pid() is not None:
        running.add("kafka")
    if postgres.pid(stack.postgres_cluster(stack.settings.postgres_port)) is not None:
        running.add("postgres")
    return running


def bring_up_stack(step: Step) -> StackUse:
    """Reuse the running ``heat stack``, or start what of it is down (``heat stack up``).

    Interrupted or failed half way, it stops again what it had started.
    """
    stack = LocalStack()
    before = _running(stack)
    try:
        state = stack.up(step)
    except BaseException:
        started = _running(stack) - before
        if started:
            stack.down(step=step, only=started)
        raise
    return StackUse(stack, state, frozenset(_running(stack) - before))


# -- the pipeline --------------------------------------------------------------------------------


def run_prefix(now: datetime | None = None) -> str:
    """A topic prefix of the run's own: the demo never mixes with other topics' state."""
    moment = now or datetime.now(UTC)
    return f"demo-{moment:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:4]}."


def writer_settings(admin_url: str, configured: DatabaseSettings) -> dict[str, str]:
    """How the sink logs in: as ``heat_writer`` when its password or URL is configured,
    else with the owner's URL (the demo does not change role passwords)."""
    own = configured.own_url(WRITER_ROLE)
    if own is not None:
        return {"HEAT_WRITER_URL": own}
    password = configured.role_password(WRITER_ROLE)
    if password is not None:
        return {"HEAT_WRITER_PASSWORD": password}
    return {"HEAT_WRITER_URL": admin_url}


def database_settings(admin_url: str) -> DatabaseSettings:
    """The environment's database settings, pointed at ``admin_url``."""
    return DatabaseSettings(database_url=SecretStr(admin_url))


@dataclass(frozen=True)
class ServiceState:
    """The last poll of one child (written by the poller thread, read by the view).

    ``outputs`` counts frames and alert transitions: those the processor committed, or
    those the sink consumed. ``idle`` is the processor's "read all of its input".
    """

    view: ServiceView
    outputs: tuple[float, float] | None = None
    idle: bool = False


class DemoPipeline:
    """Ingest, processor and sink children of one run, and a poller of their health."""

    def __init__(self, options: DemoOptions, bootstrap: str, admin_url: str, logs: Path,
                 web_host: str, web_port: int, passthrough: Mapping[str, str],
                 api_tokens_file: Path) -> None:
        self.options = options
        self.api_tokens_file = api_tokens_file
        self.bootstrap = bootstrap
        self.logs = logs
        self.topic_settings = TopicSettings(prefix=run_prefix())
        self.topics = Topics.from_settings(self.topic_settings)
        self.web_host = web_host
        self.web_port = web_port
        self._common = child_env(
            HEAT_KAFKA_BOOTSTRAP=bootstrap, HEAT_TOPIC_PREFIX=self.topic_settings.prefix,
            HEAT_BAR_INTERVAL=options.bar, HEAT_TIMEFRAMES=",".join(TIMEFRAMES),
            HEAT_ENGINE_NAME=ENGINE_NAME, **passthrough)
        self._database = {"HEAT_DATABASE_URL": admin_url,
                          **writer_settings(admin_url, database_settings(admin_url))}
        self.services: list[HeatService] = []
        self.ingest: HeatService | None = None
        self.states: dict[str, ServiceState] = {}
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def live_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}/live"

    def create_topics(self) -> None:
        kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=self.bootstrap),
                                    topic_specs(self.topic_settings))

    def delete_topics(self) -> None:
        kafka_broker.delete_topics(KafkaConnection(bootstrap_servers=self.bootstrap),
                                   self.topic_settings.prefix)

    def _start(self, command: list[str], name: str, port_setting: str,
               settings: Mapping[str, str], port: int | None = None,
               health_path: str = "/health") -> HeatService:
        self.logs.mkdir(parents=True, exist_ok=True)
        service = HeatService(command, {**self._common, **settings}, self.logs / f"{name}.log",
                              port_setting, port=port, health_path=health_path,
                              own_session=True)
        self.services.append(service)
        self.states[service.name] = ServiceState(ServiceView(service.name, True, None, ""))
        return service

    def start(self) -> None:
        """Sink, processor, then the source; the poller follows them."""
        self._start(["sink"], "sink", "HEAT_SINK_WEB_PORT",
                    {**self._database, "HEAT_WEB_HOST": ports.LOOPBACK})
        self._start(["process"], "process", "HEAT_WEB_PORT", self.process_settings(),
                    port=self.web_port)
        self.ingest = self._start(self._ingest_command(), "ingest", "HEAT_METRICS_PORT", {},
                                  health_path="/healthz")
        self._poller = threading.Thread(target=self._poll, name="demo-poller", daemon=True)
        self._poller.start()

    def process_settings(self) -> dict[str, str]:
        """The processor's own settings. The simulated desks alert with the thresholds
        calibrated for them (:data:`SIMULATOR_ALERT_CONFIG`), unless ``HEAT_ALERT_CONFIG``
        is passed through; replayed books with the file passed, else the built-in ones."""
        settings = {"HEAT_WEB_HOST": self.web_host,
                    "HEAT_API_TOKENS_FILE": str(self.api_tokens_file)}
        if self.options.replay is None and "HEAT_ALERT_CONFIG" not in self._common:
            settings["HEAT_ALERT_CONFIG"] = str(SIMULATOR_ALERT_CONFIG)
        return settings

    def _ingest_command(self) -> list[str]:
        options = self.options
        if options.replay is None:
            # A simulator tick is 250 ms of market: ticks per second = 4 x speed.
            return ["ingest", "simulate", "--seed", str(options.seed),
                    "--rate", f"{4 * options.speed:g}"]
        assert options.positions is not None and options.accounts is not None
        return ["ingest", "replay", "--prices", str(options.replay), "--positions",
                str(options.positions), "--accounts", str(options.accounts),
                "--speed", f"{options.speed:g}"]

    # -- watching --------------------------------------------------------------------------

    def input_done(self) -> bool:
        """The source ended by itself (a replay read all of its files)."""
        return self.ingest is not None and self.ingest.process.poll() == 0

    def check(self) -> None:
        """ServiceFailed when a child stopped on its own (the source may end cleanly)."""
        for service in self.services:
            code = service.process.poll()
            if code is None or (service is self.ingest and code == 0):
                continue
            raise ServiceFailed(f"{service.name} stopped (exit code {code}): see "
                                f"{service.log_path}")

    def views(self) -> list[ServiceView]:
        return [state.view for state in self.states.values()]

    def _poll(self) -> None:
        while not self._stop_polling.is_set():
            for service in list(self.services):
                if self._stop_polling.is_set():
                    break
                self.states[service.name] = _poll_service(service, self.topics)
            self._stop_polling.wait(POLL_EVERY_S)

    def caught_up(self) -> tuple[float, float] | None:
        """The processor's output counts when it has read all input and the sink has
        consumed all of its output (by their metrics); None otherwise."""
        process, sink = self.states.get("process"), self.states.get("sink")
        if process is None or sink is None or not process.idle or process.outputs is None:
            return None
        return process.outputs if sink.outputs == process.outputs else None

    # -- stopping --------------------------------------------------------------------------

    def stop_input(self) -> None:
        if self.ingest is not None:
            self.ingest.stop(timeout_s=30)

    def wait_caught_up(self, timeout_s: float) -> bool:
        """Wait until processor and sink caught up with the same output counts on three
        polls in a row (the engine may still be applying input it has read), or the
        deadline."""
        deadline = time.monotonic() + timeout_s
        seen: list[tuple[float, float] | None] = []
        while time.monotonic() < deadline:
            self.check()
            seen = [*seen[-2:], self.caught_up()]
            if len(seen) == 3 and seen[0] is not None and seen.count(seen[0]) == 3:
                return True
            time.sleep(POLL_EVERY_S)
        return False

    def stop(self) -> None:
        """Every child stopped (SIGTERM, then kill); safe to call twice."""
        self._stop_polling.set()
        for service in reversed(self.services):  # source, processor, then sink
            with contextlib.suppress(Exception):
                service.stop(timeout_s=30)
            if service.running():
                service.kill()
        if self._poller is not None:
            self._poller.join(timeout=10)


_SINK_FRAME_ROWS = 'heat_sink_rows_total{table="frames"}'
_SINK_ALERT_ROWS = 'heat_sink_rows_total{table="alerts"}'


def _sum(metrics: Mapping[str, float], name: str, topic: str | None = None) -> float | None:
    """The sum of a metric's samples (of those labelled with ``topic``)."""
    values = [value for key, value in metrics.items()
              if (key == name and topic is None) or (key.startswith(f"{name}{{") and (
                  topic is None or f'topic="{topic}"' in key))]
    return sum(values) if values else None


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _poll_service(service: HeatService, topics: Topics) -> ServiceState:
    """One look at a child: alive, health, and the few metrics the footer shows."""
    if not service.running():
        code = service.process.returncode
        detail = "finished" if code == 0 else f"exit code {code}, see {service.log_path}"
        return ServiceState(ServiceView(service.name, False, None, detail))
    health = service.health()
    metrics = service.metrics()
    healthy = None if not health else health.get("status") == "ok"
    if service.name == "ingest":
        detail = f"{_count(_sum(metrics, 'heat_ingest_records_sent_total'))} records sent"
        return ServiceState(ServiceView(service.name, True, healthy, detail))
    if service.name == "process":
        frames = metrics.get("heat_process_frames_total")
        alerts = metrics.get("heat_process_alerts_total")
        delay = health.get("input_delay_s")
        watermark = health.get("watermark_ms")
        event = f", event time {ms_to_rfc3339(watermark)[:19].replace('T', ' ')}" if isinstance(
            watermark, int) else ""
        detail = (f"{health.get('role', '-')} {health.get('phase', '-')}{event}, input lag "
                  f"{_count(_sum(metrics, 'heat_process_input_lag_records'))} records, delay "
                  f"{delay if delay is not None else '-'} s, {_count(frames)} frames, "
                  f"{_count(alerts)} alert transitions")
        outputs = None if frames is None or alerts is None else (frames, alerts)
        return ServiceState(ServiceView(service.name, True, healthy, detail), outputs,
                            idle=health.get("phase") == "live" and delay == 0)
    frames = _sum(metrics, "heat_sink_records_total", topics.heat_frames)
    alerts = _sum(metrics, "heat_sink_records_total", topics.alerts)
    lag = _sum(metrics, "heat_sink_consumer_lag_records", topics.heat_frames)
    detail = (f"{_count(frames)} frames and {_count(alerts)} alert transitions stored, "
              f"{_count(lag)} records behind on frames")
    return ServiceState(ServiceView(service.name, True, healthy, detail),
                        (frames or 0.0, alerts or 0.0))
