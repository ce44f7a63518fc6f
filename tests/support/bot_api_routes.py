"""The bot API's handlers as plain aiohttp routes, so tests serve them without Faust
(the product mounts them on a Faust worker's web server: ``add_bot_api``)."""

from __future__ import annotations

from aiohttp import web

from heatmap.web.api import BotApi, Handler, answer
from heatmap.web.api import routes as api_routes


def routes(api: BotApi) -> list[web.RouteDef]:
    """The ``/v1`` handlers of ``api`` as aiohttp routes, errors answered as the product
    answers them."""

    def wrapped(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            return await answer(handler, request)
        return run

    return [web.route(method.upper(), path, wrapped(handler))
            for path, method, handler in api_routes(api)]
