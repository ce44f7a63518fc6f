"""The live heat page in a real headless Chromium, served by a real ``heat process`` on a
real broker fed the recorded bars: it asks for a token (a wrong one is refused), shows
the numbers of the latest frame the API serves and the book's firing alerts, follows new
frames as they are committed, renders hostile names as text, and loads nothing from
anywhere but the processor. With a token of one desk it lists only that desk's books, and
another desk's book asked for by name is missing, as an unknown one."""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from heatmap.schema import rfc3339_to_ms
from support.api_tokens import STANDARD, api_tokens
from support.heat_pipeline import ROOT, Pipeline, RecordedInputs, ingest, pipeline
from support.live_page import (
    assert_alerts_show,
    assert_page_shows,
    headless_chromium,
    log_in,
    login_state,
    page_errors,
    page_state,
    requested_hosts,
    screenshot,
)
from support.waiting import wait_until

pytestmark = pytest.mark.integration

# A book whose names hold quotes, markup and CJK: the page must show them verbatim.
ODD_ACCOUNT = "o'brien \"macro\" <script>window.pwned = 1</script> 风险账户"
ODD_DESK = "亚洲 \"desk\" <b>&amp;</b>"
FIRST_END = "2018-01-11T08"   # the first feed: warm-up, three desks, the odd book
SECOND_END = "2018-01-11T09"  # the second, while the page watches
DESK_A, DESK_B = "alpha", "beta"  # a token of desk A only must show nothing of desk B
# A symbol of its own whose prices stop before the first feed ends: the book turns stale.
ODD_SYMBOL = "风险币BTC"
ODD_SYMBOL_PRICES = ("ZECBTC.csv", "2018-01-11T06")  # its prices: another pair's, until then
ODD_POSITIONS = [
    ["2018-01-11T03:10:00Z", ODD_ACCOUNT, "ETHBTC", "40.5", 'swing "q"', "0.8"],
    ["2018-01-11T03:10:01Z", ODD_ACCOUNT, "LTCBTC", "-60", "", "0.3"],
    ["2018-01-11T03:10:02Z", ODD_ACCOUNT, "XMRBTC", "25", "<i>carry</i>", ""],
    ["2018-01-11T03:10:03Z", ODD_ACCOUNT, ODD_SYMBOL, "30", "", "0.6"],
    ["2018-01-11T08:20:00Z", ODD_ACCOUNT, "ETHBTC", "55", 'swing "q"', "0.8"],
]
ODD_ACCOUNTS = [["2018-01-11T00:00:00Z", ODD_ACCOUNT, "30", ODD_DESK, ""]]


def window(folder: Path, start: str, end: str) -> RecordedInputs:
    """The repository's real bars and test books (plus the odd book), rows from ``start``
    (an RFC 3339 prefix) to before ``end``."""
    (folder / "prices").mkdir(parents=True)
    last = ""

    def write(target: Path, header: list[str], rows: list[list[str]]) -> Path:
        nonlocal last
        kept = sorted((row for row in rows if start <= row[0] < end), key=lambda row: row[0])
        with target.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out, lineterminator="\n").writerows([header, *kept])
        last = max([last, *(row[0] for row in kept)])
        return target

    def rows_of(path: Path) -> tuple[list[str], list[list[str]]]:
        with path.open(newline="", encoding="utf-8") as source:
            header, *rows = list(csv.reader(source))
        return header, rows

    bars = ROOT / "data" / "binance-5m"
    header, rows = rows_of(bars / ODD_SYMBOL_PRICES[0])
    odd_prices = [row for row in rows if row[0] < ODD_SYMBOL_PRICES[1]]
    prices = [write(folder / "prices" / f"{ODD_SYMBOL}.csv", header, odd_prices)]
    prices += [write(folder / "prices" / path.name, *rows_of(path))
               for path in sorted(bars.glob("*.csv"))]
    prices = [path for path in prices if len(path.read_text().splitlines()) > 1]
    books = ROOT / "tests" / "data" / "replay"
    header, rows = rows_of(books / "positions.csv")
    positions = write(folder / "positions.csv", header, rows + ODD_POSITIONS)
    header, rows = rows_of(books / "accounts.csv")
    accounts = write(folder / "accounts.csv", header, rows + ODD_ACCOUNTS)
    return RecordedInputs(prices, positions, accounts, rfc3339_to_ms(last))


