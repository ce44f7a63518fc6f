"""Start-up checks shared by the commands: settings read, services answering, or one line."""

from __future__ import annotations

from collections.abc import Iterable

from heatmap import preflight
from heatmap.cli.errors import UsageFailed
from heatmap.settings.database import DatabaseSettings, Role
from heatmap.settings.kafka import KafkaConnection

STACK_HINT = 'for the local stack: eval "$(heat stack env)"'


def connect_timeout_s() -> float:
    return preflight.PreflightSettings().connect_timeout_s


def kafka_ready(connection: KafkaConnection, topics: Iterable[str] = ()) -> None:
    """Fail in one line, within HEAT_CONNECT_TIMEOUT_S, unless Kafka answers with ``topics``."""
    preflight.require_kafka(connection, connect_timeout_s(), topics)


def database_url(settings: DatabaseSettings, role: Role | None = None) -> str:
    """The URL to connect with (the owner's, or ``role``'s), checked to accept a login."""
    own = None if role is None else settings.own_url(role)
    if own is None and not settings.has_admin_url():
        raise UsageFailed(f"HEAT_DATABASE_URL is not set; {STACK_HINT}")
    try:
        url = settings.role_url(role) if role else settings.admin_url()
    except ValueError as error:
        raise UsageFailed(str(error)) from error
    if role is None:
        preflight.require_postgres(url, connect_timeout_s())
        return url
    own_setting = f"HEAT_{role.removeprefix('heat_').upper()}_URL"
    setting = own_setting if own is not None else preflight.DATABASE_SETTING
    preflight.require_postgres(
        url, connect_timeout_s(), setting,
        login_remedy=f"run `heat db migrate` (it creates the {role} role) and check "
        f"{own_setting if own is not None else f'the {role} password'}")
    return url
