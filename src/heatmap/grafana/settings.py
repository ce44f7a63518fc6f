"""How ``heat grafana provision`` reaches Grafana and what the data sources it creates
point at, from ``HEAT_GRAFANA_*`` variables (secrets also from ``*_FILE``). The data
source variables are the ones the provisioning files in ``infra/grafana`` read."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.settings.secrets import secret_value


class GrafanaSettings(BaseSettings):
    """Grafana's URL and credentials, and where its data sources find the database and
    Prometheus (as Grafana sees them).

    Authentication: a service account token (``HEAT_GRAFANA_TOKEN`` or
    ``HEAT_GRAFANA_TOKEN_FILE``), else basic auth with ``HEAT_GRAFANA_USER`` and
    ``HEAT_GRAFANA_PASSWORD`` (or ``HEAT_GRAFANA_PASSWORD_FILE``).
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_GRAFANA_", frozen=True, extra="ignore")

    url: str = "http://127.0.0.1:3000"
    token: SecretStr | None = None
    token_file: Path | None = None
    user: str = "admin"
    password: SecretStr | None = None
    password_file: Path | None = None
    timeout_s: float = Field(default=10.0, gt=0)

    database_host: str = "127.0.0.1:5432"
    database_name: str = "heat"
    # Grafana's own TLS modes (it has no "prefer"): disable, require, verify-ca,
    # verify-full. verify-* check the server against database_sslrootcert, a path as
    # Grafana sees it.
    database_sslmode: Literal["disable", "require", "verify-ca", "verify-full"] = "disable"
    database_sslrootcert: str = ""
    reader_password: SecretStr | None = Field(default=None,
                                              validation_alias="HEAT_READER_PASSWORD")
    reader_password_file: Path | None = Field(default=None,
                                              validation_alias="HEAT_READER_PASSWORD_FILE")
    prometheus_url: str = "http://127.0.0.1:9090"

    def credential(self) -> str | tuple[str, str] | None:
        """The token, else (user, password), else None (anonymous)."""
        token = secret_value(self.token, self.token_file)
        if token:
            return token
        password = secret_value(self.password, self.password_file)
        return (self.user, password) if password else None

    def reader_secret(self) -> str | None:
        return secret_value(self.reader_password, self.reader_password_file)
