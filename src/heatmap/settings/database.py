"""The one database configuration, from ``HEAT_*`` environment variables (secrets also
from ``*_FILE``): used by migrations, the writer, replays, benchmarks and the local stack."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.settings.secrets import secret_value

Role = Literal["heat_writer", "heat_reader"]
WRITER_ROLE: Role = "heat_writer"
READER_ROLE: Role = "heat_reader"


class DatabaseSettings(BaseSettings):
    """Where the database is and how its roles log in.

    ``database_url`` is an owner (or superuser) URL, used only by migrations and
    rollup refreshes; services connect as ``heat_writer`` / ``heat_reader`` with
    their own URLs, or with URLs derived from it and the role passwords.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_", frozen=True, extra="ignore")

    database_url: SecretStr | None = None
    writer_url: SecretStr | None = None
    reader_url: SecretStr | None = None
    writer_password: SecretStr | None = None
    writer_password_file: Path | None = None
    reader_password: SecretStr | None = None
    reader_password_file: Path | None = None

    # Whether migrations apply the TimescaleDB layer: when the extension can be loaded
    # (auto), always (require: fail when it cannot), or never (off).
    timescaledb: Literal["auto", "require", "off"] = "auto"

    # Ages of the TimescaleDB layer's policies (PostgreSQL interval syntax).
    compress_after: str = "7 days"
    retention_prices: str = "90 days"
    retention_frames: str = "180 days"
    retention_events: str = "3 years"
    retention_deadletters: str = "30 days"
    retention_rollups: str = "3 years"

    pool_min_size: int = 1
    pool_max_size: int = 4
    retry_attempts: int = Field(default=8, ge=1)
    retry_backoff_s: float = 0.25

    def admin_url(self) -> str:
        if self.database_url is None:
            raise ValueError("HEAT_DATABASE_URL is not set")
        return self.database_url.get_secret_value()

    def role_password(self, role: Role) -> str | None:
        if role == WRITER_ROLE:
            return secret_value(self.writer_password, self.writer_password_file)
        return secret_value(self.reader_password, self.reader_password_file)

    def role_url(self, role: Role) -> str:
        """The URL a service uses: its own, or the admin URL with this role and password."""
        own = self.writer_url if role == WRITER_ROLE else self.reader_url
        if own is not None:
            return own.get_secret_value()
        password = self.role_password(role)
        if password is None:
            raise ValueError(f"set HEAT_{role.split('_')[1].upper()}_URL or the {role} password")
        parts = urlsplit(self.admin_url())
        if not parts.scheme.startswith("postgres"):
            raise ValueError("HEAT_DATABASE_URL must be a postgresql:// URL to derive role URLs")
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal keeps its brackets
            host = f"[{host}]"
        netloc = f"{quote(role)}:{quote(password, safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def layer_settings(self) -> dict[str, str]:
        """Session settings the TimescaleDB layer reads with ``current_setting``."""
        return {f"heat.{name}": getattr(self, name) for name in (
            "compress_after", "retention_prices", "retention_frames", "retention_events",
            "retention_deadletters", "retention_rollups")}
