"""Real engine frames of a small synthetic book, for storage and SQL tests."""

from __future__ import annotations

from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.schema import Frame

BAR_MS = 60_000


def engine_frames(n_bars: int = 40, account: str = "acct-1", start_ms: int = 0) -> list[Frame]:
    """Frames of one account holding two of three symbols, over ``n_bars`` 1-minute bars.

    ``start_ms`` (epoch milliseconds, a multiple of a minute) is the first bar's time.
    """
    engine = HeatEngine(EngineParams(bar_interval_s=60, timeframes={"1h": 3600}, min_periods=3))
    frames = engine.on_account(account, start_ms, 1000.0, desk="desk-1")
    for bar in range(n_bars):
        bar_ms = start_ms + bar * BAR_MS
        for i, symbol in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT")):
            price = 100.0 * (1 + 0.01 * ((bar * (i + 1)) % 7))
            frames += engine.on_price(symbol, bar_ms, price)
        if bar == 2:
            frames += engine.on_position(account, "BTCUSDT", bar_ms + 1, 2.0)
            frames += engine.on_position(account, "ETHUSDT", bar_ms + 1, -1.0)
    return frames + engine.finish()
