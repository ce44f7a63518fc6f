"""API credentials that never show in logs, and redaction of any text that might quote them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_REDACTED = "***"


@dataclass(frozen=True, slots=True)
class ExchangeCredentials:
    """API credentials of one exchange account (read-only keys are enough).

    ``repr``/``str`` never show any of the values, so the object can be logged.

    Parameters
    ----------
    api_key : str
        The exchange API key.
    secret : str
        The API secret.
    password : str or None
        The API passphrase, for exchanges that use one (none of the three
        supported here requires it; ccxt passes it on when set).
    """

    api_key: str
    secret: str
    password: str | None = None

    def __post_init__(self) -> None:
        if not self.api_key or not self.secret:
            raise ValueError("api_key and secret must be non-empty")

    def __repr__(self) -> str:
        password = "unset" if self.password is None else _REDACTED
        return f"ExchangeCredentials(api_key={_REDACTED}, secret={_REDACTED}, password={password})"

    __str__ = __repr__

    def secret_values(self) -> tuple[str, ...]:
        """Every credential string, for redaction."""
        return tuple(v for v in (self.api_key, self.secret, self.password) if v)

    def ccxt_config(self) -> dict[str, str]:
        """The credential part of a ccxt exchange config."""
        config = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            config["password"] = self.password
        return config


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text
