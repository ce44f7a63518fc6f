"""The heat engine: events in (prices, positions, account terms), frames out.

Events must arrive in time order (epoch milliseconds). Before an event at
``t`` is applied, everything due strictly before ``t`` happens in time
order: bars close on their boundaries (bar frames for every book), and
change-triggered frames are emitted. A change at ``t`` is therefore seen
by a frame at ``t`` together with every other event at ``t``, and a
change exactly on a boundary is applied before that bar closes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from heatmap.engine.book import ExportedBook, PositionBook
from heatmap.engine.frames import book_frames, book_snapshot
from heatmap.engine.heat import BookSnapshot
from heatmap.engine.identity import ClusterIdentities, IdentityKey, KnownCluster
from heatmap.engine.market import ExportedMarket, MarketState
from heatmap.engine.params import EngineParams
from heatmap.engine.share import BookShare
from heatmap.schema import Account, CorrelationSnapshot, Frame, Position, Price, Trigger

BookKey = tuple[str | None, str | None]  # (account, desk): exactly one is set


@dataclass
class _Pending:
    due_ms: int
    trigger: Trigger


class PendingFrame(NamedTuple):
    """A change-triggered frame not yet emitted, for the book ``(account, desk)``:
    due at ``due_ms`` (epoch ms); ``sequence`` breaks ties of equal due times."""

    due_ms: int
    sequence: int
    account: str | None
    desk: str | None
    trigger: Trigger


@dataclass(frozen=True, kw_only=True)
class ExportedEngine:
    """Everything an engine holds between two events, copied out of it.

    Attributes
    ----------
    market : ExportedMarket
    book : ExportedBook
    pending : list of PendingFrame
        The heap of pending change frames as a list, in heap order.
    next_sequence : int
        The tie-break number of the next pending frame.
    last_change_frame_ms : dict of BookKey to int
        When each book last got a change frame (epoch ms): the rate limit's clock.
    last_price_ms : int or None
        The newest price time (epoch ms), where :meth:`HeatEngine.finish` closes bars up to.
    clusters : dict of IdentityKey to tuple of KnownCluster
        Per book and timeframe, the clusters of its latest emitted frame (their names
        carry over), in insertion order.
    """

    market: ExportedMarket
    book: ExportedBook
    pending: list[PendingFrame]
    next_sequence: int
    last_change_frame_ms: dict[BookKey, int]
    last_price_ms: int | None
    clusters: dict[IdentityKey, tuple[KnownCluster, ...]]


class HeatEngine:
    """Streaming heat for every account and desk over one price universe.

    Parameters
    ----------
    params : EngineParams
        Bar interval, timeframes and every threshold.
    on_bar_close : callable, optional
        Called with each bar boundary (epoch ms) right after the bar closes.
    share : BookShare, optional
        Frame only these books (:mod:`heatmap.engine.share`); None: every book.
    """

    def __init__(self, params: EngineParams | None = None,
                 on_bar_close: Callable[[int], None] | None = None,
                 share: BookShare | None = None) -> None:
        self.params = params or EngineParams()
        # Called with the boundary (epoch ms) right after a bar closes, before its frames.
        self.on_bar_close = on_bar_close
        # The books this engine frames (None: all); every event is applied regardless.
        self.share = share
        self.market = MarketState(self.params)
        self.book = PositionBook(self.params.default_maintenance_rate)
        self._pending: dict[BookKey, _Pending] = {}
        # (due_ms, sequence, key) per pending frame; a pending frame's due time never changes.
        self._due: list[tuple[int, int, BookKey]] = []
        # Breaks ties of equal due times in arrival order; a plain int so checkpoints can hold it.
        self._next_sequence = 0
        self._last_change_frame_ms: dict[BookKey, int] = {}
        self._min_change_gap_ms = round(1000.0 / self.params.max_frame_rate_per_s)
        self._last_price_ms: int | None = None
        # Cluster names carry over from each book's previous emitted frame.
        self.clusters = ClusterIdentities()
        # The parameters echoed in frames are the same for every frame of a timeframe.
        self._echo = {tf: (self.params.frame_params(tf), self.params.params_hash(tf))
                      for tf in self.params.timeframes}

    # -- events ------------------------------------------------------------------------------

    def on_price(self, symbol: str, ts_ms: int, price: float) -> list[Frame]:
        frames = self.advance_to(ts_ms)
        self.market.on_price(symbol, ts_ms, price)
        self._last_price_ms = max(ts_ms, self._last_price_ms or ts_ms)
        return frames

    def on_position(self, account: str, symbol: str, ts_ms: int, qty: float,
                    strategy: str | None = None, conviction: float | None = None) -> list[Frame]:
        frames = self.advance_to(ts_ms)
        self.book.set_position(account, symbol, strategy, qty, conviction)
        self._changed(account, self.book.desk_of(account), ts_ms, "position")
        return frames

    def on_account(self, account: str, ts_ms: int, equity: float, desk: str | None = None,
                   maintenance_rate: float | None = None) -> list[Frame]:
        frames = self.advance_to(ts_ms)
        left_desk = self.book.set_terms(account, equity, desk, maintenance_rate)
        self._changed(account, self.book.desk_of(account), ts_ms, "equity")
        if left_desk:
            self._mark((None, left_desk), ts_ms, "equity")
        return frames

    def on_message(self, message: Price | Position | Account, ts_ms: int) -> list[Frame]:
        """Apply one validated input message observed at ``ts_ms`` (epoch ms)."""
        if isinstance(message, Price):
            return self.on_price(message.symbol, ts_ms, message.price)
        if isinstance(message, Position):
            return self.on_position(message.account, message.symbol, ts_ms, message.qty,
                                    message.strategy, message.conviction)
        return self.on_account(message.account, ts_ms, message.equity, message.desk,
                               message.maintenance_rate)

    def quiet_until_ms(self) -> int | None:
        """The latest event time (epoch ms) an event may have and still close no bar and
        emit no frame before it is applied: the next bar boundary or the earliest pending
        change frame's due time, whichever comes first. None before the first price (it
        sets where bars close)."""
        boundary_ms = self.market.next_boundary_ms
        if boundary_ms is None:
            return None
        return min(boundary_ms, self._due[0][0]) if self._due else boundary_ms

    def on_quiet_prices(self, prices: Sequence[Price], ts_ms: Sequence[int]) -> None:
        """Apply a run of prices that close no bar and emit no frame in between, as
        :meth:`on_price` one by one would, but only the one of each symbol that stays in
        effect: no frame can see the others.

        ``prices`` and ``ts_ms`` (epoch ms, each at or before :meth:`quiet_until_ms`):
        the run in applied order, every symbol already priced before. Raises ValueError
        when a price is not quiet or names a new symbol (a new symbol takes a slot in
        first-seen order, so it goes through :meth:`on_price`).
        """
        if not prices:
            return
        quiet_ms, newest_ms = self.quiet_until_ms(), max(ts_ms)
        if quiet_ms is None or newest_ms > quiet_ms:
            raise ValueError("a price in the run closes a bar or emits a frame first")
        slots = self.market.slots
        # Per symbol, the price a one-by-one application leaves: the last one at the
        # newest time (the market keeps a price unless it is at least as new).
        latest: dict[str, tuple[int, float]] = {}
        for message, price_ms in zip(prices, ts_ms, strict=True):
            kept = latest.get(message.symbol)
            if kept is None or price_ms >= kept[0]:
                latest[message.symbol] = (price_ms, message.price)
        unknown = latest.keys() - slots.keys()
        if unknown:
            raise ValueError(f"symbols never priced before: {sorted(unknown)}")
        self.market.on_prices([slots[symbol] for symbol in latest],
                              [kept[0] for kept in latest.values()],
                              [kept[1] for kept in latest.values()])
        self._last_price_ms = max(newest_ms, self._last_price_ms or newest_ms)

    def advance_to(self, ts_ms: int) -> list[Frame]:
        """Close bars and emit pending frames due strictly before ``ts_ms``, in time order."""
        return list(self.iter_advance(ts_ms))

    def iter_advance(self, ts_ms: int) -> Iterator[Frame]:
        """:meth:`advance_to` as a stream, for callers that write frames as they come
        (a long gap in time closes many bars)."""
        return self._advance(ts_ms, bars_until_ms=ts_ms)

    def finish(self) -> list[Frame]:
        """End of input: close the bars up to the last price and emit what is pending."""
        last_price_ms = self._last_price_ms
        horizon = max([p.due_ms for p in self._pending.values()] + [last_price_ms or 0]) + 1
        return list(self._advance(horizon, bars_until_ms=(last_price_ms or 0) + 1))

    # -- state -------------------------------------------------------------------------------

    def export_state(self) -> ExportedEngine:
        """A copy of the engine's state: call it between two engine calls, never from
        ``on_bar_close`` or while an :meth:`iter_advance` stream is half consumed."""
        return ExportedEngine(
            market=self.market.export_state(), book=self.book.export_state(),
            pending=[PendingFrame(due_ms, sequence, account, desk,
                                  self._pending[(account, desk)].trigger)
                     for due_ms, sequence, (account, desk) in self._due],
            next_sequence=self._next_sequence,
            last_change_frame_ms=dict(self._last_change_frame_ms),
            last_price_ms=self._last_price_ms, clusters=self.clusters.export_state())

    def restore_state(self, state: ExportedEngine) -> None:
        """Take over ``state`` (exported by an engine of the same parameters); only a
        fresh engine, that has seen no event yet, can.

        Raises
        ------
        ValueError
            The engine has seen events, or ``state`` is inconsistent (see
            :meth:`MarketState.restore_state`; a book pending twice, pending frames
            out of heap order).
        """
        if self.market.symbols or self.book.accounts or self._pending:
            raise ValueError("only a fresh engine takes over an exported state")
        self.market.restore_state(state.market)
        self.book.restore_state(state.book)
        for frame in state.pending:
            key = (frame.account, frame.desk)
            if key in self._pending:
                raise ValueError(f"book {key} is pending twice")
            self._pending[key] = _Pending(frame.due_ms, frame.trigger)
            # Heap order is kept as exported: the same list pops in the same order.
            self._due.append((frame.due_ms, frame.sequence, key))
        due = self._due
        if any(due[(i - 1) // 2] > due[i] for i in range(1, len(due))):
            raise ValueError("pending frames are not in heap order")
        self._next_sequence = state.next_sequence
        self._last_change_frame_ms = dict(state.last_change_frame_ms)
        self._last_price_ms = state.last_price_ms
        self.clusters.restore_state(state.clusters)

    # -- scheduling --------------------------------------------------------------------------

    def _changed(self, account: str, desk: str | None, ts_ms: int, trigger: Trigger) -> None:
        self._mark((account, None), ts_ms, trigger)
        if desk:
            self._mark((None, desk), ts_ms, trigger)

    def _mark(self, key: BookKey, ts_ms: int, trigger: Trigger) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            if trigger == "position":  # a position change outranks an equity update
                pending.trigger = trigger
            return
        last = self._last_change_frame_ms.get(key)
        due = ts_ms if last is None else max(ts_ms, last + self._min_change_gap_ms)
        self._pending[key] = _Pending(due, trigger)
        heapq.heappush(self._due, (due, self._next_sequence, key))
        self._next_sequence += 1

    def _advance(self, until_ms: int, bars_until_ms: int) -> Iterator[Frame]:
        while True:
            next_change = self._due[0] if self._due and self._due[0][0] < until_ms else None
            next_bar = self.market.next_boundary_before(bars_until_ms)
            # At equal times the change frame comes first: it sees the bar still open.
            if next_change is not None and (next_bar is None or next_change[0] <= next_bar):
                due_ms, _, key = heapq.heappop(self._due)
                pending = self._pending.pop(key)
                self._last_change_frame_ms[key] = due_ms
                if self._framed(key):
                    yield from self._emitted(self.frames_for(key, due_ms, pending.trigger))
            elif next_bar is not None:
                self.market.close_bar(next_bar)
                if self.on_bar_close is not None:
                    self.on_bar_close(next_bar)
                for account in self.book.accounts:
                    if self._framed((account, None)):
                        yield from self._emitted(self.frames_for((account, None), next_bar,
                                                                 "bar"))
                for desk in self.book.desks:
                    if self._framed((None, desk)):
                        yield from self._emitted(self.frames_for((None, desk), next_bar, "bar"))
            else:
                return

    # -- frames ------------------------------------------------------------------------------

    def _framed(self, key: BookKey) -> bool:
        """Whether this engine frames the book ``key`` (its share; an account's book goes
        with the account's current desk)."""
        share = self.share
        if share is None:
            return True
        account, desk = key
        return share.frames(self.book.desk_of(account) if account is not None else desk)

    def _emitted(self, frames: list[Frame]) -> list[Frame]:
        """Frames about to be emitted: their clusters are what the next frames of their
        books continue (a frame only looked at, :meth:`frames_for`, changes nothing)."""
        for frame in frames:
            self.clusters.remember(frame)
        return frames

    def correlation_snapshots(self, boundary_ms: int) -> list[CorrelationSnapshot]:
        """One snapshot per timeframe (:meth:`correlation_snapshot`) at the bar boundary
        ``boundary_ms`` (ms since the epoch): what a bar close stores."""
        snapshots = []
        for timeframe in self.params.timeframes:
            symbols, rho = self.correlation_snapshot(timeframe)
            snapshots.append(CorrelationSnapshot(
                ts_ms=boundary_ms, timeframe=timeframe,
                params_hash=self.params.params_hash(timeframe), symbols=symbols,
                rho=rho.tolist()))
        return snapshots

    def correlation_snapshot(self, timeframe: str) -> tuple[list[str], np.ndarray]:
        """Symbols of the universe (sorted) and their correlations, upper triangle row by row.

        Sorted, not in slot (first-seen) order, so a snapshot does not depend on
        which symbol happened to price first.

        Returns
        -------
        symbols : list[str], length k, sorted
        rho : ndarray, shape (k (k - 1) / 2,)
        """
        symbols = sorted(self.market.symbols)
        slots = np.array([self.market.slots[symbol] for symbol in symbols], dtype=np.int64)
        matrix = self.market.correlation(timeframe, slots)
        return symbols, matrix[np.triu_indices(len(slots), 1)]

    def snapshot(self, key: BookKey, ts_ms: int,
                 trigger: Trigger) -> tuple[BookSnapshot, np.ndarray] | None:
        """The book's holdings at current prices and their market slots.

        None when the book holds positions without positive equity (shares are
        undefined, no frame is made). A book that holds nothing always gets a
        frame, so a book going flat publishes that and its alerts resolve.
        """
        account, desk = key
        if account is not None:
            members = [account]
        elif desk is not None:
            members = self.book.members(desk)
        else:
            raise ValueError("a book key names an account or a desk")
        holdings = self.book.holdings(members, self.params.zero_tol)
        return book_snapshot(holdings, self.market, account=account,
                             desk=desk if account is None else self.book.desk_of(account),
                             ts_ms=ts_ms, trigger=trigger)

    def frames_for(self, key: BookKey, ts_ms: int, trigger: Trigger) -> list[Frame]:
        """One frame per timeframe for the book ``key`` as of now, stamped ``ts_ms``;
        its clusters keep the names of the book's latest emitted frames. Reads only."""
        taken = self.snapshot(key, ts_ms, trigger)
        if taken is None:
            return []
        book, slots = taken
        return book_frames(book, slots, self.market, self.params, self.params.timeframes,
                           self._echo, self.clusters)
