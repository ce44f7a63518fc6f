"""The bot API (``/v1/...``), JSON, on :class:`heatmap.web.live.LiveView`. Thin: check
the token, parse, route to the worker running the engine, read the facade, encode.

- ``GET /v1/books``: books with a committed frame and their timeframes;
- ``GET /v1/frames/latest?account=A|desk=D&timeframe=1h``: the latest committed frame;
- ``GET /v1/alerts?account=A|desk=D&timeframe=1h``: the book's firing alerts (a list);
- ``GET /v1/stream?account=A|desk=D&timeframe=1h``: server-sent events, ``event: frame``
  per committed frame (the latest first), ``event: alert`` per committed alert
  transition, a comment line every ``HEARTBEAT_S``;
- ``POST /v1/stream/ticket``: a single-use ticket that opens one stream with
  ``&ticket=`` in place of the header (a browser's EventSource cannot send one);
- ``POST /v1/whatif``: :class:`heatmap.schema.WhatIfRequest` in,
  :class:`heatmap.schema.WhatIf` out.

Every route needs ``Authorization: Bearer <token>`` (:mod:`heatmap.web.access`): 401
without a valid one, 403 outside its scopes (``read`` for all routes but what-if,
``whatif`` for it). A book of a desk the token may not see is answered exactly as an
unknown book, and is left out of the books and of every stream. A worker that does not
run the engine answers ``307`` to the one that does (same path and query; method and
body are kept), or ``503`` while none does. Errors are JSON ``{"error": reason}``: 400
malformed, 401/403 as above, 404 unknown book, timeframe or symbol, 422 a request that
is well-formed but wrong (types, NaN, absurd sizes), 429 past a limit of the token, 503
no engine live.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import faust
import msgspec
from aiohttp import web
from faust.web import View

from heatmap.engine.whatif import WhatIfError
from heatmap.schema import NAME_RULE, BookKind, WhatIfRequest, valid_name
from heatmap.web.access import Access
from heatmap.web.errors import ApiError
from heatmap.web.live import EngineNotLive, Latest, LiveView, Pushed
from heatmap.web.tokens import Scope, TokenRecord

__all__ = ["ApiError", "BotApi", "Handler", "Routing", "add_bot_api", "answer"]

HEARTBEAT_S = 10.0
# How often an idle stream looks whether its client left: the server learns of a closed
# connection only then, and the token's stream slot is held until it does (a reloaded
# page would otherwise find its slots taken by its own dead streams).
CLIENT_CHECK_S = 1.0
JSON = "application/json"
_ENCODER = msgspec.json.Encoder()
_REQUEST = msgspec.json.Decoder(WhatIfRequest)


@dataclass(frozen=True)
class Routing:
    """Where the engine runs: whether this worker holds the lease, and the URL of the
    worker that does (None when no worker is known to)."""

    holds_lease: Callable[[], bool]
    active_url: Callable[[], str | None]
    own_url: str


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def server_sent(item: Pushed) -> bytes:
    """One server-sent event: the item's event name and its JSON."""
    return b"event: " + item.event + b"\ndata: " + item.json + b"\n\n"


def error_response(error: ApiError) -> web.Response:
    return json_response(_ENCODER.encode({"error": str(error)}), error.status, error.headers)


def _no_frame(kind: BookKind, book: str, timeframe: str) -> ApiError:
    """The answer about a book without a frame, or one the token may not see: the same
    words, so the two cannot be told apart."""
    return ApiError(404, f"no committed {timeframe} frame of {kind} {book!r} (unknown "
                         "book, or none since this engine started: frames come at every "
                         "bar close and position change)")


def sees_book(record: TokenRecord, kind: BookKind, book: str, latest: Latest | None) -> bool:
    """Whether the token may see the book: a desk by its name, an account by the desk of
    its latest frame (an account without one yet is not shown to desk-bound tokens)."""
    if record.desks is None:
        return True
    if kind == "desk":
        return record.sees(book)
    return latest is not None and record.sees(latest.message.desk)


