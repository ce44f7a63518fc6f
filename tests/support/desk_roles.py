"""Connecting as a desk reader made by a test."""

from __future__ import annotations

from typing import Any

import psycopg


def login_url(settings: Any, role: str, password: str) -> str:
    """The admin URL's server and database (``settings.admin_url()``), as ``role``."""
    info = psycopg.conninfo.conninfo_to_dict(settings.admin_url())
    info.update(user=role, password=password)
    return psycopg.conninfo.make_conninfo(**info)
