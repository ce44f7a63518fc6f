"""The bot API's handlers as plain aiohttp routes, so tests serve them without Faust
(the product mounts them on a Faust worker's web server: ``add_bot_api``)."""

from __future__ import annotations

from aiohttp import web

from heatmap.web.api import BotApi, Handler, answer


def routes(api: BotApi) -> list[web.RouteDef]:
    """The ``/v1`` handlers of ``api`` as aiohttp routes, errors answered as the product
    answers them."""

    def wrapped(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            return await answer(handler, request)
        return run

    return [web.get("/v1/books", wrapped(api.books)),
            web.get("/v1/frames/latest", wrapped(api.latest_frame)),
            web.get("/v1/alerts", wrapped(api.alerts)),
            web.get("/v1/stream", wrapped(api.stream)),
            web.post("/v1/whatif", wrapped(api.what_if))]
