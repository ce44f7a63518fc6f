"""The one Kafka configuration of every service: where the brokers are, how the topics
are named and sized, and how producers send.

Environment variables: ``HEAT_KAFKA_BOOTSTRAP``; ``HEAT_TOPIC_PREFIX`` and
``HEAT_TOPIC_<TOPIC>_PARTITIONS``; ``HEAT_PRODUCER_LINGER_MS``, ``_BATCH_SIZE``,
``_COMPRESSION``, ``_ACKS``, ``_IDEMPOTENCE``, ``_CLOSE_TIMEOUT_S``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The bootstrap a client uses when none is configured: the local stack's preferred port.
LOCAL_BOOTSTRAP = "127.0.0.1:9092"

Acks = Literal["all", "1", "0"]
Compression = Literal["lz4", "gzip", "snappy", "zstd"]


class TopicSettings(BaseSettings):
    """Topic naming and sizing, from ``HEAT_TOPIC_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="HEAT_TOPIC_", frozen=True, extra="ignore")

    prefix: str = "heat."
    prices_partitions: int = Field(default=6, ge=1)
    positions_partitions: int = Field(default=6, ge=1)
    accounts_partitions: int = Field(default=6, ge=1)
    heat_frames_partitions: int = Field(default=6, ge=1)
    alerts_partitions: int = Field(default=3, ge=1)
    deadletter_partitions: int = Field(default=1, ge=1)


class ProducerSettings(BaseSettings):
    """How producers send, from ``HEAT_PRODUCER_*`` environment variables.

    Parameters
    ----------
    linger_ms : int
        How long a batch waits for more records before it is sent.
    batch_size : int
        Bytes per partition batch.
    compression : {"lz4", "gzip", "snappy", "zstd"} or None
        Batch compression; ``none`` in the environment means None.
    acks : {"all", "1", "0"}
        Replicas that must have a record before it counts as sent.
    idempotence : bool
        Retries can neither duplicate nor reorder records (needs ``acks=all``).
    close_timeout_s : float
        How long closing waits for records still in flight.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_PRODUCER_", frozen=True,
                                      extra="ignore")

    linger_ms: int = Field(default=20, ge=0)
    batch_size: int = Field(default=256 * 1024, gt=0)
    compression: Compression | None = "lz4"
    acks: Acks = "all"
    idempotence: bool = True
    close_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("compression", mode="before")
    @classmethod
    def _none_means_uncompressed(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @property
    def client_acks(self) -> int | Literal["all"]:
        """``acks`` as kafka-python takes it (a replica count, or ``"all"``)."""
        return "all" if self.acks == "all" else int(self.acks)


class KafkaSettings(BaseSettings):
    """Where Kafka is and how every client of the product talks to it.

    ``bootstrap`` unset means "not configured": clients then use the local
    stack's :data:`LOCAL_BOOTSTRAP`, and ``heat stack up`` starts a local broker
    instead of using an existing one.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_KAFKA_", frozen=True, extra="ignore")

    bootstrap: str | None = None
    topics: TopicSettings = Field(default_factory=TopicSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)

    @property
    def bootstrap_servers(self) -> str:
        """The configured bootstrap servers, else the local stack's."""
        return self.bootstrap or LOCAL_BOOTSTRAP