def visible_books(books: dict[str, object], record: TokenRecord) -> dict[str, object]:
    """``/v1/books`` as the token may see it."""
    if record.desks is None:
        return books
    accounts = cast(list[dict[str, Any]], books["accounts"])
    desks = cast(list[dict[str, Any]], books["desks"])
    return {**books, "accounts": [entry for entry in accounts if record.sees(entry["desk"])],
            "desks": [entry for entry in desks if record.sees(entry["desk"])]}


class BotApi:
    """The ``/v1`` handlers (aiohttp request in, response out)."""

    def __init__(self, view: LiveView, routing: Routing, access: Access) -> None:
        self.view = view
        self.routing = routing
        self.access = access

    def _token(self, request: web.Request, scope: Scope) -> TokenRecord:
        """The request's token, allowed ``scope`` (ApiError 401 / 403 otherwise)."""
        record = self.access.authenticate(request.headers.get("Authorization"))
        self.access.require(record, scope)
        return record

    def _here(self, request: web.Request) -> None:
        """Raise the redirect or 503 unless the engine runs live in this worker."""
        if self.routing.holds_lease():
            if not self.view.live:
                raise ApiError(503, "the engine is starting (recovering its state); "
                                    "retry in a few seconds")
            return
        url = self.routing.active_url()
        if url is None or url.rstrip("/") == self.routing.own_url.rstrip("/"):
            raise ApiError(503, "no worker runs the engine right now (a takeover is under "
                                "way); retry in a few seconds")
        raise ApiError(307, f"the engine runs on {url}",
                       {"Location": url.rstrip("/") + request.path_qs})

    def _book(self, request: web.Request) -> tuple[BookKind, str, str]:
        """(kind, book, timeframe) from ``account=`` or ``desk=`` and ``timeframe=``."""
        query = request.query
        account, desk = query.get("account"), query.get("desk")
        if (account is None) == (desk is None):
            raise ApiError(400, "give exactly one of account= or desk=")
        name = cast(str, account if account is not None else desk)
        if not valid_name(name):
            raise ApiError(400, f"{'account' if account is not None else 'desk'} must be "
                                f"{NAME_RULE}")
        timeframes = self.view.timeframes
        timeframe = query.get("timeframe") or (timeframes[0] if timeframes else "")
        if timeframe not in timeframes:
            raise ApiError(404, f"unknown timeframe {timeframe!r}; the engine's are "
                                + ", ".join(timeframes))
        return ("account" if account is not None else "desk"), name, timeframe

    def _visible_latest(self, request: web.Request, record: TokenRecord
                        ) -> tuple[BookKind, str, str, Latest]:
        """The requested book's latest frame, 404 when none or not the token's to see."""
        kind, book, timeframe = self._book(request)
        latest = self.view.latest(kind, book, timeframe)
        if latest is None or not sees_book(record, kind, book, latest):
            raise _no_frame(kind, book, timeframe)
        return kind, book, timeframe, latest

    async def books(self, request: web.Request) -> web.StreamResponse:
        record = self._token(request, "read")
        self._here(request)
        return json_response(_ENCODER.encode(visible_books(self.view.books(), record)))

    async def latest_frame(self, request: web.Request) -> web.StreamResponse:
        record = self._token(request, "read")
        self._here(request)
        return json_response(self._visible_latest(request, record)[3].json)

    async def alerts(self, request: web.Request) -> web.StreamResponse:
        record = self._token(request, "read")
        self._here(request)
        kind, book, timeframe, _ = self._visible_latest(request, record)
        return json_response(_ENCODER.encode(self.view.firing(kind, book, timeframe)))

    async def stream_ticket(self, request: web.Request) -> web.StreamResponse:
        record = self._token(request, "read")
        self._here(request)  # a ticket is good only on the worker that issued it
        ticket = self.access.issue_ticket(record)
        return json_response(_ENCODER.encode({
            "ticket": ticket, "expires_in_s": self.access.limits.ticket_ttl_s}),
            headers={"Cache-Control": "no-store"})

    def _stream_token(self, request: web.Request) -> TokenRecord:
        """The header's token, or the one a ``ticket=`` stands for (used up here)."""
        ticket = request.query.get("ticket")
        if ticket is None or request.headers.get("Authorization"):
            record = self._token(request, "read")
            self._here(request)
            return record
        # Routed first: a standby passes the ticket on unused to the worker that issued it.
        self._here(request)
        record = self.access.redeem_ticket(ticket)
        self.access.require(record, "read")
        return record

    async def stream(self, request: web.Request) -> web.StreamResponse:
        record = self._stream_token(request)
        kind, book, timeframe = self._book(request)
        with self.access.stream_slot(record):
            return await self._serve_stream(request, record, (kind, book, timeframe))

    async def _serve_stream(self, request: web.Request, record: TokenRecord,
                            key: tuple[BookKind, str, str]) -> web.StreamResponse:
        """Send the book's events until the client leaves, stops reading, the token is
        revoked or the engine moves. A book the token may not see streams like an unknown
        one: heartbeats only."""
        stall_timeout_s = self.access.limits.stream_stall_timeout_s
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"})
        stalled = asyncio.Event()

        def close() -> None:  # the view closes a subscriber whose queue stayed full
            stalled.set()
            if request.transport is not None:
                request.transport.close()  # a pending write fails at once

        async def send(data: bytes) -> None:
            # A client that stopped reading blocks the write: bounded, then dropped.
            await asyncio.wait_for(response.write(data), stall_timeout_s)

        def visible(pushed: Pushed) -> bool:
            desk = pushed.message.desk
            return record.desks is None or (desk is not None and record.sees(desk))

        def client_left() -> bool:
            transport = request.transport
            return transport is None or transport.is_closing()

        loop = asyncio.get_running_loop()
        with self.view.subscribe(*key, on_close=close) as queue:
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError, TimeoutError):
                latest = self.view.latest(*key)
                if latest is not None and visible(latest):
                    await send(server_sent(latest))
                sent_s = loop.time()
                while not stalled.is_set():
                    try:
                        pushed = await asyncio.wait_for(queue.get(),
                                                        min(CLIENT_CHECK_S, HEARTBEAT_S))
                    except TimeoutError:
                        if client_left():
                            break
                        if loop.time() - sent_s < HEARTBEAT_S:
                            continue
                        if not self.routing.holds_lease():
                            break  # the engine moved: the client reconnects and is redirected
                        if not self.access.current(record):
                            break  # revoked: the next connection is refused
                        await send(b": heartbeat\n\n")
                        sent_s = loop.time()
                        continue
                    if not self.access.current(record):
                        break
                    if visible(pushed):
                        await send(server_sent(pushed))
                        sent_s = loop.time()
        return response

    async def what_if(self, request: web.Request) -> web.StreamResponse:
        record = self._token(request, "whatif")
        self._here(request)
        self.access.take_what_if(record)
        body = await request.read()
        try:
            asked = _REQUEST.decode(body)
        except msgspec.ValidationError as error:
            raise ApiError(422, f"invalid what-if: {error}") from error
        except msgspec.DecodeError as error:
            raise ApiError(400, f"malformed JSON: {error}") from error
        try:
            answer = self.view.what_if(asked, sees=record.sees)
        except WhatIfError as error:
            raise ApiError(404 if error.not_found else 422, str(error)) from error
        except EngineNotLive as error:
            raise ApiError(503, f"{error}; retry in a few seconds") from error
        return json_response(_ENCODER.encode(answer))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def answer(handler: Handler, request: web.Request) -> web.StreamResponse:
    """``handler``'s response, or the JSON error it raised."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)


def routes(api: BotApi) -> list[tuple[str, str, Handler]]:
    """(path, method, handler) of every ``/v1`` route."""
    return [("/v1/books", "get", api.books),
            ("/v1/frames/latest", "get", api.latest_frame),
            ("/v1/alerts", "get", api.alerts),
            ("/v1/stream", "get", api.stream),
            ("/v1/stream/ticket", "post", api.stream_ticket),
            ("/v1/whatif", "post", api.what_if)]


def add_bot_api(app: faust.App, api: BotApi) -> None:
    """Register the ``/v1`` views on ``app``'s web server."""

    def page(path: str, method: str, handler: Handler) -> None:
        async def run(self: View, request: Any) -> web.StreamResponse:
            return await answer(handler, request)

        app.page(path)(type(f"V1{handler.__name__.title().replace('_', '')}", (View,),
                            {method: run}))

    for path, method, handler in routes(api):
        page(path, method, handler)
