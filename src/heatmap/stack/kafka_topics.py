"""What ensuring a topic found: created, already there as configured, or there but
different (fewer partitions or another replication factor than configured).

Pure: :func:`heatmap.stack.kafka.ensure_topics` asks the brokers and builds these
from their answers; ``heat topics ensure`` and ``heat stack up`` print them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from heatmap.topics import TopicSpec

Outcome = Literal["created", "exists", "differs", "missing", "failed"]


@dataclass(frozen=True)
class TopicOutcome:
    """One topic after ensuring it.

    Parameters
    ----------
    name : str
        Full topic name.
    outcome : {"created", "exists", "differs", "missing", "failed"}
        ``missing`` when only checking; ``failed`` when the brokers refused to create
        it (``detail`` says why).
    partitions, replication_factor : int
        What the topic has on the brokers (as configured, when just created).
    detail : str
        What differs from the configuration, or why creating it failed.
    """

    name: str
    outcome: Outcome
    partitions: int
    replication_factor: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in ("created", "exists")

    def line(self) -> str:
        """One line for people: ``exists  heat.prices: 6 partitions, replication 3``."""
        shape = f"{partitions(self.partitions)}, replication {self.replication_factor}"
        text = f"{self.outcome:<8}{self.name}: {shape}"
        return f"{text} ({self.detail})" if self.detail else text


def partitions(count: int) -> str:
    """``1 partition``, ``6 partitions``."""
    return f"{count} partition" if count == 1 else f"{count} partitions"


def found(spec: TopicSpec, described: dict[str, Any]) -> TopicOutcome:
    """Compare an existing topic (kafka-python's metadata of it) with its spec.

    More partitions than configured is accepted (partitions are only ever added, and
    keys still map to one partition each); fewer, or another replication factor, is
    reported.
    """
    found_partitions = described.get("partitions") or []
    replicas = max((len(partition.get("replica_nodes") or ()) for partition in found_partitions),
                   default=0)
    differences = []
    if len(found_partitions) < spec.partitions:
        differences.append(f"configured {partitions(spec.partitions)}")
    if replicas != spec.replication_factor:
        differences.append(f"configured replication {spec.replication_factor}")
    return TopicOutcome(spec.name, "differs" if differences else "exists",
                        len(found_partitions), replicas, "; ".join(differences))


def created(spec: TopicSpec) -> TopicOutcome:
    return TopicOutcome(spec.name, "created", spec.partitions, spec.replication_factor)


def missing(spec: TopicSpec) -> TopicOutcome:
    return TopicOutcome(spec.name, "missing", 0, 0,
                        f"configured {partitions(spec.partitions)}, "
                        f"replication {spec.replication_factor}")


def refused(spec: TopicSpec, reason: str) -> TopicOutcome:
    return TopicOutcome(spec.name, "failed", spec.partitions, spec.replication_factor, reason)
