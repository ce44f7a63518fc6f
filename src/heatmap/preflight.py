"""Start-up checks: do the services a command needs answer? Each check is bounded in time.

A command checks its Kafka broker and its database once, before it starts
working, so that an absent service is reported in seconds instead of after
the clients' own long connection timeouts. The clients keep their normal
retry behaviour afterwards: a running service that loses its broker keeps
retrying as before.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.settings.kafka import KafkaConnection

KAFKA_SETTING = "HEAT_KAFKA_BOOTSTRAP"
DATABASE_SETTING = "HEAT_DATABASE_URL"


class PreflightSettings(BaseSettings):
    """How long a start-up check waits for a service, from ``HEAT_CONNECT_TIMEOUT_S``."""

    model_config = SettingsConfigDict(env_prefix="HEAT_", frozen=True, extra="ignore")

    connect_timeout_s: float = Field(default=5.0, gt=0)


class ServiceUnreachable(Exception):  # noqa: N818 - the name says what the caller gets
    """A service a command needs did not answer, or is not usable as configured.

    Parameters
    ----------
    service : str
        ``Kafka`` or ``PostgreSQL``.
    address : str
        Where it was looked for (no password).
    reason : str
        What went wrong, in a few words (``connection refused``).
    remedy : str
        What the user can do about it.
    """

    def __init__(self, service: str, address: str, reason: str, remedy: str) -> None:
        super().__init__(f"cannot reach {service} at {address} ({reason}): {remedy}")
        self.service = service
        self.address = address
        self.reason = reason
        self.remedy = remedy


class ServiceSettingError(ValueError):
    """A setting that names a service cannot be understood (e.g. a malformed URL)."""


def default_remedy(setting: str) -> str:
    return f"start it with `heat stack up` or set {setting}"


# -- Kafka ---------------------------------------------------------------------------------------


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port`` pairs of a bootstrap list (``[::1]:9092`` keeps IPv6 literals whole)."""
    addresses = []
    for entry in bootstrap.split(","):
        entry = entry.strip()
        host, sep, port = entry.rpartition(":")
        if not entry:
            continue
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ServiceSettingError(f"{KAFKA_SETTING} entry {entry!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    if not addresses:
        raise ServiceSettingError(f"{KAFKA_SETTING} is empty")
    return addresses


def _tcp_reason(addresses: Iterable[tuple[str, int]], timeout_s: float) -> str | None:
    """None when one of ``addresses`` accepts a TCP connection, else why none did."""
    reason = "no address"
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return None
        except TimeoutError:
            reason = f"no answer within {timeout_s:g} s"
        except OSError as error:
            reason = (error.strerror or str(error)).lower()
    return reason


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a client library's logger: the check reports its failure itself."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


def require_kafka(connection: KafkaConnection, timeout_s: float, topics: Iterable[str] = (),
                  remedy: str | None = None) -> None:
    """Return when a Kafka broker answers at ``bootstrap`` and holds ``topics``.

    A refused connection fails at once; a silent address or a listener that is
    not Kafka fails after about ``timeout_s`` (kafka-python's
    ``bootstrap_timeout_ms`` bounds the metadata bootstrap).

    Raises
    ------
    ServiceUnreachable
        Nothing (usable) answers, or topics are missing.
    ServiceSettingError
        ``bootstrap`` is not a ``host:port[,host:port...]`` list.
    """
    remedy = remedy or default_remedy(KAFKA_SETTING)
    bootstrap = connection.bootstrap_servers
    reason = _tcp_reason(bootstrap_addresses(bootstrap), timeout_s)
    if reason is not None:
        raise ServiceUnreachable("Kafka", bootstrap, reason, remedy)
    timeout_ms = int(timeout_s * 1000)
    with _quiet("kafka"):
        try:
            admin = KafkaAdminClient(**connection.named("heat-preflight").kafka_python(),
                                     bootstrap_timeout_ms=timeout_ms,
                                     request_timeout_ms=timeout_ms)
        except (KafkaError, OSError) as error:
            reason = f"no Kafka answer within {timeout_s:g} s"
            if connection.uses_sasl:
                # Brokers close the connection on failed authentication without saying
                # so to kafka-python: the one sign of a wrong password is this silence.
                reason += (f" (as SASL user {connection.sasl_username}: a wrong user name "
                           "or password is refused the same way)")
            raise ServiceUnreachable("Kafka", bootstrap, reason, remedy) from error
        try:
            wanted = list(topics)
            missing = sorted(set(wanted) - set(admin.list_topics())) if wanted else []
        except KafkaError as error:
            raise ServiceUnreachable("Kafka", bootstrap, f"listing topics failed: {error}",
                                     remedy) from error
        finally:
            admin.close()
    if missing:
        raise ServiceUnreachable(
            "Kafka", bootstrap, f"topic(s) {', '.join(missing)} missing",
            "create them with `heat stack up`, or check HEAT_TOPIC_PREFIX")


# -- PostgreSQL ----------------------------------------------------------------------------------


def database_address(url: str) -> str:
    """``host:port/dbname`` of a connection URL or string, without user or password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        raise ServiceSettingError(f"not a PostgreSQL URL or connection string: "
                                f"{first_line(str(error))}") from error
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    if ":" in host and "," not in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or parts.get('user') or ''}"


def require_postgres(url: str, timeout_s: float, setting: str = DATABASE_SETTING,
                     remedy: str | None = None, login_remedy: str | None = None) -> None:
    """Return when a PostgreSQL server accepts a login with ``url`` within ``timeout_s``.

    ``remedy`` is what to do when the server does not answer, ``login_remedy``
    when it refuses the login (both have defaults naming ``setting``).

    Raises
    ------
    ServiceUnreachable
        The server does not answer or refuses the login.
    ServiceSettingError
        ``url`` cannot be parsed (the message names ``setting``).
    """
    try:
        address = database_address(url)
    except ServiceSettingError as error:
        raise ServiceSettingError(f"{setting} is {error}") from error
    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout_s))):
            return
    except psycopg.OperationalError as error:
        reason = connection_failure(str(error))
        if "authentication" in reason or "password" in reason or "role" in reason:
            chosen = login_remedy or f"check the user and password in {setting}"
        else:
            chosen = remedy or default_remedy(setting)
        raise ServiceUnreachable("PostgreSQL", address, reason, chosen) from error


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def connection_failure(message: str) -> str:
    """The gist of a libpq connection error: ``Connection refused``, ``password ... failed``."""
    line = first_line(message)
    # libpq: 'connection failed: connection to server at "h", port p failed: <reason>'
    reason = line.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip() or line
    return reason[:1].lower() + reason[1:]
