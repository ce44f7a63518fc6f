"""The live heat page: one static HTML page, its script and style, served by the
processor's web server at ``/`` and ``/live`` (assets under ``/static/``).

The page reads only the JSON API (``/v1/books``, ``/v1/frames/latest``, ``/v1/stream``);
nothing here computes heat. Asset URLs carry a hash of their content, so a browser
never runs an old script against a new page.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import faust
from faust.web import Request, Response, View

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


def add_live_page(app: faust.App) -> None:
    """Serve the live page at ``/`` and ``/live`` and its assets under ``/static/``."""
    html = page_html()

    for path in PAGE_PATHS:
        # A class per path: Faust keeps the path on the view class.
        class LivePage(View):
            async def get(self, request: Request) -> Response:
                return self.html(html, headers=dict(PAGE_HEADERS))

        app.page(path, name=f"live-page{path.replace('/', '-')}")(LivePage)
    app.web.add_static(STATIC_PREFIX, STATIC_DIR)
