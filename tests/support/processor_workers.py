"""Watching ``heat process`` workers in tests: their health, takeovers, and the frames
topic's written and committed ends."""

from __future__ import annotations

import json
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from heatmap.stack.services import HeatService
from support.heat_services import alive
from support.waiting import wait_until


def health(service: HeatService) -> dict[str, Any]:
    """The worker's ``/health`` body ({} while it does not answer); it must be alive."""
    alive(service)
    return service.health()


def wait_live(service: HeatService, timeout_s: float = 90) -> int:
    """Wait until the worker's engine is live; returns its next epoch then."""

    def live_epoch() -> list[int]:
        body = health(service)
        return [int(body["epoch"])] if body.get("phase") == "live" else []

    return wait_until(live_epoch, timeout_s=timeout_s,
                      message="the processor did not go live")[0]


def wait_epoch(service: HeatService, epoch: int, timeout_s: float = 60) -> None:
    """Wait until the live engine committed every epoch before ``epoch``."""
    wait_until(lambda: health(service).get("epoch", -1) >= epoch, timeout_s=timeout_s,
               interval_s=0.02, message=f"the processor did not reach epoch {epoch}")
    assert health(service).get("phase") == "live"


def recoveries(service: HeatService) -> list[dict[str, Any]]:
    """Each takeover by ``service``: whether it found a checkpoint, the epochs it replayed
    and how long it took from the producer's start to live (``recovery_s``)."""
    lines = [json.loads(line) for line in service.log_text().splitlines()
             if '"committed state read"' in line or '"engine live"' in line]
    read = [line for line in lines if line["message"] == "committed state read"]
    live = [line for line in lines if line["message"] == "engine live"]
    return [{**state, "recovery_s": went_live["recovery_s"]}
            for state, went_live in zip(read, live, strict=False)]


def summary(takeovers: list[dict[str, Any]]) -> list[str]:
    return [f"checkpoint={t['checkpoint']} replayed={t['epochs_replayed']} epochs "
            f"in {t['recovery_s']:.1f} s" for t in takeovers]


class FramesTopic:
    """The end offsets of the frames topic as a reader of uncommitted records sees them
    (every record written) and as a ``read_committed`` reader does (up to the first
    open transaction)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.written_reader = KafkaConsumer(bootstrap_servers=bootstrap,
                                            isolation_level="read_uncommitted")
        self.committed_reader = KafkaConsumer(bootstrap_servers=bootstrap,
                                              isolation_level="read_committed")
        partitions = self.written_reader.partitions_for_topic(topic)
        assert partitions, f"no partitions for {topic}"
        self.partitions = [TopicPartition(topic, p) for p in sorted(partitions)]

    def written(self) -> int:
        return sum(self.written_reader.end_offsets(self.partitions).values())

    def committed(self) -> int:
        return sum(self.committed_reader.end_offsets(self.partitions).values())

    def close(self) -> None:
        self.written_reader.close()
        self.committed_reader.close()
