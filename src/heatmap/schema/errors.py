"""The error a record that breaks the message contract is refused with."""

from __future__ import annotations


class InvalidMessageError(ValueError):
    """A record breaks the message contract; ``str()`` is the reason."""
