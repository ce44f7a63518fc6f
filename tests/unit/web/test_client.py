"""``heat whatif`` against the bot API served by a plain aiohttp server in a thread: the
table, the JSON, a standby's redirect followed with the POST and the token kept, one-line
errors (a missing, wrong or read-only token included)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from typer.testing import CliRunner

from heatmap.cli.main import app as heat
from heatmap.engine.alerts import AlertMonitor
from heatmap.stack.ports import free_port
from heatmap.stack.services import HEAT
from heatmap.web.access import Access
from heatmap.web.api import BotApi, Routing
from heatmap.web.live import LiveView
from heatmap.web.tokens import TokenStore
from support.api_tokens import ApiTokens, api_tokens
from support.bot_api_routes import routes
from support.sample_books import sample_engine


@dataclass(frozen=True)
class Servers:
    """The active worker's URL, a standby's (redirecting to it) and the tokens."""

    active: str
    standby: str
    tokens: ApiTokens


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tokens = api_tokens(Path(tmp_path_factory.mktemp("tokens")))
    store = TokenStore(tokens.path)
    store.load()
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
                lambda holds=holds: holds, lambda: active, url), Access(store))))
            runner = web.AppRunner(application)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield Servers(active, standby, tokens)
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_whatif_prints_before_after_and_delta(servers: Servers) -> None:
    result = CliRunner().invoke(heat, ["whatif", "--account", "a1", "--symbol", "CCC",
                                       "--qty", "2", "--url", servers.active,
                                       "--token", servers.tokens["d1"]])
    assert result.exit_code == 0, result.output
    assert "correlated exposure" in result.output and "heat CCC" in result.output
    # CCC would join the AAA cluster, already over the critical line: nothing more.
    assert "limit CCC: +0 keeps cluster AAA (AAA, BBB) at or under 0.25" in result.output


def test_whatif_follows_a_standbys_redirect_and_prints_json(servers: Servers) -> None:
    # The token from the environment, sent again to the worker the standby names.
    result = CliRunner().invoke(heat, ["whatif", "--desk", "d1", "--symbol", "CCC",
                                       "--qty", "-1", "--url", servers.standby, "--json"],
                                env={"HEAT_API_TOKEN": servers.tokens["all"]})
    assert result.exit_code == 0, result.output
    assert '"book_kind":"desk"' in result.output


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--account", "nobody"], 1, "refused the what-if (404): unknown account"),
    (["--account", "a1", "--token", "elsewhere"], 1,
     "refused the what-if (404): unknown account 'a1'"),
    (["--account", "a1", "--url", "http://127.0.0.1:1"], 1, "cannot reach"),
    (["--symbol", "CCC"], 2, "give --account or --desk"),
    (["--account", "a1", "--token", None], 1, "refused the what-if (401): an API token is "
                                              "required"),
    (["--account", "a1", "--token", "heat_wrong"], 1, "(401): invalid or revoked API token"),
    (["--account", "a1", "--token", "reader"], 1, "(403): this token lacks the 'whatif' "
                                                  "scope; the token needs the whatif scope"),
])
def test_whatif_failures_are_one_line(servers: Servers, args: list[str | None], code: int,
                                      says: str) -> None:
    base: dict[str, str | None] = {"--symbol": "CCC", "--qty": "1", "--url": servers.active,
                                   "--token": "all"}
    for option in args[::2]:
        base.pop(str(option), None)
    given = dict(zip(args[::2], args[1::2], strict=True))
    token = base.pop("--token", None) or given.pop("--token", None)
    argv = ["whatif", *(item for pair in {**base, **given}.items() for item in pair)]
    if token is not None:
        argv += ["--token", servers.tokens.tokens.get(token, token)]
    result = subprocess.run([*HEAT, *(str(arg) for arg in argv)], capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == code
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], result.stderr
