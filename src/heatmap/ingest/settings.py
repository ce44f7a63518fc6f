"""Configuration of the ingest services, from ``HEAT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.settings.kafka import KafkaSettings
from heatmap.settings.secrets import secret_value


class IngestSettings(BaseSettings):
    """What an ingest service adds to the shared Kafka settings.

    Exchange API keys come from ``HEAT_EXCHANGE_API_KEY`` / ``HEAT_EXCHANGE_SECRET``
    (``HEAT_EXCHANGE_PASSWORD`` where an exchange needs one) or their ``*_FILE``;
    they are never logged.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_", frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    metrics_port: int = 0
    # Loopback by default; a container sets 0.0.0.0 so Prometheus can scrape it.
    metrics_host: str = "127.0.0.1"
    log_level: str = "INFO"
    service_name: str = "ingest"

    exchange_api_key: SecretStr | None = None
    exchange_api_key_file: Path | None = None
    exchange_secret: SecretStr | None = None
    exchange_secret_file: Path | None = None
    exchange_password: SecretStr | None = None
    exchange_password_file: Path | None = None

    def exchange_credentials(self) -> tuple[str, str, str | None] | None:
        """(api_key, secret, password) when a key and secret are configured."""
        key = secret_value(self.exchange_api_key, self.exchange_api_key_file)
        secret = secret_value(self.exchange_secret, self.exchange_secret_file)
        if not key or not secret:
            return None
        return key, secret, secret_value(self.exchange_password, self.exchange_password_file)
