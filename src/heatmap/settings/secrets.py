"""Secrets given either as a variable or as a file named by its ``*_FILE`` variable."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr


def secret_value(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret from its variable, else from the file its ``*_FILE`` variable names.

    An empty variable counts as unset, so a deployment can switch a service from a
    variable to a file (compose cannot remove a variable a base file sets)."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    if path is not None:
        return path.read_text().strip()
    return None
