"""Scratch databases for benchmarks: created on the server of an owner URL, dropped after."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import psycopg
from psycopg import sql
from pydantic import SecretStr

from heatmap.settings.database import DatabaseSettings


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``; dropped afterwards."""
    name = f"heat_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def scratch_settings(url: str, timescaledb: Literal["auto", "off"] = "auto",
                     writer_password: str | None = None) -> DatabaseSettings:
    """Settings for a scratch database. Roles belong to the server, so migrating gives
    ``heat_writer`` ``writer_password``: pass the one the server's services already use
    (None: a random one)."""
    return DatabaseSettings(database_url=SecretStr(url),
                            writer_password=SecretStr(writer_password
                                                      or secrets.token_urlsafe(16)),
                            writer_url=None, timescaledb=timescaledb)
