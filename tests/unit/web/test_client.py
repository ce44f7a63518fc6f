"""``heat whatif`` against the bot API served by a plain aiohttp server in a thread: the
table, the JSON, a standby's redirect followed with the POST kept, one-line errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from typer.testing import CliRunner

from heatmap.cli.main import app as heat
from heatmap.engine.alerts import AlertMonitor
from heatmap.stack.ports import free_port
from heatmap.stack.services import HEAT
from heatmap.web.api import BotApi, Routing
from heatmap.web.live import LiveView
from support.bot_api_routes import routes
from support.sample_books import sample_engine


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """(active URL, standby URL): the standby redirects to the active worker."""
    engine, _ = sample_engine()
    view = LiveView()
    view.stepped(engine, AlertMonitor().thresholds)
    active_port, standby_port = free_port(), free_port()
    active, standby = f"http://127.0.0.1:{active_port}", f"http://127.0.0.1:{standby_port}"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runners: list[web.AppRunner] = []

    async def start() -> None:
        for port, holds, url in ((active_port, True, active), (standby_port, False, standby)):
            application = web.Application()
            application.add_routes(routes(BotApi(view, Routing(
                lambda holds=holds: holds, lambda: active, url))))
            runner = web.AppRunner(application)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield active, standby
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_whatif_prints_before_after_and_delta(servers: tuple[str, str]) -> None:
    active, _ = servers
    result = CliRunner().invoke(heat, ["whatif", "--account", "a1", "--symbol", "CCC",
                                       "--qty", "2", "--url", active])
    assert result.exit_code == 0, result.output
    assert "correlated exposure" in result.output and "heat CCC" in result.output


def test_whatif_follows_a_standbys_redirect_and_prints_json(servers: tuple[str, str]) -> None:
    _, standby = servers
    result = CliRunner().invoke(heat, ["whatif", "--desk", "d1", "--symbol", "CCC",
                                       "--qty", "-1", "--url", standby, "--json"])
    assert result.exit_code == 0, result.output
    assert '"book_kind":"desk"' in result.output


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--account", "nobody"], 1, "refused the what-if (404): unknown account"),
    (["--account", "a1", "--url", "http://127.0.0.1:1"], 1, "cannot reach"),
    (["--symbol", "CCC"], 2, "give --account or --desk"),
])
def test_whatif_failures_are_one_line(servers: tuple[str, str], args: list[str], code: int,
                                      says: str) -> None:
    base = {"--symbol": "CCC", "--qty": "1", "--url": servers[0]}
    for option in args[::2]:
        base.pop(option, None)
    argv = ["whatif", *args, *(item for pair in base.items() for item in pair)]
    result = subprocess.run([*HEAT, *argv], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == code
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], result.stderr