def feed(running: Pipeline, inputs: RecordedInputs, log_path: Path) -> None:
    producer = ingest(inputs, running.topics, running.bootstrap, log_path)
    assert producer.process.wait(timeout=300) == 0, producer.log_text()[-3000:]


def book_query(kind: str, name: str, timeframe: str) -> str:
    return urllib.parse.urlencode({kind: name, "timeframe": timeframe})


TOKEN: dict[str, str] = {}  # the test's token, as the API's helpers below send it


def status_and_body(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET with the test's token, errors included."""
    try:
        with get(url) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get(url: str) -> Any:
    """A GET with the test's token."""
    request = urllib.request.Request(url, headers={  # noqa: S310 (http only)
        "Authorization": f"Bearer {TOKEN['token']}"})
    return urllib.request.urlopen(request, timeout=10)  # noqa: S310 (http only)


def book_answer(base_url: str, path: str, query: str) -> Any:
    """The API's JSON answer about a book at ``path`` (None while it has no frame)."""
    try:
        with get(f"{base_url}{path}?{query}") as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code in (404, 503):
            return None
        raise


def latest_frame(base_url: str, query: str) -> dict[str, Any] | None:
    """The API's latest frame of a book (None while it has none)."""
    return book_answer(base_url, "/v1/frames/latest", query)


def firing_alerts(base_url: str, query: str) -> list[dict[str, Any]] | None:
    """The API's firing alerts of a book (None while it has no frame)."""
    return book_answer(base_url, "/v1/alerts", query)


def books(base_url: str) -> set[tuple[str, str]]:
    """(kind, name) of every book ``/v1/books`` lists (none while no engine is live)."""
    try:
        with get(f"{base_url}/v1/books") as response:
            listed = json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 503:
            return set()
        raise
    return {(kind, book[kind]) for kind in ("account", "desk") for book in listed[f"{kind}s"]}


def settled(browser: Any, base_url: str, query: str, timeout_s: float = 60
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the page shows, the API's latest frame) once both are the same frame."""

    def same() -> tuple[dict[str, Any], dict[str, Any]] | None:
        before = latest_frame(base_url, query)
        state = page_state(browser)
        after = latest_frame(base_url, query)
        if before is not None and before == after and state["ts"] == after["ts"]:
            return state, after
        return None

    return wait_until(same, timeout_s, interval_s=0.2,
                      message=f"the page never showed the latest frame of {query}")


def alerts_settled(browser: Any, base_url: str, query: str, timeout_s: float = 30
                   ) -> list[dict[str, Any]]:
    """The API's firing alerts of the book once the page shows the same ones, checked."""

    def keyed(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
        return sorted((a["kind"], a["subject"], a["severity"], a["ts"]) for a in alerts)

    def same() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        before = firing_alerts(base_url, query)
        shown = page_state(browser)["alerts"]
        after = firing_alerts(base_url, query)
        if before is not None and before == after and keyed(shown) == keyed(after):
            return shown, after
        return None

    shown, firing = wait_until(same, timeout_s, interval_s=0.2, message=lambda: (
        f"the page's alerts never were /v1/alerts of {query}: page "
        f"{page_state(browser)['alerts']}, API {firing_alerts(base_url, query)}"))
    assert_alerts_show(shown, firing)
    return firing


def show(browser: Any, base_url: str, kind: str, name: str, timeframe: str
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    query = book_query(kind, name, timeframe)
    browser.get(f"{base_url}/live?{query}")
    return settled(browser, base_url, query)


@pytest.fixture
def running(stack, tmp_path: Path):
    yield from pipeline(stack.kafka_bootstrap, None, tmp_path)


def test_the_live_page_shows_and_follows_the_latest_frames(running: Pipeline,
                                                          tmp_path: Path) -> None:
    running._tokens = api_tokens(tmp_path / "api-tokens",
                                 {**STANDARD, "desk-a": ([DESK_A], ("read",))})
    TOKEN["token"] = running.tokens["all"]
    feed(running, window(tmp_path / "first", "", FIRST_END), tmp_path / "ingest-first.log")
    # The page opens a stream per book it shows and this test shows many in a row: a
    # closed stream's slot is freed when the server notices (about a second, longer on a
    # loaded machine), so the per-token stream limit (its own test) is lifted here.
    streams = {"HEAT_API_STREAMS_PER_TOKEN": "64"}
    processor = running.process(**streams)
    wait_until(lambda: processor.health().get("phase") == "live", timeout_s=120,
               message="the processor did not go live")
    base_url = processor.url
    wait_until(lambda: books(base_url) >= {("account", ODD_ACCOUNT), ("desk", ODD_DESK),
                                           ("account", "acct-a1"), ("desk", "beta")},
               timeout_s=120, message="the processor never served every book of the feed")
    standby = running.process(**streams)  # joins the group while the page is checked
    with headless_chromium(tmp_path / "chromedriver.log") as browser:
        # The page asks for a token: a wrong one is refused, a good one kept for the tab.
        browser.get(f"{base_url}/live")
        log_in(browser, "heat_wrong")
        wait_until(lambda: "refused the token" in login_state(browser)["reason"],
                   timeout_s=30, message="a wrong token was not refused")
        log_in(browser, TOKEN["token"])
        wait_until(lambda: not login_state(browser)["shown"]
                   and page_state(browser)["book"] is not None, timeout_s=60,
                   message="the page did not open with the token")
        browser.get_log("browser")  # the wrong token's 401 was expected: forget it
        # The numbers on the page are the latest frame's, for a desk and an account.
        state, frame = show(browser, base_url, "desk", "beta", "1h")
        assert_page_shows(state, frame)
        assert frame["positions"], "the desk should hold positions by then"
        alerts_settled(browser, base_url, book_query("desk", "beta", "1h"))

        # The chooser switches book and timeframe, and the address follows.
        Select(browser.find_element(By.ID, "book")).select_by_value("account:acct-a1")
        browser.find_element(By.CSS_SELECTOR, "label[for='tf-4h']").click()
        query = book_query("account", "acct-a1", "4h")
        wait_until(lambda: browser.current_url.endswith(f"/live?{query}"), timeout_s=10)
        assert_page_shows(*settled(browser, base_url, query))
        alerts_settled(browser, base_url, query)

        # Quotes, markup and CJK in names are text, nothing else; stale prices show.
        for kind, name in (("account", ODD_ACCOUNT), ("desk", ODD_DESK)):
            state, frame = show(browser, base_url, kind, name, "1h")
            assert frame["stale"], f"{frame['ts']} {frame['trigger']} {frame['max_price_age_s']}"
            assert state["stale_banner"]
            assert_page_shows(state, frame)
            firing = alerts_settled(browser, base_url, book_query(kind, name, "1h"))
            assert ("stale_heat", "critical") in {(a["kind"], a["severity"]) for a in firing}
            assert state["book"] == name
            assert name in state["title"]
            screenshot(browser, tmp_path / f"live-page-odd-{kind}.png")
        options = browser.execute_script(
            "return [...document.querySelectorAll('#book option')].map((o) => o.textContent)")
        assert {ODD_ACCOUNT, ODD_DESK} <= set(options)
        assert browser.execute_script(
            "return window.pwned === undefined && document.scripts.length === 1"
            " && document.querySelectorAll('i, option b, #positions b').length === 0")
        strategies = browser.execute_script(
            "return [...document.querySelectorAll('#positions [data-k=strategy]')]"
            ".map((cell) => cell.textContent)")
        assert {'swing "q"', "<i>carry</i>"} <= set(strategies)

        # New input: the page follows the committed frames without a reload.
        query = book_query("desk", "beta", "1h")
        state, frame = show(browser, base_url, "desk", "beta", "1h")
        shown_before = state["ts"]
        browser.execute_script("window.sameDocument = true")
        feed(running, window(tmp_path / "second", FIRST_END, SECOND_END),
             tmp_path / "ingest-second.log")
        wait_until(lambda: page_state(browser)["ts"] > shown_before, timeout_s=120,
                   message="no new frame reached the page")
        state, frame = settled(browser, base_url, query, timeout_s=120)
        assert frame["ts"] > shown_before
        assert_page_shows(state, frame)
        assert browser.execute_script("return window.sameDocument")  # no reload
        alerts_settled(browser, base_url, query)  # followed through the stream's transitions

        screenshot(browser, tmp_path / "live-page-desk.png")

        # Opened on a standby, the page moves to the worker running the engine.
        wait_until(lambda: (standby.health().get("active_url") or "").rstrip("/")
                   == base_url.rstrip("/"), timeout_s=60,
                   message="the standby never learned which worker runs the engine")
        browser.get(f"{standby.url}/live?{query}")
        wait_until(lambda: browser.current_url.startswith(f"{base_url}/live?"), timeout_s=10)
        assert_page_shows(*settled(browser, base_url, query))
        alerts_settled(browser, base_url, query)
        assert requested_hosts(browser) == {"127.0.0.1"}
        assert page_errors(browser) == []

        # A token of desk A only: the page lists desk A's books and nothing else.
        everything = books(base_url)
        TOKEN["token"] = running.tokens["desk-a"]
        visible = books(base_url)
        desk_of = {book: latest_frame(base_url, book_query(*book, "1h")) for book in visible}
        assert ("desk", DESK_A) in visible and ("account", "acct-a1") in visible
        assert all(frame is not None and frame["desk"] == DESK_A for frame in desk_of.values())
        assert ("desk", DESK_B) in everything - visible
        browser.execute_script("window.sessionStorage.clear()")  # the tab forgets "all"
        browser.get(f"{base_url}/live?{book_query('desk', DESK_A, '1h')}")
        log_in(browser, TOKEN["token"])
        for kind, name in (("desk", DESK_A), ("account", "acct-a1")):
            # Every number on the page is the API's for desk A, read with desk A's token.
            state, frame = show(browser, base_url, kind, name, "1h")
            assert_page_shows(state, frame)
            assert frame["desk"] == DESK_A and frame["positions"]
            options = set(browser.execute_script(
                "return [...document.querySelectorAll('#book option')].map((o) => o.value)"))
            assert options == {f"{kind}:{name}" for kind, name in visible}

        # Desk B's book asked for by name: missing, exactly as a book that does not exist.
        query_b = book_query("desk", DESK_B, "1h")
        unknown = "no such desk"
        for path in ("/v1/frames/latest", "/v1/alerts"):
            status, body = status_and_body(f"{base_url}{path}?{query_b}")
            unknown_status, unknown_body = status_and_body(
                f"{base_url}{path}?{book_query('desk', unknown, '1h')}")
            # The answer names the book asked for, and differs in nothing else.
            assert (status, body) == (404, unknown_body.replace(unknown.encode(),
                                                                DESK_B.encode()))
            assert unknown_status == 404
        browser.get(f"{base_url}/live?{query_b}")
        wait_until(lambda: browser.execute_script(
            "return document.getElementById('notice').textContent").startswith(
                "No frame of this book yet"), timeout_s=30,
                   message="desk B's book was not answered as missing")
        shown = page_state(browser)
        assert shown["ts"] is None and shown["kpis"] == {} and shown["positions"] == {}
        assert not login_state(browser)["shown"]
        # Only the expected 404s of desk B's book reached the console.
        assert [error for error in page_errors(browser) if "404" not in error] == []
