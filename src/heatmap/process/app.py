"""The Faust app of ``heat process``: group membership decides which worker runs the engine.

Every worker joins the consumer group of the app id; Faust's leader assignor gives
its one-partition leader topic to exactly one member, and that member runs the
engine (:class:`heatmap.process.active.ActiveEngine`); the others are standbys.
The decision is taken after each assignment (``on_partitions_assigned``), never
on revocation: the eager protocol revokes everything at every rebalance, and the
assignor is sticky, so the holder usually keeps the lease through a standby's
arrival or departure. When the lease moves, the old holder stops its engine,
and fencing (the transactional id) stops it anyway if it did not notice.

A watchdog thread ends the process when the engine stops making progress: Faust
heartbeats from its own consumer, so a hung engine would otherwise keep the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import faust
from aiokafka.errors import ProducerFenced
from mode import Service

from heatmap.process.active import ActiveEngine, EngineStatus, cancel_requested
from heatmap.process.lease import lease_holder_url
from heatmap.process.observer import EngineObserver
from heatmap.process.settings import ProcessSettings
from heatmap.topics import Topics

log = logging.getLogger("heatmap.process")

WATCHDOG_EXIT_CODE = 70
_RETRY_S = (0.5, 1.0, 2.0, 5.0)


class EngineSupervisor(Service):
    """Runs :class:`ActiveEngine` while this worker holds the lease, restarting it
    (from the committed state) after a failure; stops it when the lease moves."""

    def __init__(self, settings: ProcessSettings, topics: Topics, view: EngineObserver,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.topics = topics
        self.view = view  # told of every step and commit (the web views read it)
        self.status = EngineStatus()
        self.holds_lease = False
        self._task: asyncio.Task[None] | None = None
        # One thread for the engine: its state is never touched by two threads.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="heat-engine")

    def lease_changed(self, holds: bool) -> None:
        """Called after every assignment with whether this worker now holds the lease."""
        self.holds_lease = holds
        if holds and (self._task is None or self._task.done()):
            log.info("lease acquired: starting the engine")
            self._task = asyncio.ensure_future(self._own())
        elif not holds and self._task is not None and not self._task.done():
            log.info("lease moved to another worker: stopping the engine")
            self._task.cancel()

    async def _own(self) -> None:
        """Keep an engine running while the lease is held."""
        failures = 0
        while self.holds_lease:
            engine = ActiveEngine(self.settings, self.topics, self.status, self._executor,
                                  view=self.view)
            try:
                await engine.run()
            except asyncio.CancelledError:
                if cancel_requested():  # the lease moved or the worker stops
                    raise
                # A Kafka client's own cancellation escaped the run: a failure like any
                # other, or this worker would keep the lease with no engine running.
                self.status.last_error = "a Kafka client was cancelled"
                log.error("engine stopped: %s; recovering", self.status.last_error)
            except ProducerFenced:
                self.status.last_error = "fenced by another owner"
                log.warning("fenced: another worker owns the engine")
            except Exception as error:  # Kafka down, records missing: recover again
                self.status.last_error = f"{type(error).__name__}: {error}"
                log.error("engine stopped: %s; recovering", self.status.last_error,
                          exc_info=log.isEnabledFor(logging.DEBUG))
            finally:
                self.view.stopped()
            failures += 1
            await asyncio.sleep(_RETRY_S[min(failures, len(_RETRY_S)) - 1])
            self.status.progressed()

    async def on_start(self) -> None:
        threading.Thread(target=self._watchdog, name="heat-watchdog", daemon=True).start()

    async def on_stop(self) -> None:
        self.holds_lease = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # _own logged it
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _watchdog(self) -> None:
        """Exit the process when the active engine stalls (a hung engine keeps the lease)."""
        limit_s, report_s = self.settings.watchdog_s, self.settings.stall_report_s
        reported_progress_s = None  # the stall last reported (one warning per stall)
        while True:
            time.sleep(min(1.0, limit_s / 4, report_s / 4))
            last_progress_s = self.status.last_progress_s
            stalled_s = time.monotonic() - last_progress_s
            if (self.status.phase != "standby" and stalled_s > report_s
                    and reported_progress_s != last_progress_s):
                # From this thread: a loop stuck in an await cannot report itself.
                reported_progress_s = last_progress_s
                log.warning("engine made no progress for %.0f s (phase %s); it waits in: %s",
                            stalled_s, self.status.phase, self._where())
            if self.status.phase != "standby" and stalled_s > limit_s:
                log.critical("engine made no progress for %.0f s: exiting so another worker "
                             "takes over; it was waiting in: %s", stalled_s, self._where())
                logging.shutdown()
                os._exit(WATCHDOG_EXIT_CODE)

    def _where(self) -> str:
        """Where the engine task waits (its coroutine stack), for the watchdog's last word."""
        task = self._task
        if task is None or task.done():
            return "no engine task"
        frames = task.get_stack(limit=None)  # coroutine frames: readable from this thread
        return " <- ".join(f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 1)[-1]}"
                           f":{frame.f_lineno})" for frame in reversed(frames))

    def health(self) -> tuple[bool, dict[str, object]]:
        """(healthy, details): a standby is healthy; the active engine while live, making
        progress (within ``stall_report_s``) and within ``health_max_delay_s`` of its input."""
        status = self.status
        stalled_s = time.monotonic() - status.last_progress_s
        details: dict[str, object] = {
            "role": "active" if self.holds_lease else "standby", "phase": status.phase,
            "epoch": status.epochs, "input_delay_s": round(status.input_delay_s, 3),
            "watermark_ms": status.watermark_ms, "last_error": status.last_error}
        if not self.holds_lease:
            return True, details
        if stalled_s > self.settings.stall_report_s:
            details["reason"] = f"no engine progress for {stalled_s:.0f} s"
        elif status.phase != "live":
            details["reason"] = f"engine {status.phase}"
        elif status.input_delay_s > self.settings.health_max_delay_s:
            details["reason"] = f"input delay {status.input_delay_s:.1f} s"
        return "reason" not in details, details


