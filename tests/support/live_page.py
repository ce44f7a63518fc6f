"""A real headless Chromium on the live heat page: the system's browser and driver
(Debian's ``chromium`` and ``chromium-driver``, never a downloaded one), what the page
shows read back as text, and the check that it shows a frame's numbers."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from support.waiting import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1440, 900)
_INSTALL = "install Debian's chromium and chromium-driver (infra/bootstrap.sh does)"


@contextmanager
def headless_chromium(log_path: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium driven through chromedriver; the test fails when it cannot start.

    Both binaries are given explicitly, so Selenium Manager never looks for (or downloads)
    a browser or a driver; host names other than 127.0.0.1 do not resolve in the browser,
    and its background services (updates, sync, metrics) are off.
    """
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: {_INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                     "--hide-scrollbars", "--no-first-run", "--no-default-browser-check",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-default-apps", "--disable-extensions",
                     "--disable-domain-reliability", "--lang=en-US",
                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log_path))
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as error:
        pytest.fail(f"chromium did not start ({error.msg or error}): {_INSTALL}")
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: webdriver.Chrome, token: str, timeout_s: float = 30) -> None:
    """Type ``token`` into the page's login form once it shows, and submit it."""
    wait_until(lambda: driver.execute_script(
        "const form = document.getElementById('login'); return form && !form.hidden"),
        timeout_s=timeout_s, message="the page never asked for a token")
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


def login_state(driver: webdriver.Chrome) -> dict[str, Any]:
    """Whether the login form shows, and the reason it gives."""
    return driver.execute_script(
        "const form = document.getElementById('login');"
        "return {shown: !!form && !form.hidden,"
        " reason: document.getElementById('login-reason')?.textContent ?? ''};")


def screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """A PNG of the whole page (the window grown to its height)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WINDOW[0], max(WINDOW[1], height + 16))
    driver.save_screenshot(str(path))
    driver.set_window_size(*WINDOW)


def requested_hosts(driver: webdriver.Chrome) -> set[str]:
    """Hosts of every network request the browser made since the last call."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = urlparse(message["params"]["request"]["url"])
            if url.scheme in ("http", "https", "ws", "wss"):
                hosts.add(url.hostname or "")
    return hosts


def page_errors(driver: webdriver.Chrome) -> list[str]:
    """Severe messages of the page's console (script errors, failed loads)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"]


# What the page shows, as text, by the data-k keys of its cells.
_READ_PAGE = """
const texts = (root) => Object.fromEntries([...root.querySelectorAll("[data-k]")]
  .map((node) => [node.dataset.k, node.textContent]));
const rows = (selector, key) => Object.fromEntries([...document.querySelectorAll(selector)]
  .map((row) => [row.dataset[key], texts(row)]));
return {
  ts: document.getElementById("frame-ts").getAttribute("datetime"),
  ts_text: document.getElementById("frame-ts").textContent,
  kpis: Object.fromEntries([...document.querySelectorAll("#kpis .kpi")]
    .map((node) => [node.dataset.k, node.querySelector(".value").textContent])),
  positions: rows("#positions tbody tr[data-symbol]", "symbol"),
  clusters: rows("#clusters tbody tr[data-cluster]", "cluster"),
  quadrants: rows("#quadrants [data-quadrant]", "quadrant"),
  tiles: [...document.querySelectorAll("#strip .tile")].map((tile) => tile.dataset.symbol),
  alerts: [...document.querySelectorAll("#alerts li[data-kind]")]
    .map((item) => ({kind: item.dataset.kind, subject: item.dataset.subject,
      severity: item.dataset.severity, ts: item.querySelector("time").getAttribute("datetime"),
      ...texts(item)})),
  stale_banner: !document.getElementById("stale-banner").hidden,
  book: document.getElementById("book").selectedOptions[0]?.textContent ?? null,
  title: document.title,
};
"""


def page_state(driver: webdriver.Chrome) -> dict[str, Any]:
    return driver.execute_script(_READ_PAGE)


def shown_number(text: str) -> tuple[float, float] | None:
    """(value, rounding tolerance) of a number as the page shows it (``12.3%``, ``1,234``,
    ``0.1 s``, sigmas, a minus sign); None for the page's dash (no value)."""
    text = text.strip()
    if text == "–":
        return None
    scale = 0.01 if text.endswith("%") else 1.0
    digits = text.replace("\u2212", "-").replace(",", "")
    digits = re.sub(r"(%|σ| s)$", "", digits)
    decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
    return float(digits) * scale, 0.5 * 10.0 ** -decimals * scale


