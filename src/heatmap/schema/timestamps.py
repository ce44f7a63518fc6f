"""Time at the edges of the product.

Inside the product a moment is integer epoch milliseconds (``ts_ms``). Only at the
edges is it something else: RFC 3339 UTC text in Kafka messages and files
(:func:`ms_to_rfc3339` / :func:`rfc3339_to_ms`), and an aware ``datetime`` where a
library speaks in datetimes, i.e. msgspec's decoded input messages and PostgreSQL's
``timestamptz`` (:func:`ms_to_datetime` / :func:`datetime_to_ms`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from heatmap.schema.errors import InvalidMessageError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (to the nearest millisecond)."""
    return round(moment.timestamp() * 1000)


def ms_to_datetime(ts_ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds (exact: no float in between)."""
    return _EPOCH + timedelta(milliseconds=ts_ms)


@lru_cache(maxsize=4096)
def ms_to_rfc3339(ts_ms: int) -> str:
    """``2026-01-02T03:04:05.678Z`` for epoch milliseconds."""
    return f"{ms_to_datetime(ts_ms):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"


def rfc3339_to_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp (a missing offset means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00", 1))
    except ValueError as error:
        raise InvalidMessageError(f"bad timestamp {text!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime_to_ms(moment)
