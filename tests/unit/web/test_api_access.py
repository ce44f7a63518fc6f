"""Access to the bot API: 401 without a valid token, 403 outside its scopes, a book of
another desk answered exactly as an unknown one (and left out of the books and the
stream), stream tickets, and the per-token limits (streams, what-if rate, a stream whose
reader stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from aiohttp import ClientPayloadError, ClientResponse
from aiohttp.test_utils import TestClient

from heatmap.web import api as api_module
from heatmap.web.access import Access, Limits
from heatmap.web.live import SUBSCRIBER_QUEUE_FRAMES
from heatmap.web.tokens import revoke_token
from support.bot_api_routes import Worker, serve
from support.sample_books import sample_alert as alert

ROUTES = [("get", "/v1/books", None), ("get", "/v1/frames/latest?account=a1", None),
          ("get", "/v1/alerts?account=a1", None), ("get", "/v1/stream?account=a1", None),
          ("post", "/v1/stream/ticket", None),
          ("post", "/v1/whatif", {"account": "a1", "orders": [{"symbol": "CCC", "qty": 1}]})]


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def bearer(worker: Worker, name: str) -> dict[str, str]:
    return worker.tokens.header(name)


async def call(client: TestClient, method: str, path: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    response: ClientResponse = await client.request(method, path, json=body, headers=headers,
                                                    allow_redirects=False)
    return response.status, dict(response.headers), await response.json()


@pytest.mark.parametrize(("method", "path", "body"), ROUTES,
                         ids=[path for _, path, _ in ROUTES])
@pytest.mark.parametrize("authorization", [None, "Bearer heat_not-a-token", "Basic YTpi",
                                           "Bearer ", "Bearer " + "x" * 5000])
def test_every_route_needs_a_valid_token(method: str, path: str, body: Any,
                                         authorization: str | None) -> None:
    async def scenario(client: TestClient) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        status, answer_headers, answer = await call(client, method, path, body, headers)
        assert status == 401
        assert answer_headers["WWW-Authenticate"].startswith("Bearer")
        if authorization is not None:
            assert 'error="invalid_token"' in answer_headers["WWW-Authenticate"]
        assert "token" in answer["error"]

    serve(Worker(), scenario, token=None)


def test_without_a_tokens_file_every_request_is_401() -> None:
    worker = Worker()
    worker.access = Access(None)

    async def scenario(client: TestClient) -> None:
        for method, path, body in ROUTES:
            status, _, answer = await call(client, method, path, body)
            assert status == 401 and "HEAT_API_TOKENS_FILE" in answer["error"]

    serve(worker, scenario)


def test_what_if_needs_the_whatif_scope_and_reading_the_read_scope(tmp_path: Any) -> None:
    from support.api_tokens import api_tokens

    worker = Worker()
    only = api_tokens(tmp_path, {"whatif-only": (None, ("whatif",))})
    worker.store.path = only.path  # the server re-reads its file: this one now
    worker.store.load()

    async def scenario(client: TestClient) -> None:
        status, headers, answer = await call(client, "post", "/v1/whatif", ROUTES[-1][2],
                                             bearer(worker, "reader") | {})
        assert status == 401  # the reader token is not in the new file

        token = {"Authorization": f"Bearer {only['whatif-only']}"}
        status, headers, answer = await call(client, "get", "/v1/books", headers=token)
        assert status == 403 and "'read' scope" in answer["error"]
        assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
        status, _, _ = await call(client, "post", "/v1/whatif", ROUTES[-1][2], token)
        assert status == 200

    serve(worker, scenario, token=None)


def test_a_reader_may_not_ask_what_ifs() -> None:
    worker = Worker()

    async def scenario(client: TestClient) -> None:
        status, headers, answer = await call(client, "post", "/v1/whatif", ROUTES[-1][2])
        assert status == 403 and "'whatif' scope" in answer["error"]
        assert 'scope="whatif"' in headers["WWW-Authenticate"]

    serve(worker, scenario, token="reader")


def committed_books(worker: Worker) -> None:
    """Frames of every sample book: a1 and a2 of desk d1, the desk, and solo of none."""
    for book in (("a2", None), (None, "d1"), ("solo", None)):
        worker.view.committed(worker.engine.frames_for(book, worker.ts_ms, "position"))


def test_a_book_of_another_desk_is_answered_as_an_unknown_one() -> None:
    worker = Worker()
    committed_books(worker)
    worker.view.committed([], [alert("stale_heat", "frame", "firing")])

    async def scenario(client: TestClient) -> None:
        mine, other = bearer(worker, "d1"), bearer(worker, "elsewhere")
        for path in ("/v1/frames/latest", "/v1/alerts"):
            for query, unknown in (("account=a1", "account=zz"), ("desk=d1", "desk=d7"),
                                   ("account=solo", "account=zz")):
                seen = await call(client, "get", f"{path}?{query}&timeframe=1h",
                                  headers=other)
                missing = await call(client, "get", f"{path}?{unknown}&timeframe=1h",
                                     headers=other)
                name, unknown_name = query.split("=")[1], unknown.split("=")[1]
                assert seen[0] == missing[0] == 404
                assert seen[2]["error"] == missing[2]["error"].replace(
                    repr(unknown_name), repr(name))
                assert seen[1].keys() == missing[1].keys()
            status, _, _ = await call(client, "get", f"{path}?account=a1&timeframe=1h",
                                      headers=mine)
            assert status == 200
        # solo is on no desk: only a token of every desk sees it.
        assert (await call(client, "get", "/v1/frames/latest?account=solo",
                           headers=mine))[0] == 404

        orders = [{"symbol": "CCC", "qty": 1}]
        for book, unknown in (({"account": "a1"}, {"account": "zz"}),
                              ({"desk": "d1"}, {"desk": "d7"}),
                              ({"desk": "d1", "account": "nobody"}, {"desk": "d7"})):
            seen = await call(client, "post", "/v1/whatif", {**book, "orders": orders}, other)
            missing = await call(client, "post", "/v1/whatif", {**unknown, "orders": orders},
                                 other)
            assert seen[0] == missing[0] == 404
            assert seen[2]["error"].split(" '")[0] == missing[2]["error"].split(" '")[0]
        assert (await call(client, "post", "/v1/whatif", {"desk": "d1", "orders": orders},
                           mine))[0] == 200

        _, _, everything = await call(client, "get", "/v1/books", headers=bearer(worker, "all"))
        assert {entry["account"] for entry in everything["accounts"]} == {"a1", "a2", "solo"}
        _, _, books = await call(client, "get", "/v1/books", headers=mine)
        assert {entry["account"] for entry in books["accounts"]} == {"a1", "a2"}
        assert [entry["desk"] for entry in books["desks"]] == ["d1"]
        _, _, books = await call(client, "get", "/v1/books", headers=other)
        assert books["accounts"] == [] and books["desks"] == []
        assert books["timeframes"] == everything["timeframes"]

    serve(worker, scenario, token=None)


async def read_until_heartbeat(response: ClientResponse) -> list[str]:
    """The lines of a stream up to its first heartbeat comment."""
    lines = []
    while (line := (await response.content.readline()).decode()) != ": heartbeat\n":
        assert line, "the stream ended"
        lines.append(line)
    return lines


async def next_event(response: ClientResponse) -> tuple[str, dict[str, Any]]:
    lines = []
    while (line := (await response.content.readline()).decode()) != "\n":
        assert line, "the stream ended"
        if not line.startswith(":"):
            lines.append(line)
    return lines[0].removeprefix("event: ").strip(), json.loads(lines[1].removeprefix("data: "))


async def ended(response: ClientResponse) -> None:
    """Read a stream to its end: the server finished it, or cut the connection."""
    with contextlib.suppress(ClientPayloadError):
        while await response.content.readany():
            pass


def test_a_stream_sends_nothing_of_another_desk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Heartbeats come only when nothing is queued: one after the commits below proves the
    # stream had nothing of them to send.
    monkeypatch.setattr(api_module, "HEARTBEAT_S", 0.05)
    worker = Worker()

    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/stream?account=a1&timeframe=1h",
                                    headers=bearer(worker, "elsewhere"))
        assert response.status == 200
        worker.view.committed(worker.engine.frames_for(("a1", None), worker.ts_ms + 1, "bar"),
                              [alert("stale_heat", "frame", "firing")])
        assert not [line for line in await read_until_heartbeat(response)
                    if line.startswith("event:")]
        response.close()

        response = await client.get("/v1/stream?account=a1&timeframe=1h",
                                    headers=bearer(worker, "d1"))
        assert (await asyncio.wait_for(next_event(response), 5))[0] == "frame"
        response.close()

    serve(worker, scenario, token=None)


def test_a_ticket_opens_one_stream_once() -> None:
    clock = Clock()
    worker = Worker(limits=Limits(ticket_ttl_s=30), clock=clock)

    async def scenario(client: TestClient) -> None:
        status, headers, body = await call(client, "post", "/v1/stream/ticket",
                                           headers=bearer(worker, "d1"))
        assert status == 200 and body["expires_in_s"] == 30
        assert headers["Cache-Control"] == "no-store"
        ticket = body["ticket"]
        assert worker.tokens["d1"] not in ticket
        response = await client.get(f"/v1/stream?account=a1&timeframe=1h&ticket={ticket}")
        assert response.status == 200
        assert (await asyncio.wait_for(next_event(response), 5))[0] == "frame"
        response.close()
        again = await client.get(f"/v1/stream?account=a1&timeframe=1h&ticket={ticket}")
        assert again.status == 401 and "ticket" in (await again.json())["error"]

        _, _, body = await call(client, "post", "/v1/stream/ticket",
                                headers=bearer(worker, "d1"))
        clock.now_s += 31
        late = await client.get(f"/v1/stream?account=a1&ticket={body['ticket']}")
        assert late.status == 401

    serve(worker, scenario, token=None)


def test_streams_per_token_are_limited() -> None:
    worker = Worker(limits=Limits(streams_per_token=2))

    async def scenario(client: TestClient) -> None:
        query = "/v1/stream?account=a1&timeframe=1h"
        held = [await client.get(query) for _ in range(2)]
        assert [response.status for response in held] == [200, 200]
        for response in held:
            await asyncio.wait_for(next_event(response), 5)  # both are served
        refused = await client.get(query)
        assert refused.status == 429 and "2 streams open" in (await refused.json())["error"]
        other = await client.get(query, headers=bearer(worker, "d1"))
        assert other.status == 200  # another token's own slots
        other.close()
        held[0].close()

        async def reopened() -> ClientResponse:
            while True:  # the server frees the slot once it notices the client left
                response = await client.get(query)
                if response.status == 200:
                    return response
                await asyncio.sleep(0.02)

        # Well before a heartbeat (10 s) would have found the connection closed.
        (await asyncio.wait_for(reopened(), 5)).close()
        held[1].close()

    serve(worker, scenario)


def test_what_ifs_per_token_are_rate_limited() -> None:
    clock = Clock()
    worker = Worker(limits=Limits(whatif_rate_per_s=2, whatif_burst=3), clock=clock)
    body = ROUTES[-1][2]

    async def scenario(client: TestClient) -> None:
        statuses = [(await call(client, "post", "/v1/whatif", body))[0] for _ in range(3)]
        assert statuses == [200, 200, 200]
        status, headers, answer = await call(client, "post", "/v1/whatif", body)
        assert status == 429 and headers["Retry-After"] == "1"
        assert "what-ifs per second" in answer["error"]
        assert (await call(client, "post", "/v1/whatif", body, bearer(worker, "d1")))[0] == 200
        clock.now_s += 0.5  # one more request's worth
        assert (await call(client, "post", "/v1/whatif", body))[0] == 200
        assert (await call(client, "post", "/v1/whatif", body))[0] == 429

    serve(worker, scenario)


def test_a_stream_whose_reader_stopped_is_closed() -> None:
    clock = Clock()
    worker = Worker(clock=clock)

    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/stream?account=a1&timeframe=1h")
        await asyncio.wait_for(next_event(response), 5)
        assert worker.view.subscribers == 1
        # Commits in one go, with no chance for the stream to read its queue: it fills,
        # stays full longer than the timeout, and the subscriber is closed.
        for step in range(SUBSCRIBER_QUEUE_FRAMES + 1):
            worker.view.committed(worker.engine.frames_for(("a1", None), worker.ts_ms + step,
                                                           "bar"))
        clock.now_s += worker.view.stall_timeout_s + 1
        worker.view.committed(worker.engine.frames_for(("a1", None), worker.ts_ms + 99, "bar"))
        assert worker.view.subscribers == 0

        await asyncio.wait_for(ended(response), 10)
        assert worker.access.streams(worker.store.records[0]) == 0

    serve(worker, scenario)


def test_a_revoked_token_is_refused_and_its_stream_ends() -> None:
    clock = Clock()
    worker = Worker(clock=clock)

    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/stream?account=a1&timeframe=1h")
        await asyncio.wait_for(next_event(response), 5)
        revoke_token(worker.tokens.path, "all")
        clock.now_s += 1.0
        worker.view.committed(worker.engine.frames_for(("a1", None), worker.ts_ms + 1, "bar"))

        await asyncio.wait_for(ended(response), 10)
        assert (await call(client, "get", "/v1/books"))[0] == 401

    serve(worker, scenario)


def test_a_standby_redirects_with_the_token_checked_first() -> None:
    worker = Worker()
    worker.holds_lease = False

    async def scenario(client: TestClient) -> None:
        assert (await call(client, "get", "/v1/books", headers={}))[0] == 401
        status, headers, _ = await call(client, "get", "/v1/books",
                                        headers=bearer(worker, "all"))
        assert status == 307 and headers["Location"] == "http://127.0.0.1:1/v1/books"
        # A ticket goes on unused to the worker that issued it.
        response = await client.get("/v1/stream?account=a1&ticket=abc", allow_redirects=False)
        assert response.status == 307
        assert response.headers["Location"].endswith("/v1/stream?account=a1&ticket=abc")

    serve(worker, scenario, token=None)