def assert_shows(text: str, expected: float | None, what: str) -> None:
    """The page's ``text`` is ``expected`` rounded as displayed (or the dash for None)."""
    shown = shown_number(text)
    if expected is None:
        assert shown is None, f"{what}: shows {text!r}, the frame has no value"
        return
    assert shown is not None, f"{what}: shows {text!r}, the frame has {expected}"
    value, tolerance = shown
    assert math.isclose(value, expected, abs_tol=tolerance * (1 + 1e-9) + 1e-15), (
        f"{what}: shows {text!r}, the frame has {expected}")


KPI_FIELDS = ("gross", "net", "correlated_exposure", "stress_exposure", "effective_bets", "hhi",
              "max_cluster_concentration", "liq_distance", "var99_1d", "absorption_ratio",
              "regime_break", "max_price_age_s", "equity")
POSITION_FIELDS = ("heat", "heat_share", "share", "notional", "qty", "price",
                   "risk_contribution", "conviction", "price_age_s")
CLUSTER_FIELDS = ("concentration", "stress_concentration", "gross", "net", "liq_distance",
                  "liq_sigma")


def assert_page_shows(state: dict[str, Any], frame: dict[str, Any]) -> None:
    """Every number the page shows for ``frame`` is the frame's, as rounded on screen."""
    assert state["ts"] == frame["ts"]
    assert state["ts_text"] == frame["ts"].replace("T", " ")[:19] + " UTC"
    for field in KPI_FIELDS:
        assert_shows(state["kpis"][field], frame[field], field)
    assert set(state["positions"]) == {row["symbol"] for row in frame["positions"]}
    by_heat = sorted(frame["positions"], key=lambda row: -row["heat"])
    assert state["tiles"] == [row["symbol"] for row in by_heat]
    for row in frame["positions"]:
        shown = state["positions"][row["symbol"]]
        assert shown["symbol"] == row["symbol"]
        assert shown["cluster"] == row["cluster"]
        assert shown["quadrant"] == row["quadrant"]
        assert shown["strategy"] == (row["strategy"] or "")
        for field in POSITION_FIELDS:
            assert_shows(shown[field], row[field], f"{row['symbol']} {field}")
    assert set(state["clusters"]) == {cluster["cluster"] for cluster in frame["clusters"]}
    for cluster in frame["clusters"]:
        shown = state["clusters"][cluster["cluster"]]
        assert shown["members"] == ", ".join(cluster["members"])
        for field in CLUSTER_FIELDS:
            assert_shows(shown[field], cluster[field], f"cluster {cluster['cluster']} {field}")
    for quadrant, shown in state["quadrants"].items():
        rows = [row for row in frame["positions"] if row["quadrant"] == quadrant]
        assert shown["count"].split()[0] == str(len(rows))
        assert_shows(shown["heat"], sum(row["heat"] for row in rows), f"{quadrant} heat")
        assert_shows(shown["size"], sum(abs(row["share"]) for row in rows), f"{quadrant} size")
    assert state["stale_banner"] == frame["stale"]


def assert_alerts_show(shown: list[dict[str, Any]], firing: list[dict[str, Any]]) -> None:
    """The page's alert list is ``firing`` (``/v1/alerts``), each with its severity, the
    time it fired and its value and threshold as rounded on screen, critical first."""
    by_key = {(alert["kind"], alert["subject"]): alert for alert in firing}
    assert sorted((item["kind"], item["subject"]) for item in shown) == sorted(by_key)
    for item in shown:
        alert = by_key[(item["kind"], item["subject"])]
        what = f"alert {item['kind']} {item['subject']}"
        assert (item["severity"], item["ts"]) == (alert["severity"], alert["ts"]), what
        assert_shows(item["value"], alert["value"], f"{what} value")
        assert_shows(item["threshold"], alert["threshold"], f"{what} threshold")
    ranks = [item["severity"] != "critical" for item in shown]
    assert ranks == sorted(ranks), "critical alerts come first"
