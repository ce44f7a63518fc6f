"""The live heat page: one static HTML page, its script and style, served by the
processor's web server at ``/`` and ``/live`` (assets under ``/static/``).

The page reads only the JSON API (``/v1/books``, ``/v1/frames/latest``, ``/v1/alerts``,
``/v1/stream``) of the worker that serves it; nothing here computes heat or alerts. Asset
URLs carry a hash of their content, so a browser never runs an old script against a new
page.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import faust
from faust.web import Request, Response, View

from heatmap.web.api import Routing

STATIC_DIR = Path(__file__).with_name("static")
PAGE_PATHS = ("/", "/live")
STATIC_PREFIX = "/static/"
ASSETS = ("live.js", "live.css")

# Scripts and styles only from this server: even a name that slipped into markup could
# not run. Inline styles are allowed for the bars' computed widths and colours.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' "
                               "'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def assets_version(static_dir: Path = STATIC_DIR) -> str:
    """A short hash of the page's assets (hex), to bust browser caches on change."""
    digest = hashlib.sha256()
    for name in ASSETS:
        digest.update((static_dir / name).read_bytes())
    return digest.hexdigest()[:12]


def page_html(static_dir: Path = STATIC_DIR) -> str:
    """The page's HTML with versioned asset URLs."""
    template = (static_dir / "live.html").read_text(encoding="utf-8")
    return template.replace("{{version}}", assets_version(static_dir))


def add_live_page(app: faust.App, routing: Routing | None = None) -> None:
    """Serve the live page at ``/`` and ``/live`` and its assets under ``/static/``.

    With ``routing``, a worker that does not run the engine redirects the page to the one
    that does: the page reads the API from its own origin only.
    """
    html = page_html()

    def engine_elsewhere(request: Request) -> str | None:
        """The page's address on the worker running the engine, when not this one."""
        if routing is None or routing.holds_lease():
            return None
        url = routing.active_url()
        if url is None or url.rstrip("/") == routing.own_url.rstrip("/"):
            return None  # no engine anywhere yet: the page waits and retries
        return url.rstrip("/") + str(request.rel_url)  # still percent-encoded

    for path in PAGE_PATHS:
        # A class per path: Faust keeps the path on the view class.
        class LivePage(View):
            async def get(self, request: Request) -> Response:
                location = engine_elsewhere(request)
                if location is not None:
                    return self.text(f"the engine runs on {location}", status=307,
                                     headers={"Location": location})
                return self.html(html, headers=dict(PAGE_HEADERS))

        app.page(path, name=f"live-page{path.replace('/', '-')}")(LivePage)
    app.web.add_static(STATIC_PREFIX, STATIC_DIR)
