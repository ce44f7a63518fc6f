"""Waiting on a condition with a deadline: tests never sleep for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout_s: float, interval_s: float = 0.05,
               message: str | Callable[[], str] = "") -> T:
    """Poll ``condition`` until it returns a truthy value (returned), or fail at the deadline
    with ``message`` (a callable is asked then, so it can say how far things got)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            raise AssertionError(said or f"condition not met within {timeout_s} s")
        time.sleep(interval_s)
