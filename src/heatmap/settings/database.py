"""The one database configuration, from ``HEAT_*`` environment variables (secrets also
from ``*_FILE``): used by migrations, the writer, replays, benchmarks and the local stack."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.settings.secrets import secret_value

Role = Literal["heat_writer", "heat_reader"]
WRITER_ROLE: Role = "heat_writer"
READER_ROLE: Role = "heat_reader"

# libpq's sslmode values, weakest first.
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# The retention settings, each naming the tables whose window it sets.
RetentionGroup = Literal["prices", "frames", "events", "deadletters", "rollups"]
RETENTION_GROUPS: tuple[RetentionGroup, ...] = ("prices", "frames", "events", "deadletters",
                                                "rollups")
RETENTION_OFF = "off"
# What the versioned files of the TimescaleDB layer (0001, 0002) are given for the
# heat.retention_* settings they read: they add age-based policies when first applied,
# and `heat db migrate` replaces those by the configured ones right after. A window no
# stored row is old enough for drops nothing should the scheduler run one in between.
_LEGACY_RETENTION_WINDOW = "1000 years"


class DatabaseSettings(BaseSettings):
    """Where the database is, how its roles log in, and how long the TimescaleDB layer
    keeps rows.

    ``database_url`` is an owner (or superuser) URL, used only by migrations and
    rollup refreshes; services connect as ``heat_writer`` / ``heat_reader`` with
    their own URLs, or with URLs derived from it and the role passwords. Every URL and
    password may instead be read from the file its ``*_FILE`` variable names.

    Retention windows (``retention_*``) are PostgreSQL intervals or ``off``. On
    TimescaleDB a chunk is dropped once it was *created* (loaded) longer ago than its
    window, whatever the times of its rows: a backfill of old history is kept for the
    window from when it was loaded. ``off``: no retention policy on those tables.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_", frozen=True, extra="ignore")

    database_url: SecretStr | None = None
    database_url_file: Path | None = None
    writer_url: SecretStr | None = None
    writer_url_file: Path | None = None
    reader_url: SecretStr | None = None
    reader_url_file: Path | None = None
    writer_password: SecretStr | None = None
    writer_password_file: Path | None = None
    reader_password: SecretStr | None = None
    reader_password_file: Path | None = None

    # TLS of every connection these settings make (owner, writer, reader): libpq's
    # sslmode, and the root certificate that verify-ca / verify-full check the server
    # against (libpq's default: ~/.postgresql/root.crt). A URL that names its own
    # sslmode or sslrootcert keeps it.
    database_sslmode: SslMode = "prefer"
    database_sslrootcert: Path | None = None

    # Whether migrations apply the TimescaleDB layer: when the extension can be loaded
    # (auto), always (require: fail when it cannot), or never (off).
    timescaledb: Literal["auto", "require", "off"] = "auto"

    # Ages of the TimescaleDB layer's policies (PostgreSQL interval syntax, or "off").
    compress_after: str = "7 days"
    retention_prices: str = "90 days"
    retention_frames: str = "180 days"  # frames, frame_positions, frame_clusters, correlations
    retention_events: str = "3 years"  # positions, account_equity, alerts
    retention_deadletters: str = "30 days"
    # The 1m/1h/1d rollups outlive the raw frames: kept until dropped by hand unless set.
    retention_rollups: str = RETENTION_OFF

    # How long one statement of a reader (heat_reader and every desk reader) may run
    # before the server cancels it: a runaway query from a desk must not hold the
    # database. Set per role in this database by `heat db migrate` and `heat db
    # desk-role`; 0 turns the limit off.
    reader_statement_timeout_ms: int = Field(default=300_000, ge=0)

    pool_min_size: int = 1
    pool_max_size: int = 4
    retry_attempts: int = Field(default=8, ge=1)
    retry_backoff_s: float = 0.25

    @field_validator("retention_prices", "retention_frames", "retention_events",
                     "retention_deadletters", "retention_rollups")
    @classmethod
    def _window(cls, value: str) -> str:
        """``off`` in any case; otherwise the interval as given (the server parses it)."""
        value = value.strip()
        if not value:
            raise ValueError("give a PostgreSQL interval (e.g. '180 days') or 'off'")
        return RETENTION_OFF if value.lower() == RETENTION_OFF else value

    def retention_window(self, group: RetentionGroup) -> str | None:
        """The retention window of a group of tables; None when its retention is off."""
        window: str = getattr(self, f"retention_{group}")
        return None if window == RETENTION_OFF else window

    def admin_url(self) -> str:
        url = secret_value(self.database_url, self.database_url_file)
        if url is None:
            raise ValueError("HEAT_DATABASE_URL is not set")
        return self.with_tls(url)

    def with_tls(self, url: str) -> str:
        """``url`` (a ``postgresql://`` URL or ``key=value`` conninfo) with
        ``HEAT_DATABASE_SSLMODE`` and ``HEAT_DATABASE_SSLROOTCERT`` added, unless it sets
        them itself."""
        wanted: dict[str, str] = {}
        # prefer is libpq's own default: URLs stay as written unless asked for more.
        if self.database_sslmode != "prefer" or "database_sslmode" in self.model_fields_set:
            wanted["sslmode"] = self.database_sslmode
        if self.database_sslrootcert is not None:
            wanted["sslrootcert"] = str(self.database_sslrootcert)
        if not wanted:
            return url
        parts = urlsplit(url)
        if parts.scheme in ("postgresql", "postgres"):
            query = parse_qsl(parts.query, keep_blank_values=True)
            named = {key for key, _ in query}
            query += [(key, value) for key, value in wanted.items() if key not in named]
            return urlunsplit(parts._replace(query=urlencode(query)))
        # key=value conninfo: a later keyword would override, so add only missing ones.
        named = {item.split("=", 1)[0].strip() for item in url.split() if "=" in item}
        extra = " ".join(f"{key}='{_conninfo_quote(value)}'" for key, value in wanted.items()
                         if key not in named)
        return f"{url} {extra}".strip() if extra else url

    def has_admin_url(self) -> bool:
        """Whether an owner URL is configured (``HEAT_DATABASE_URL`` or its ``_FILE``)."""
        return self.database_url is not None or self.database_url_file is not None

    def own_url(self, role: Role) -> str | None:
        """The role's own URL (``HEAT_WRITER_URL`` / ``HEAT_READER_URL`` or their
        ``_FILE``), or None when it is derived from the admin URL."""
        if role == WRITER_ROLE:
            return secret_value(self.writer_url, self.writer_url_file)
        return secret_value(self.reader_url, self.reader_url_file)

    def role_password(self, role: Role) -> str | None:
        if role == WRITER_ROLE:
            return secret_value(self.writer_password, self.writer_password_file)
        return secret_value(self.reader_password, self.reader_password_file)

    def role_url(self, role: Role) -> str:
        """The URL a service uses: its own, or the admin URL with this role and password."""
        own = self.own_url(role)
        if own is not None:
            return self.with_tls(own)
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
        """Session settings the versioned files of the TimescaleDB layer read with
        ``current_setting``. Their retention policies are placeholders, replaced by
        :mod:`heatmap.db.retention` in the same migration run."""
        settings = {"heat.compress_after": self.compress_after}
        settings.update({f"heat.retention_{group}": _LEGACY_RETENTION_WINDOW
                         for group in RETENTION_GROUPS})
        return settings


def _conninfo_quote(value: str) -> str:
    """A value for a single-quoted ``key='value'`` conninfo item."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
