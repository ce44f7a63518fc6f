"""Configuration of the sink (``heat sink``), from ``HEAT_SINK_*`` environment variables
plus the shared ``HEAT_BAR_INTERVAL``, ``HEAT_WEB_HOST`` and ``HEAT_LOG_LEVEL``; Kafka and
the database are the shared settings classes."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.engine.params import parse_duration_s
from heatmap.settings.database import DatabaseSettings
from heatmap.settings.kafka import KafkaSettings


class SinkSettings(BaseSettings):
    """What the sink adds to the shared Kafka and database settings.

    Parameters
    ----------
    price_interval_s : float
        ``HEAT_SINK_PRICE_INTERVAL``: seconds; at most one price tick per symbol and
        source is stored per this interval, plus the ticks around each bar boundary
        (see :mod:`heatmap.sink.price_sampling`); 0 stores every tick.
    bar_interval : str
        ``HEAT_BAR_INTERVAL``: bar length (e.g. ``1m``), as the processor uses it.
    batch_max_records : int
        ``HEAT_SINK_BATCH_MAX_RECORDS``: records per poll, hence per transaction.
    batch_max_wait_ms : int
        ``HEAT_SINK_BATCH_MAX_WAIT_MS``: how long a poll waits for records.
    web_host, web_port : str, int
        ``HEAT_WEB_HOST`` / ``HEAT_SINK_WEB_PORT``: where ``/metrics`` and ``/health``
        are served; port 0 takes a free port.
    shutdown_timeout_s : float
        ``HEAT_SINK_SHUTDOWN_TIMEOUT_S``: how long a stop waits for the current batch
        to be written and committed.
    log_level : str
        ``HEAT_LOG_LEVEL``.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_SINK_", frozen=True, extra="ignore",
                                      populate_by_name=True)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    price_interval_s: float = Field(default=1.0, ge=0,
                                    validation_alias="HEAT_SINK_PRICE_INTERVAL")
    bar_interval: str = Field(default="1m", validation_alias="HEAT_BAR_INTERVAL")
    batch_max_records: int = Field(default=5000, gt=0)
    batch_max_wait_ms: int = Field(default=200, gt=0)
    web_host: str = Field(default="127.0.0.1", validation_alias="HEAT_WEB_HOST")
    web_port: int = Field(default=0, ge=0, le=65535)
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    log_level: str = Field(default="INFO", validation_alias="HEAT_LOG_LEVEL")

    @field_validator("bar_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration_s(value)  # a bad interval fails here, at start-up
        return value

    @property
    def bar_interval_ms(self) -> int:
        return parse_duration_s(self.bar_interval) * 1000

    @property
    def price_interval_ms(self) -> int:
        return round(self.price_interval_s * 1000)
