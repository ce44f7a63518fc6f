"""Configuration of the local stack (``heat stack``), from ``HEAT_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.settings.database import DatabaseSettings
from heatmap.settings.kafka import KafkaSettings


def _xdg_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable)
    return (Path(base) if base else Path.home() / fallback) / "heat"


class StackSettings(BaseSettings):
    """Where the local stack keeps its state and how it starts its services.

    When ``kafka.bootstrap`` (``HEAT_KAFKA_BOOTSTRAP``) or ``database.database_url``
    (``HEAT_DATABASE_URL``) is set, that existing service is used and no local one
    is started; the topics are created as ``kafka.topics`` says.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_", frozen=True, extra="ignore")

    state_dir: Path = Field(default_factory=lambda: _xdg_dir("XDG_STATE_HOME", ".local/state"))
    cache_dir: Path = Field(default_factory=lambda: _xdg_dir("XDG_CACHE_HOME", ".cache"))

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap_mb: int = 768
    java_home: Path | None = Field(default=None, validation_alias="JAVA_HOME")
    maven_command: str = "mvn"

    postgres_port: int = 5432
    postgres_bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    postgres_os_user: str = "postgres"
    postgres_fsync: bool = True
    database_name: str = "heat"

    start_timeout_s: float = 90.0
    stop_timeout_s: float = 20.0
