"""The live page as the processor's web server serves it: routes, headers, versioned
assets, and a script that never turns data into markup."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer

from heatmap.web import page
from heatmap.web.api import Routing

SCRIPT = (page.STATIC_DIR / "live.js").read_text(encoding="utf-8")


def served(path: str, routing: Routing | None = None) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of a GET of ``path`` on a Faust app with the live page."""
    app = faust.App("live-page-test", autodiscover=False, store="memory://")
    page.add_live_page(app, routing)

    async def get() -> tuple[int, dict[str, str], str]:
        async with TestClient(TestServer(app.web.web_app)) as client:
            response = await client.get(path, allow_redirects=False)
            return response.status, dict(response.headers), await response.text()

    return asyncio.run(get())


@pytest.mark.parametrize("path", page.PAGE_PATHS)
def test_the_page_is_served_with_a_strict_content_policy(path: str) -> None:
    status, headers, body = served(path)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert headers["Cache-Control"] == "no-store"
    version = page.assets_version()
    assert f'src="/static/live.js?v={version}"' in body
    assert f'href="/static/live.css?v={version}"' in body
    assert "<script>" not in body  # no inline script: the policy would refuse it anyway


OWN_URL = "http://127.0.0.1:9403"
ACTIVE_URL = "http://127.0.0.1:9402"


def test_a_standby_sends_the_page_to_the_worker_running_the_engine() -> None:
    standby = Routing(holds_lease=lambda: False, active_url=lambda: ACTIVE_URL, own_url=OWN_URL)
    status, headers, _ = served("/live?desk=%E4%BA%9A&timeframe=1h", standby)
    assert status == 307
    assert headers["Location"] == f"{ACTIVE_URL}/live?desk=%E4%BA%9A&timeframe=1h"


@pytest.mark.parametrize("routing", [
    Routing(holds_lease=lambda: True, active_url=lambda: OWN_URL, own_url=OWN_URL),
    Routing(holds_lease=lambda: False, active_url=lambda: None, own_url=OWN_URL),
    Routing(holds_lease=lambda: False, active_url=lambda: OWN_URL + "/", own_url=OWN_URL),
], ids=["active", "no-engine-anywhere", "lease-not-yet-seen-here"])
def test_the_page_is_served_here_otherwise(routing: Routing) -> None:
    status, _, body = served("/live", routing)
    assert status == 200 and "live.js" in body


@pytest.mark.parametrize("asset", page.ASSETS)
def test_assets_are_served_from_static(asset: str) -> None:
    status, headers, body = served(f"/static/{asset}?v={page.assets_version()}")
    assert status == 200
    assert body == (page.STATIC_DIR / asset).read_text(encoding="utf-8")
    assert headers["Content-Type"].split(";")[0] in ("text/javascript", "application/javascript",
                                                      "text/css")


def test_the_version_follows_the_assets(tmp_path: Path) -> None:
    for name in ("live.html", *page.ASSETS):
        (tmp_path / name).write_bytes((page.STATIC_DIR / name).read_bytes())
    before = page.assets_version(tmp_path)
    (tmp_path / "live.css").write_text("body { color: red; }")
    assert page.assets_version(tmp_path) != before
    assert re.search(r"live\.js\?v=[0-9a-f]{12}\"", page.page_html(tmp_path))


@pytest.mark.parametrize("sink", ["innerHTML", "outerHTML", "insertAdjacentHTML",
                                  "document.write", "eval(", "new Function"])
def test_the_script_never_parses_data_as_markup(sink: str) -> None:
    assert sink not in SCRIPT


def test_the_page_reads_only_the_documented_api() -> None:
    paths = set(re.findall(r"[\"`](/v1/[a-z/]+)", SCRIPT))
    assert paths == {"/v1/books", "/v1/frames/latest", "/v1/alerts", "/v1/stream",
                     "/v1/stream/ticket"}


def test_the_token_stays_in_the_tab_and_out_of_urls() -> None:
    # Kept in sessionStorage only: no cookie, nothing that outlives the tab.
    assert "sessionStorage" in SCRIPT
    for store in ("localStorage", "document.cookie", "indexedDB"):
        assert store not in SCRIPT
    # Sent as a header; the stream opens with a single-use ticket instead.
    assert "Authorization: `Bearer ${savedToken()" in SCRIPT
    stream = re.findall(r"new EventSource\(([^)]*)\)", SCRIPT)
    assert stream == ["`/v1/stream?${query}`"]
    assert 'query.set("ticket", ticket)' in SCRIPT
    assert "token" not in SCRIPT.split("const query = new URLSearchParams(bookQuery());")[1] \
        .split("new EventSource")[0].lower()
    html = page.page_html()
    assert 'id="login"' in html and 'type="password"' in html and 'autocomplete="off"' in html


@pytest.mark.parametrize("broken", ["missing", "cannot-start"])
def test_the_browser_test_fails_rather_than_skips_without_a_browser(
        broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from support import live_page

    browser = tmp_path / "chromium"
    if broken == "cannot-start":
        browser.write_text("#!/bin/sh\nexit 1\n")
        browser.chmod(0o755)
    monkeypatch.setattr(live_page, "CHROMIUM", browser)
    with pytest.raises(pytest.fail.Exception, match="chromium"), \
            live_page.headless_chromium(tmp_path / "driver.log"):
        pass
