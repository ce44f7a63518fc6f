"""Price conflation: at most one update per symbol per window, never dropping the last."""

from __future__ import annotations

from heatmap.schema import Price, datetime_to_ms


class Conflator:
    """Holds back a symbol's prices that arrive within ``window_ms`` of its last one sent.

    The newest held-back price goes out once the window has passed (on a later
    price of any symbol, or on :meth:`drain`), so a quiet symbol still ends on
    its true last price. Time is event time (epoch ms).
    """

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._last_sent_ms: dict[str, int] = {}
        self._held: dict[str, Price] = {}
        self.conflated = 0

    def offer(self, price: Price) -> list[Price]:
        """Prices to send now (the offered one and/or held ones whose window passed)."""
        now_ms = datetime_to_ms(price.ts)
        last = self._last_sent_ms.get(price.symbol)
        if last is None or now_ms - last >= self.window_ms:
            if self._held.pop(price.symbol, None) is not None:
                self.conflated += 1  # superseded by this newer price
            self._last_sent_ms[price.symbol] = now_ms
            return [*self.due(now_ms), price]
        if price.symbol in self._held:
            self.conflated += 1
        self._held[price.symbol] = price
        return self.due(now_ms)

    def due(self, now_ms: int) -> list[Price]:
        """Held prices whose symbol's window has passed by ``now_ms``."""
        out = []
        for symbol, held in list(self._held.items()):
            if now_ms - self._last_sent_ms[symbol] >= self.window_ms:
                del self._held[symbol]
                self._last_sent_ms[symbol] = now_ms
                out.append(held)
        return out

    def drain(self) -> list[Price]:
        """Everything still held (end of input or shutdown)."""
        out = list(self._held.values())
        self._held.clear()
        return out
