"""The bot API (``/v1/...``), JSON, on :class:`heatmap.web.live.LiveView`. Thin: parse,
route to the worker running the engine, read the facade, encode.

- ``GET /v1/books``: books with a committed frame and their timeframes;
- ``GET /v1/frames/latest?account=A|desk=D&timeframe=1h``: the latest committed frame;
- ``GET /v1/alerts?account=A|desk=D&timeframe=1h``: the book's firing alerts (a list);
- ``GET /v1/stream?account=A|desk=D&timeframe=1h``: server-sent events, ``event: frame``
  per committed frame (the latest first), ``event: alert`` per committed alert
  transition, a comment line every ``HEARTBEAT_S``;
- ``POST /v1/whatif``: :class:`heatmap.schema.WhatIfRequest` in,
  :class:`heatmap.schema.WhatIf` out.

A worker that does not run the engine answers ``307`` to the one that does (same path
and query; method and body are kept), or ``503`` while none does. Errors are JSON
``{"error": reason}``: 400 malformed, 404 unknown book, timeframe or symbol, 422 a
request that is well-formed but wrong (types, NaN, absurd sizes), 503 no engine live.
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
from heatmap.web.live import EngineNotLive, LiveView, Pushed

HEARTBEAT_S = 10.0
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


class ApiError(Exception):
    """An answer other than 200: status and reason (and headers, for a redirect)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.headers = headers or {}


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def server_sent(item: Pushed) -> bytes:
    """One server-sent event: the item's event name and its JSON."""
    return b"event: " + item.event + b"\ndata: " + item.json + b"\n\n"


def error_response(error: ApiError) -> web.Response:
    return json_response(_ENCODER.encode({"error": str(error)}), error.status, error.headers)


class BotApi:
    """The ``/v1`` handlers (aiohttp request in, response out)."""

    def __init__(self, view: LiveView, routing: Routing) -> None:
        self.view = view
        self.routing = routing

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

    async def books(self, request: web.Request) -> web.StreamResponse:
        self._here(request)
        return json_response(_ENCODER.encode(self.view.books()))

    async def latest_frame(self, request: web.Request) -> web.StreamResponse:
        self._here(request)
        kind, book, timeframe = self._book(request)
        latest = self.view.latest(kind, book, timeframe)
        if latest is None:
            raise ApiError(404, f"no committed {timeframe} frame of {kind} {book!r} (unknown "
                                "book, or none since this engine started: frames come at "
                                "every bar close and position change)")
        return json_response(latest.json)

    async def alerts(self, request: web.Request) -> web.StreamResponse:
        self._here(request)
        kind, book, timeframe = self._book(request)
        if self.view.latest(kind, book, timeframe) is None:
            raise ApiError(404, f"no committed {timeframe} frame of {kind} {book!r} (unknown "
                                "book, or none since this engine started)")
        return json_response(_ENCODER.encode(self.view.firing(kind, book, timeframe)))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self._here(request)
        kind, book, timeframe = self._book(request)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"})
        with self.view.subscribe(kind, book, timeframe) as queue:
            await response.prepare(request)
            latest = self.view.latest(kind, book, timeframe)
            if latest is not None:
                await response.write(server_sent(latest))
            with contextlib.suppress(ConnectionResetError):
                while True:
                    try:
                        pushed = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                    except TimeoutError:
                        if not self.routing.holds_lease():
                            break  # the engine moved: the client reconnects and is redirected
                        await response.write(b": heartbeat\n\n")
                        continue
                    await response.write(server_sent(pushed))
        return response

    async def what_if(self, request: web.Request) -> web.StreamResponse:
        self._here(request)
        body = await request.read()
        try:
            asked = _REQUEST.decode(body)
        except msgspec.ValidationError as error:
            raise ApiError(422, f"invalid what-if: {error}") from error
        except msgspec.DecodeError as error:
            raise ApiError(400, f"malformed JSON: {error}") from error
        try:
            answer = self.view.what_if(asked)
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


def add_bot_api(app: faust.App, api: BotApi) -> None:
    """Register the ``/v1`` views on ``app``'s web server."""

    def page(path: str, method: str, handler: Handler) -> None:
        async def run(self: View, request: Any) -> web.StreamResponse:
            return await answer(handler, request)

        app.page(path)(type(f"V1{handler.__name__.title().replace('_', '')}", (View,),
                            {method: run}))

    page("/v1/books", "get", api.books)
    page("/v1/frames/latest", "get", api.latest_frame)
    page("/v1/alerts", "get", api.alerts)
    page("/v1/stream", "get", api.stream)
    page("/v1/whatif", "post", api.what_if)
