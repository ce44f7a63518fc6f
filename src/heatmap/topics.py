"""The Kafka topics of the product: names, partition counts and topic configs.

This is the single definition every service and the local stack use, so a
topic is never declared with different settings in two places; its prefix and
partition counts are configured in :class:`heatmap.settings.kafka.TopicSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from heatmap.settings.kafka import TopicSettings

_DAY_MS = 24 * 60 * 60 * 1000
_MIB = 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    """One topic as it is created on the broker.

    Parameters
    ----------
    name : str
        Full topic name, prefix included.
    partitions : int
        Partition count; records are keyed so one key stays on one partition.
    configs : dict[str, str]
        Broker-side topic configs (``cleanup.policy``, ``retention.ms``,
        ``min.insync.replicas``, ...).
    replication_factor : int
        Copies of each partition, on as many brokers.
    """

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


@dataclass(frozen=True)
class Topics:
    """Resolved topic names for one deployment (prefix applied)."""

    prices: str
    positions: str
    accounts: str
    heat_frames: str
    alerts: str
    deadletter: str
    sequence: str
    checkpoints: str
    correlations: str
    alert_levels: str

    @classmethod
    def from_settings(cls, settings: TopicSettings | None = None) -> Topics:
        settings = settings or TopicSettings()
        prefix = settings.prefix
        return cls(
            prices=f"{prefix}prices",
            positions=f"{prefix}positions",
            accounts=f"{prefix}accounts",
            heat_frames=f"{prefix}heat-frames",
            alerts=f"{prefix}alerts",
            deadletter=f"{prefix}deadletter",
            sequence=f"{prefix}sequence",
            checkpoints=f"{prefix}checkpoints",
            correlations=f"{prefix}correlations",
            alert_levels=f"{prefix}alert-levels",
        )


def topic_specs(settings: TopicSettings | None = None) -> list[TopicSpec]:
    """Every product topic with its partitions and configs.

    Why these configs: prices and frames are high-volume streams kept for days;
    ``accounts`` is latest-per-key (key = account), so it is compacted and
    still expires; ``positions`` is keyed by account for partitioning while an
    account holds many (symbol, strategy) positions, so compaction by key
    would drop live positions: it is a plain stream with a long retention, and
    the processor keeps the latest position per (account, symbol, strategy) in
    its own compacted changelog.

    The processor's own topics have one partition each, whatever the settings:
    ``sequence`` is the engine's applied order (one epoch record per
    transaction) and must be read in order; it is kept as long as ``prices``,
    since a takeover replays the epochs after the last checkpoint and they
    point at input records that must still exist. ``checkpoints`` keeps the
    latest engine state per engine (key), compacted; a checkpoint is several
    MB (the EWMA matrices), so records up to 16 MiB are allowed, and short
    segments let old checkpoints be compacted away within the hour.
    ``correlations`` holds the bar-close correlation matrices (key =
    timeframe); a matrix grows with the square of the universe (about 0.4 MB
    of JSON at 200 symbols), so it also allows 16 MiB. ``alert-levels`` holds the
    alert thresholds in effect per desk (key), published at every bar close:
    compacted, as only the latest per desk matters.

    Every topic has the configured replication factor and ``min.insync.replicas``
    (see :func:`replicated`).
    """
    settings = settings or TopicSettings()
    return [replicated(spec, settings) for spec in _unreplicated_specs(settings)]


def replicated(spec: TopicSpec, settings: TopicSettings) -> TopicSpec:
    """``spec`` with the replication factor and ``min.insync.replicas`` of ``settings``."""
    return replace(spec, replication_factor=settings.replication_factor,
                   configs={**spec.configs,
                            "min.insync.replicas": str(settings.min_insync_replicas)})


def _unreplicated_specs(settings: TopicSettings) -> list[TopicSpec]:
    names = Topics.from_settings(settings)
    stream = {"cleanup.policy": "delete", "compression.type": "producer"}
    prices_retention_ms = 3 * _DAY_MS
    large_records = {"max.message.bytes": str(16 * _MIB)}
    return [
        TopicSpec(names.prices, settings.prices_partitions,
                  {**stream, "retention.ms": str(prices_retention_ms)}),
        TopicSpec(names.positions, settings.positions_partitions,
                  {**stream, "retention.ms": str(30 * _DAY_MS)}),
        TopicSpec(names.accounts, settings.accounts_partitions,
                  {"cleanup.policy": "compact,delete", "retention.ms": str(30 * _DAY_MS),
                   "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(_DAY_MS)}),
        TopicSpec(names.heat_frames, settings.heat_frames_partitions,
                  {**stream, "retention.ms": str(7 * _DAY_MS)}),
        TopicSpec(names.alerts, settings.alerts_partitions,
                  {**stream, "retention.ms": str(90 * _DAY_MS)}),
        TopicSpec(names.deadletter, settings.deadletter_partitions,
                  {**stream, "retention.ms": str(14 * _DAY_MS)}),
        TopicSpec(names.sequence, 1, {**stream, "retention.ms": str(prices_retention_ms)}),
        TopicSpec(names.checkpoints, 1,
                  {"cleanup.policy": "compact", "compression.type": "producer",
                   **large_records, "min.cleanable.dirty.ratio": "0.1",
                   "segment.ms": str(_DAY_MS // 24), "segment.bytes": str(64 * _MIB)}),
        TopicSpec(names.correlations, 1,
                  {**stream, **large_records, "retention.ms": str(7 * _DAY_MS)}),
        TopicSpec(names.alert_levels, 1,
                  {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                   "segment.ms": str(_DAY_MS)}),
    ]
