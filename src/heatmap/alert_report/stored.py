"""Alert transitions from the database (``heat_api.alerts``, readable by ``heat_reader``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from heatmap.schema import Alert, datetime_to_ms, ms_to_rfc3339

# The order of one moment's transitions is not stored: within a moment, rows come by book,
# timeframe, kind and subject, resolves first (as the report reads a moment anyway).
STORED_ALERTS = """
SELECT ts, account, desk, timeframe, kind, subject, severity, state, value, threshold,
       message, warning_threshold, critical_threshold
FROM heat_api.alerts
WHERE ts >= %(start)s AND ts < %(end)s
ORDER BY ts, book_kind, book, timeframe, kind, subject, state DESC
"""


def stored_alerts(url: str, start: datetime, end: datetime) -> list[Alert]:
    """The alerts stored with ``start <= ts < end`` (aware datetimes), in time order."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(STORED_ALERTS, {"start": start, "end": end}).fetchall()
    return [_alert(row) for row in rows]


def _alert(row: tuple[Any, ...]) -> Alert:
    (ts, account, desk, timeframe, kind, subject, severity, state, value, threshold, message,
     warning, critical) = row
    return Alert(ts=ms_to_rfc3339(datetime_to_ms(ts)), account=account, desk=desk,
                 timeframe=timeframe, kind=kind, subject=subject, severity=severity,
                 state=state, value=value, threshold=threshold, message=message,
                 warning_threshold=warning, critical_threshold=critical)
