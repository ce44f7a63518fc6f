"""The Faust app hosting the sink: worker life cycle, signals, and the web server with
``/metrics`` and ``/health``.

Faust's own per-record streams are too slow for the sink (about 10 k records/s), so
the reading is a :class:`SinkService` running :class:`heatmap.sink.consumer.SinkLoop`
on a plain aiokafka consumer in the group ``{prefix}sink``. The Faust app has its own
id (``{prefix}sink-host``) and reads only its leader topic (Faust creates it; a Faust
worker with no topic at all crashes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer
from mode import Service

from heatmap.db.writer import HeatWriter
from heatmap.sink.batching import SinkBatcher
from heatmap.sink.consumer import SinkLoop
from heatmap.sink.price_sampling import PriceSampler
from heatmap.sink.settings import SinkSettings
from heatmap.topics import Topics

log = logging.getLogger("heatmap.sink")

# Faust's logging of a fresh group is noisy and harmless ("coordinator dead" etc.).
_SESSION_TIMEOUT_MS = 6000  # Kafka 4.0's minimum: a dead sink's partitions move fast
_HEARTBEAT_MS = 1000


def sink_topics(topics: Topics) -> list[str]:
    """The topics the sink stores, outputs first."""
    return [topics.heat_frames, topics.alerts, topics.correlations, topics.alert_levels,
            topics.prices,
            topics.positions, topics.accounts, topics.deadletter]


def group_id(settings: SinkSettings) -> str:
    return f"{settings.kafka.topics.prefix}sink"


class SinkService(Service):
    """Starts the writer and the consumer, runs the loop, and on stop lets the current
    batch finish (within ``shutdown_timeout_s``) before closing both.

    ``failure`` holds the error that ended the loop, if any (the command exits 1).
    """

    def __init__(self, settings: SinkSettings, topics: Topics, writer_url: str,
                 on_failure: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.topics = topics
        self.writer_url = writer_url
        self.on_failure = on_failure
        self.loop_runner: SinkLoop | None = None
        self.failure: BaseException | None = None
        self._finished = asyncio.Event()

    async def on_start(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        writer = await loop.run_in_executor(
            None, lambda: HeatWriter(self.writer_url, settings.database))
        consumer = AIOKafkaConsumer(
            *sink_topics(self.topics), **settings.kafka.connection("heat-sink").aiokafka(),
            group_id=group_id(settings),
            isolation_level="read_committed", enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=_HEARTBEAT_MS, max_partition_fetch_bytes=1024 * 1024)
        await consumer.start()
        sampler = PriceSampler(settings.price_interval_ms, settings.bar_interval_ms)
        self.loop_runner = SinkLoop(consumer, writer, SinkBatcher(self.topics, sampler),
                                    settings.batch_max_records, settings.batch_max_wait_ms)
        self.add_future(self._run())
        log.info("sink started", extra={"group": group_id(settings),
                                        "topics": sink_topics(self.topics)})

    async def _run(self) -> None:
        assert self.loop_runner is not None
        try:
            await self.loop_runner.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # ends the worker; the command reports it in one line
            self.failure = error
            log.error("sink stopped: %s", error)
            self.on_failure()
        finally:
            self._finished.set()

    async def on_stop(self) -> None:
        runner = self.loop_runner
        if runner is None:
            return
        runner.request_stop()
        try:
            await asyncio.wait_for(self._finished.wait(), self.settings.shutdown_timeout_s)
        except TimeoutError:
            log.error("the current batch did not finish within %.0f s; its records will be "
                      "read again", self.settings.shutdown_timeout_s)
        await runner.consumer.stop()
        await asyncio.get_running_loop().run_in_executor(None, runner.writer.close)
        log.info("sink stopped", extra={"batches": runner.batches})

    def healthy(self) -> tuple[bool, dict[str, object]]:
        runner = self.loop_runner
        if runner is None:
            return False, {"reason": "starting"}
        idle_s = time.monotonic() - runner.last_commit_s
        stalled = idle_s > max(60.0, 10 * runner.max_wait_ms / 1000)
        ok = self.failure is None and not stalled and runner.stalled is None
        return ok, {"batches": runner.batches, "seconds_since_last_commit": round(idle_s, 1),
                    "error": None if self.failure is None else str(self.failure),
                    "stalled": runner.stalled}


def build_app(settings: SinkSettings, topics: Topics, writer_url: str, web_port: int,
              datadir: str, on_failure: Any) -> tuple[faust.App, SinkService]:
    """The Faust app with the sink service (its web server bound to ``web_host``; the
    caller mounts the views)."""
    app = faust.App(
        f"{settings.kafka.topics.prefix}sink-host",
        **settings.kafka.connection("heat-sink-host").faust(), datadir=datadir,
        # Faust's own producer and topics are as durable as the product's: the
        # configured acks and replication factor.
        producer_acks=settings.kafka.producer.faust_acks,
        topic_replication_factor=settings.kafka.topics.replication_factor,
        store="memory://", autodiscover=False,
        web_host=settings.web_host, web_bind=settings.web_host, web_port=web_port,
        broker_session_timeout=_SESSION_TIMEOUT_MS / 1000,
        broker_heartbeat_interval=_HEARTBEAT_MS / 1000)
    service = SinkService(settings, topics, writer_url, on_failure)
    app.service(cast(Any, service))  # an instance is started as is
    return app, service
