"""The web views every Faust worker of the product serves: ``/metrics`` and ``/health``."""

from __future__ import annotations

from collections.abc import Callable

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Health = Callable[[], tuple[bool, dict[str, object]]]


def add_metrics_and_health(app: faust.App, health: Health) -> None:
    """``/metrics`` (Prometheus text format) and ``/health`` (JSON; 503 when ``health``
    says unhealthy) on ``app``'s web server."""

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # aiohttp takes the charset apart from the content type.
            return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0]
                              + "; version=0.0.4")

    @app.page("/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            ok, details = health()
            return self.json({"status": "ok" if ok else "unhealthy", **details},
                             status=200 if ok else 503)
