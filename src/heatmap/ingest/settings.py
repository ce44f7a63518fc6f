"""Configuration of the ingest services, from ``HEAT_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    """Kafka producer and service settings shared by every ingest source.

    Exchange API keys are read by the exchange source itself
    (``HEAT_EXCHANGE_API_KEY`` / ``HEAT_EXCHANGE_SECRET`` or their ``*_FILE``).
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    producer_linger_ms: int = 20
    producer_batch_size: int = 256 * 1024
    producer_compression: str = "lz4"
    producer_acks: str = "all"
    producer_idempotence: bool = True
    producer_close_timeout_s: float = 30.0
    metrics_port: int = 0
    log_level: str = "INFO"
    service_name: str = "ingest"
