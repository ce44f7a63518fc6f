"""The bot API's handlers as plain aiohttp routes, so tests serve them without Faust
(the product mounts them on a Faust worker's web server: ``add_bot_api``), and a worker
of the sample books to serve."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import BaseRunner, TestClient, TestServer

from heatmap.engine.alerts import AlertMonitor
from heatmap.web.access import Access, Limits
from heatmap.web.api import BotApi, Handler, Routing, answer
from heatmap.web.api import routes as api_routes
from heatmap.web.live import LiveView
from heatmap.web.tokens import TokenStore
from support.api_tokens import ApiTokens, api_tokens
from support.sample_books import sample_engine


def routes(api: BotApi) -> list[web.RouteDef]:
    """The ``/v1`` handlers of ``api`` as aiohttp routes, errors answered as the product
    answers them."""

    def wrapped(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            return await answer(handler, request)
        return run

    return [web.route(method.upper(), path, wrapped(handler))
            for path, method, handler in api_routes(api)]


class ProcessorLikeServer(TestServer):
    """A test server that runs handlers as the processor's web server does: a handler is
    not cancelled when its client disconnects (aiohttp's test server cancels it), so a
    stream must notice a departed client by itself."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


class Worker:
    """A LiveView fed by the sample engine, the API on it, who holds the lease, and the
    tokens it accepts (:data:`support.api_tokens.STANDARD`)."""

    def __init__(self, tokens_dir: Path | None = None, limits: Limits | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.engine, self.ts_ms = sample_engine()
        self.view = LiveView() if clock is None else LiveView(clock=clock)
        self.holds_lease = True
        self.active_url: str | None = "http://127.0.0.1:1"
        self.view.stepped(self.engine, AlertMonitor().thresholds)
        self.view.committed(self.engine.frames_for(("a1", None), self.ts_ms, "position"))
        # Removed with the worker, unless the test gives a folder of its own.
        self._folder = tempfile.TemporaryDirectory(prefix="heat-api-tokens-")
        self.tokens: ApiTokens = api_tokens(tokens_dir or Path(self._folder.name))
        self.store = TokenStore(self.tokens.path) if clock is None else TokenStore(
            self.tokens.path, clock=clock)
        self.store.load()
        self.access = Access(self.store, limits or Limits(), **(
            {} if clock is None else {"clock": clock}))

    def api(self) -> BotApi:
        return BotApi(self.view, Routing(lambda: self.holds_lease, lambda: self.active_url,
                                         "http://127.0.0.1:2"), self.access)


def serve(worker: Worker, scenario: Callable[[TestClient], Awaitable[None]],
          token: str | None = "all") -> None:  # noqa: S107 - a name in the tokens file
    """Run ``scenario`` with a client sending the named token (None: no header)."""
    async def run() -> None:
        app = web.Application()
        app.add_routes(routes(worker.api()))
        headers = {} if token is None else worker.tokens.header(token)
        async with TestClient(ProcessorLikeServer(app), headers=headers) as client:
            await scenario(client)

    asyncio.run(run())
