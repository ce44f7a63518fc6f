"""What the active engine tells whoever shows its state (the web views implement it).

The processor defines the interface and the web facade implements it, so the engine's
package never imports the views; the command that starts a worker wires the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from heatmap.engine.alerts import AlertThresholds
from heatmap.engine.engine import HeatEngine
from heatmap.schema import Alert, Frame


class EngineObserver(Protocol):
    """Called on the event loop, only while the engine thread is idle."""

    def stepped(self, engine: HeatEngine,
                thresholds: Callable[[str | None], AlertThresholds]) -> None:
        """An engine step finished: copy what is needed (the engine is not to be kept)."""

    def committed(self, frames: Sequence[Frame], alerts: Sequence[Alert] = ()) -> None:
        """An epoch's transaction committed with these frames and alert transitions."""

    def stopped(self) -> None:
        """The engine run ended (lease lost, failure, shutdown)."""
