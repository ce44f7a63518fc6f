"""What every ingest source yields: a valid input message, or a rejected input."""

from __future__ import annotations

from dataclasses import dataclass

from heatmap.schema import Account, Position, Price

Message = Price | Position | Account


@dataclass(frozen=True)
class Rejected:
    """An input that broke the message contract: where it was headed, why, its bytes."""

    topic: str
    reason: str
    payload: bytes
    key: bytes | None = None
