"""The read-only facade the web views read the active engine through.

The active engine (:class:`heatmap.process.active.ActiveEngine`) feeds it from the
event loop, at two moments when the engine thread is idle:

- :meth:`LiveView.committed` after an epoch's transaction committed: its frames
  become the latest per (book kind, book, timeframe), its alert transitions update
  the firing alerts of their book (a resolved one leaves), and both go to
  subscribers (nothing is shown before its transaction committed);
- :meth:`LiveView.stepped` right after each engine step: a what-if copy of the
  market (prices every step; correlations, volatilities and warm-up flags once per
  bar) and of the position book (only when it changed).

Views only read: :meth:`latest`, :meth:`firing`, :meth:`books`, :meth:`subscribe`
and :meth:`what_if`, which runs the pure what-if on the copies, never on the engine.
Everything here runs on the event loop: no locks.

A subscriber's queue is bounded: a reader that falls behind loses the oldest events,
and one whose queue stays full longer than ``stall_timeout_s`` (a client that stopped
reading) is closed, so a stuck client never holds memory or slows a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import msgspec
import numpy as np

from heatmap.engine.alerts import AlertThresholds
from heatmap.engine.book import PositionBook
from heatmap.engine.engine import HeatEngine
from heatmap.engine.identity import ClusterIdentities
from heatmap.engine.market_view import MarketView, capture_market
from heatmap.engine.params import EngineParams
from heatmap.engine.whatif import Target, WhatIfError, book_frame, target, what_if
from heatmap.schema import Alert, AlertKind, BookKind, Frame, WhatIf, WhatIfRequest

M = TypeVar("M", Frame, Alert)
FrameKey = tuple[BookKind, str, str]  # (book kind, book, timeframe)
AlertSubject = tuple[AlertKind, str]  # (alert kind, subject) within a book and timeframe
# A subscriber this many events behind loses the oldest: a live view wants the newest.
SUBSCRIBER_QUEUE_FRAMES = 16
# A subscriber whose queue stays full this long has stopped reading: it is closed.
STALL_TIMEOUT_S = 10.0
_ENCODER = msgspec.json.Encoder()


class EngineNotLive(RuntimeError):  # noqa: N818 - reads as the state it reports
    """No engine is live in this worker (standby, recovering, or stopped)."""


class Committed(Generic[M]):
    """A committed message (a frame or an alert transition), its server-sent event name
    and its JSON, encoded once on first use."""

    __slots__ = ("_json", "event", "message")

    def __init__(self, event: bytes, message: M) -> None:
        self.event = event
        self.message: M = message
        self._json: bytes | None = None

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = _ENCODER.encode(self.message)
        return self._json


Latest = Committed[Frame]
Pushed = Committed[Frame] | Committed[Alert]  # what a subscriber receives


def frame_key(frame: Frame | Alert) -> FrameKey:
    """The book and timeframe of a frame, or of an alert (the same fields)."""
    if frame.account is not None:
        return ("account", frame.account, frame.timeframe)
    return ("desk", frame.desk or "", frame.timeframe)


class _Subscriber:
    """One subscriber: its bounded queue, since when it is full, and how to close it."""

    __slots__ = ("full_since_s", "on_close", "queue")

    def __init__(self, on_close: Callable[[], None] | None) -> None:
        self.queue: asyncio.Queue[Pushed] = asyncio.Queue(SUBSCRIBER_QUEUE_FRAMES)
        self.full_since_s: float | None = None
        self.on_close = on_close


@dataclass
class _Copies:
    """What what-if runs on: copies taken after one engine step."""

    engine: HeatEngine
    params: EngineParams
    thresholds: Callable[[str | None], AlertThresholds]
    market: MarketView | None = None
    book: PositionBook | None = None
    identities: ClusterIdentities | None = None  # cluster names of the latest frames
    # Before frames already computed on these copies, per (kind, book, timeframe).
    before: dict[FrameKey, Frame] = field(default_factory=dict)


class LiveView:
    """Latest committed frames, subscriptions and what-if copies of one worker's engine."""

    def __init__(self, stall_timeout_s: float = STALL_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_timeout_s = stall_timeout_s
        self._clock = clock
        self._latest: dict[FrameKey, Latest] = {}
        self._books: dict[str, object] | None = None  # /v1/books, rebuilt on a new book
        # The latest firing transition per book and (kind, subject); resolved ones leave.
        self._firing: dict[FrameKey, dict[AlertSubject, Alert]] = {}
        self._subscribers: dict[FrameKey, set[_Subscriber]] = {}
        self._copies: _Copies | None = None

    # -- written by the active engine (event loop, engine thread idle) ----------------------

    def committed(self, frames: Sequence[Frame], alerts: Sequence[Alert] = ()) -> None:
        """An epoch's transaction committed with ``frames`` and ``alerts`` (transitions),
        each in order; subscribers get the frames, then the transitions."""
        for frame in frames:
            key = frame_key(frame)
            latest = Committed(b"frame", frame)
            if self._latest.get(key) is None:
                self._books = None
            self._latest[key] = latest
            self._push(key, latest)
        for alert in alerts:
            key = frame_key(alert)
            subject = (alert.kind, alert.subject)
            if alert.state == "firing":
                self._firing.setdefault(key, {})[subject] = alert
            else:
                firing = self._firing.get(key, {})
                firing.pop(subject, None)
                if not firing:
                    self._firing.pop(key, None)
            self._push(key, Committed(b"alert", alert))

    def _push(self, key: FrameKey, pushed: Pushed) -> None:
        for subscriber in list(self._subscribers.get(key, ())):
            queue = subscriber.queue
            if not queue.full():
                subscriber.full_since_s = None
            else:
                now_s = self._clock()
                if subscriber.full_since_s is None:
                    subscriber.full_since_s = now_s
                elif now_s - subscriber.full_since_s > self.stall_timeout_s:
                    self._close(key, subscriber)
                    continue
                queue.get_nowait()
            queue.put_nowait(pushed)

    def _close(self, key: FrameKey, subscriber: _Subscriber) -> None:
        """Stop feeding a subscriber that stopped reading, and tell its owner."""
        self._discard(key, subscriber)
        if subscriber.on_close is not None:
            subscriber.on_close()

    def _discard(self, key: FrameKey, subscriber: _Subscriber) -> None:
        subscribers = self._subscribers.get(key)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[key]

    def stepped(self, engine: HeatEngine,
                thresholds: Callable[[str | None], AlertThresholds]) -> None:
        """Copy what what-if needs after an engine step (the engine thread is idle).

        Prices are compared and copied (two vectors of the universe); statistics are
        shared per bar (:func:`capture_market`); the book is copied only when it changed.
        """
        copies = self._copies
        if copies is None or copies.engine is not engine:
            copies = self._copies = _Copies(engine, engine.params, thresholds)
        market, previous = engine.market, copies.market
        if (previous is None or previous.bar_ms != market.last_boundary_ms
                or len(previous.symbols) != len(market.symbols)
                or not np.array_equal(previous.last_price, market.last_price)
                or not np.array_equal(previous.last_price_ms, market.last_price_ms)):
            copies.market = capture_market(market, previous)
            copies.before = {}
        if copies.book is None or copies.book.version != engine.book.version:
            copies.book = engine.book.copy()
            copies.before = {}
        # Frames emitted in the step may have renamed clusters (a shallow dict copy).
        copies.identities = engine.clusters.copy()

    def stopped(self) -> None:
        """The engine run ended: what-if stops; the last committed frames stay readable
        until the next engine commits (they were committed, so they stay true)."""
        self._copies = None

    # -- read by the views ------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether an engine runs here and has stepped since it (re)started."""
        return self._copies is not None and self._copies.market is not None

    @property
    def timeframes(self) -> list[str]:
        return [] if self._copies is None else list(self._copies.params.timeframes)

    def latest(self, kind: BookKind, book: str, timeframe: str) -> Latest | None:
        """The latest committed frame of the book and timeframe, if any."""
        return self._latest.get((kind, book, timeframe))

    def firing(self, kind: BookKind, book: str, timeframe: str) -> list[Alert]:
        """The book's firing alerts in the timeframe (the latest firing transition of each
        kind and subject), critical first, then by kind and subject."""
        firing = self._firing.get((kind, book, timeframe), {})
        return sorted(firing.values(), key=lambda alert: (alert.severity != "critical",
                                                          alert.kind, alert.subject))

    def books(self) -> dict[str, object]:
        """Books with a committed frame and their timeframes (``GET /v1/books``)."""
        if self._books is None:
            accounts: dict[str, dict[str, object]] = {}
            desks: dict[str, dict[str, object]] = {}
            for (kind, book, timeframe), latest in sorted(self._latest.items()):
                if kind == "account":
                    entry = accounts.setdefault(book, {"account": book, "desk": None,
                                                       "timeframes": []})
                    entry["desk"] = latest.message.desk
                else:
                    entry = desks.setdefault(book, {"desk": book, "timeframes": []})
                timeframes = entry["timeframes"]
                assert isinstance(timeframes, list)
                timeframes.append(timeframe)
            self._books = {"accounts": list(accounts.values()), "desks": list(desks.values())}
        return {**self._books, "timeframes": self.timeframes}

    @contextlib.contextmanager
    def subscribe(self, kind: BookKind, book: str, timeframe: str,
                  on_close: Callable[[], None] | None = None
                  ) -> Iterator[asyncio.Queue[Pushed]]:
        """A queue receiving every frame and alert transition of the book and timeframe
        committed from now on (the newest :data:`SUBSCRIBER_QUEUE_FRAMES` when the reader
        falls behind). When it stays full longer than ``stall_timeout_s``, it receives
        nothing more and ``on_close`` is called (the owner ends its stream)."""
        subscriber = _Subscriber(on_close)
        key = (kind, book, timeframe)
        self._subscribers.setdefault(key, set()).add(subscriber)
        try:
            yield subscriber.queue
        finally:
            self._discard(key, subscriber)

    @property
    def subscribers(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())

    def what_if(self, request: WhatIfRequest,
                sees: Callable[[str | None], bool] | None = None) -> WhatIf:
        """The book's frame before and after the request's orders, on the latest copies.

        ``sees(desk)`` says whether the caller may see books of that desk: a book it may
        not see is refused exactly as an unknown one. Raises EngineNotLive, or
        WhatIfError for what the request gets wrong.
        """
        copies = self._copies
        if copies is None or copies.market is None or copies.book is None:
            raise EngineNotLive("no engine is live in this worker")
        market, book, params = copies.market, copies.book, copies.params
        ts_ms = market.ts_ms
        if ts_ms is None:
            raise EngineNotLive("the engine has no prices yet")
        timeframe = request.timeframe or params.fast_timeframe
        if timeframe not in params.timeframes:
            raise WhatIfError(f"unknown timeframe {timeframe!r}; the engine's are "
                              + ", ".join(params.timeframes), not_found=True)
        # A desk the caller may not see is refused before anything is said of its members,
        # in the very words target() uses for a book it does not know.
        if sees is not None and request.desk is not None and not sees(request.desk):
            raise WhatIfError(f"unknown desk {request.desk!r}", not_found=True)
        chosen: Target = target(book, request.account, request.desk)
        if sees is not None and not sees(chosen.desk):
            raise WhatIfError(f"unknown account {request.account!r}", not_found=True)
        key: FrameKey = (chosen.book_kind, chosen.book, timeframe)
        before = copies.before.get(key)
        if before is None:
            before = copies.before[key] = book_frame(book, chosen, market, params, timeframe,
                                                     ts_ms, copies.identities)
        return what_if(market, book, params, account=request.account, desk=request.desk,
                       timeframe=timeframe, orders=request.orders, ts_ms=ts_ms,
                       thresholds=copies.thresholds(chosen.desk), before=before,
                       identities=copies.identities)