@dataclass(frozen=True)
class ProcessWorker:
    """One ``heat process`` worker: its Faust app, the engine supervisor, and where the
    engine's web views are (here, or on the worker holding the lease)."""

    app: faust.App
    supervisor: EngineSupervisor
    own_url: str

    def holds_lease(self) -> bool:
        return self.supervisor.holds_lease

    def active_url(self) -> str | None:
        """The web URL of the worker running the engine; None before the first assignment."""
        return self.own_url if self.supervisor.holds_lease else lease_holder_url(self.app)

    def health(self) -> tuple[bool, dict[str, object]]:
        ok, details = self.supervisor.health()
        return ok, {**details, "url": self.own_url, "active_url": self.active_url()}


_EVERY_INTERFACE = frozenset({"", "0.0.0.0", "::"})  # noqa: S104  (compared, not bound)


def advertised_url(settings: ProcessSettings, web_port: int) -> str:
    """The URL this worker gives to clients and to the other workers of its group.

    A worker listening on every interface is reached by its host name, which in a
    container is the container's own name on its network: each replica of a scaled
    service then advertises an address that reaches it, not ``0.0.0.0``.
    """
    if settings.web_advertised_url:
        return settings.web_advertised_url.rstrip("/")
    host = socket.gethostname() if settings.web_host in _EVERY_INTERFACE else settings.web_host
    return f"http://{host}:{web_port}"


def build_app(settings: ProcessSettings, topics: Topics, web_port: int, datadir: str,
              observer: EngineObserver) -> ProcessWorker:
    """The Faust app with the engine supervisor (its web server bound to ``web_host``;
    the caller mounts the views)."""
    app = faust.App(
        settings.app_id, **settings.kafka.connection(settings.app_id).faust(),
        datadir=datadir, store="memory://", autodiscover=False,
        # Faust's own producer and topics (the lease's leader topic) are as durable as
        # the product's: the configured acks and replication factor.
        producer_acks=settings.kafka.producer.faust_acks,
        topic_replication_factor=settings.kafka.topics.replication_factor,
        web_host=settings.web_host, web_bind=settings.web_host, web_port=web_port,
        canonical_url=advertised_url(settings, web_port),
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=max(10.0, 2 * settings.session_timeout_s))
    supervisor = EngineSupervisor(settings, topics, observer)
    app.service(cast(Any, supervisor))  # an instance is started as is

    async def on_assigned(sender: faust.App, *_: Any, **__: Any) -> None:
        supervisor.lease_changed(sender.is_leader())

    app.on_partitions_assigned.connect(cast(Any, on_assigned))
    return ProcessWorker(app, supervisor, str(app.conf.canonical_url))
