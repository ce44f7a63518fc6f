"""Secrets given either as a variable or as a file named by its ``*_FILE`` variable."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr


def secret_value(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret from its variable, else from the file its ``*_FILE`` variable names."""
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return path.read_text().strip()
    return None
