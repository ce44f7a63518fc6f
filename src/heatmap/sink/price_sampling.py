"""Which price ticks the sink stores: every bar's close and open, and at most one tick per
symbol and source per interval in between.

A stream cannot know that a tick is the last one before a bar boundary until the next
tick arrives, so the latest tick that was not kept is held per (symbol, source) and
emitted when the next tick crosses a boundary. The rule, per (symbol, source), in
arrival order (one symbol is on one partition, so its ticks arrive in order):

- the first tick seen is kept;
- a tick in a later bar than the latest tick seen is kept (the bar's opening tick),
  and the held tick, if any, is emitted before it: it was the last tick at or before
  the boundary, i.e. the bar's close;
- any other tick is kept when it is at least ``interval_ms`` after the last kept tick,
  else it replaces the held tick (when newer than it).

A bar ending at boundary ``B`` holds the ticks with ``B - bar_ms < ts <= B``: a tick
exactly on the boundary closes the bar, as the engine closes bars. A quiet symbol's
held tick is also known to be its bar's close as soon as any tick of a later bar
arrives on the same partition (a partition's ticks arrive in time order), so it is
emitted then, not only at the symbol's own next tick. Interval 0 keeps every tick.

Held ticks live in memory: the sink commits a partition's offsets only up to its
oldest held tick (:meth:`PriceSampler.held_positions`), so a crash re-reads them
rather than losing them; :meth:`PriceSampler.flush` emits them on a clean stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from heatmap.schema import Price, datetime_to_ms

# Where a tick was read: (topic, partition, offset).
RecordPosition = tuple[str, int, int]


@dataclass
class _SymbolState:
    bar_end_ms: int  # the boundary closing the bar of the latest tick seen
    kept_ms: int  # time of the last tick kept
    held: Price | None = None  # the latest tick not kept
    held_ms: int = 0
    held_at: RecordPosition | None = None  # where the held tick was read


def bar_end_ms(ts_ms: int, bar_ms: int) -> int:
    """The bar boundary at or after ``ts_ms`` (epoch ms): the close of the tick's bar."""
    return -(-ts_ms // bar_ms) * bar_ms


class PriceSampler:
    """Thins a price stream (see the module docstring).

    Parameters
    ----------
    interval_ms : int
        At most one tick per (symbol, source) per this many milliseconds between bar
        boundaries; 0 keeps every tick.
    bar_ms : int
        Bar length in milliseconds; bars close on UTC multiples of it.
    """

    def __init__(self, interval_ms: int, bar_ms: int) -> None:
        if interval_ms < 0 or bar_ms <= 0:
            raise ValueError("interval_ms must be >= 0 and bar_ms > 0")
        self.interval_ms = interval_ms
        self.bar_ms = bar_ms
        self._state: dict[tuple[str, str], _SymbolState] = {}
        self._partition_bar_end_ms: dict[tuple[str, int], int] = {}
        self.dropped = 0  # ticks held and then superseded: never stored

    def offer(self, price: Price, at: RecordPosition | None = None) -> list[Price]:
        """The ticks to store now, in time order, given one more tick read at ``at``."""
        if self.interval_ms == 0:
            return [price]
        ts_ms = datetime_to_ms(price.ts)
        bar_end = bar_end_ms(ts_ms, self.bar_ms)
        closes = self._closed_on_partition(at, bar_end) if at is not None else []
        return closes + self._offer(price, at, ts_ms, bar_end)

    def _closed_on_partition(self, at: RecordPosition, bar_end: int) -> list[Price]:
        """Held ticks of earlier bars on ``at``'s partition, once a later bar reached it."""
        partition = (at[0], at[1])
        if bar_end <= self._partition_bar_end_ms.get(partition, bar_end):
            self._partition_bar_end_ms.setdefault(partition, bar_end)
            return []
        self._partition_bar_end_ms[partition] = bar_end
        closes = []
        for state in self._state.values():
            if (state.held is not None and state.held_at is not None
                    and state.held_at[:2] == partition and state.bar_end_ms < bar_end):
                closes.append(state.held)
                state.held, state.held_at = None, None
        return sorted(closes, key=lambda tick: tick.ts)

    def _offer(self, price: Price, at: RecordPosition | None, ts_ms: int,
               bar_end: int) -> list[Price]:
        key = (price.symbol, price.source)
        state = self._state.get(key)
        if state is None:
            self._state[key] = _SymbolState(bar_end_ms=bar_end, kept_ms=ts_ms)
            return [price]
        if bar_end > state.bar_end_ms:
            kept = [state.held, price] if state.held is not None else [price]
            state.held, state.held_at = None, None
            state.bar_end_ms = bar_end
            state.kept_ms = ts_ms
            return kept
        if ts_ms - state.kept_ms >= self.interval_ms:
            if state.held is not None and state.held_ms <= ts_ms:
                self.dropped += 1
                state.held, state.held_at = None, None
            state.kept_ms = ts_ms
            return [price]
        if state.held is None or ts_ms >= state.held_ms:
            if state.held is not None:
                self.dropped += 1
            state.held, state.held_ms, state.held_at = price, ts_ms, at
        else:
            self.dropped += 1
        return []

    def flush(self) -> list[Price]:
        """Every held tick (a clean stop stores them rather than lose them)."""
        held = [state.held for state in self._state.values() if state.held is not None]
        for state in self._state.values():
            state.held, state.held_at = None, None
        return held

    def held_positions(self) -> list[RecordPosition]:
        """Where every held tick was read: offsets must not be committed past them."""
        return [state.held_at for state in self._state.values()
                if state.held is not None and state.held_at is not None]
