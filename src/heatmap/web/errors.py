"""The bot API's answers other than 200, raised by handlers and access checks alike."""

from __future__ import annotations


class ApiError(Exception):
    """An answer other than 200: status and reason (and headers, e.g. for a redirect)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.headers = headers or {}
