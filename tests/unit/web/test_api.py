"""The bot API's handlers over a plain aiohttp server (no Faust, no Kafka): answers,
firing alerts, request validation (every bad request is a 4xx with a JSON reason), the
redirect of a worker without the engine, and server-sent events; every request with a
token of every desk (access itself: test_api_access.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from heatmap.engine.engine import HeatEngine
from support.bot_api_routes import Worker, serve
from support.sample_books import sample_alert as alert


def test_latest_frame_books_and_what_if_answer() -> None:
    worker = Worker()

    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/frames/latest", params={"account": "a1",
                                                                  "timeframe": "1h"})
        assert response.status == 200
        body = await response.json()
        assert body["account"] == "a1" and body["timeframe"] == "1h"
        assert {"positions", "clusters", "correlated_exposure"} <= body.keys()
        books = await (await client.get("/v1/books")).json()
        assert books["accounts"][0]["account"] == "a1" and books["timeframes"] == ["10m", "1h"]
        response = await client.post("/v1/whatif", json={
            "account": "a1", "timeframe": "1h",
            "orders": [{"symbol": "CCC", "qty": 2}, {"symbol": "DDD", "qty": 1}]})
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert answer["book"] == "a1" and answer["book_kind"] == "account"
        assert answer["before"] == body
        ccc = [p for p in answer["delta"]["positions"] if p["symbol"] == "CCC"]
        assert ccc[0]["qty"] == {"before": None, "after": 2.0, "delta": None}
        # Each order's limit under the critical line (0.25): CCC would join the AAA
        # cluster, over the line already (nothing more may be bought); DDD, a cluster of
        # its own, may grow until it reaches the line.
        ccc_limit, ddd_limit = answer["limits"]
        assert ccc_limit["symbol"] == "CCC" and ccc_limit["limited_by"] == "line"
        assert (ccc_limit["max_qty"], ccc_limit["cluster"]) == (0.0, "AAA")
        assert ccc_limit["concentration"] > ccc_limit["line"] == 0.25
        assert ddd_limit["symbol"] == "DDD" and ddd_limit["max_qty"] > 0.0
        assert (ddd_limit["cluster"], ddd_limit["members"]) == ("DDD", ["DDD"])
        assert ddd_limit["timeframe"] in {"10m", "1h"}
        assert ddd_limit["concentration"] == pytest.approx(0.25, abs=1e-9)

    serve(worker, scenario)


BAD_WHATIFS: dict[str, tuple[Any, int, str]] = {
    "malformed JSON": (b'{"account": "a1", "orders": [', 400, "malformed JSON"),
    "NaN literal": (b'{"account": "a1", "orders": [{"symbol": "AAA", "qty": NaN}]}', 400,
                    "malformed"),
    "infinite qty": (b'{"account": "a1", "orders": [{"symbol": "AAA", "qty": 1e999}]}', 422,
                     "out of range"),
    "qty as text": ({"account": "a1", "orders": [{"symbol": "AAA", "qty": "1"}]}, 422,
                    "Expected `float`"),
    "absurd qty": ({"account": "a1", "orders": [{"symbol": "AAA", "qty": 1e13}]}, 422,
                   "at most"),
    "absurd notional": ({"account": "a1", "orders": [{"symbol": "AAA", "qty": 1e9}]}, 422,
                        "times the book's equity"),
    "no orders": ({"account": "a1", "orders": []}, 422, "length"),
    "no book": ({"orders": [{"symbol": "AAA", "qty": 1}]}, 422, "account or a desk"),
    "unknown field": ({"account": "a1", "orders": [{"symbol": "AAA", "qty": 1}], "x": 1}, 422,
                      "unknown field"),
    "not an object": ([1, 2], 422, "Expected `object`"),
    "bad name": ({"account": "a\u200b1", "orders": [{"symbol": "AAA", "qty": 1}]}, 422,
                 "printable"),
    "unknown account": ({"account": "zz", "orders": [{"symbol": "AAA", "qty": 1}]}, 404,
                        "unknown account"),
    "unknown symbol": ({"account": "a1", "orders": [{"symbol": "ZZZ", "qty": 1}]}, 404,
                       "unknown symbol"),
    "unknown timeframe": ({"account": "a1", "timeframe": "2h",
                           "orders": [{"symbol": "AAA", "qty": 1}]}, 404, "unknown timeframe"),
}


@pytest.mark.parametrize("case", BAD_WHATIFS, ids=list(BAD_WHATIFS))
def test_bad_what_ifs_are_4xx_with_a_reason(case: str) -> None:
    body, status, reason = BAD_WHATIFS[case]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def scenario(client: TestClient) -> None:
        response = await client.post("/v1/whatif", data=data,
                                     headers={"Content-Type": "application/json"})
        assert response.status == status
        assert reason in (await response.json())["error"]

    serve(Worker(), scenario)


@pytest.mark.parametrize(("params", "status", "reason"), [
    ({"timeframe": "1h"}, 400, "exactly one of"),
    ({"account": "a1", "desk": "d1"}, 400, "exactly one of"),
    ({"account": " a1"}, 400, "printable"),
    ({"account": "a1", "timeframe": "3d"}, 404, "unknown timeframe"),
    ({"account": "a2", "timeframe": "1h"}, 404, "no committed 1h frame"),
])
def test_bad_frame_queries_are_4xx_with_a_reason(params: dict[str, str], status: int,
                                                 reason: str) -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/frames/latest", params=params)
        assert response.status == status
        assert reason in (await response.json())["error"]

    serve(Worker(), scenario)


def test_a_worker_without_the_engine_redirects_or_says_why() -> None:
    worker = Worker()
    worker.holds_lease = False

    async def scenario(client: TestClient) -> None:
        response = await client.post("/v1/whatif?x=1", json={}, allow_redirects=False)
        assert response.status == 307
        assert response.headers["Location"] == "http://127.0.0.1:1/v1/whatif?x=1"
        worker.active_url = None
        response = await client.get("/v1/books")
        assert response.status == 503 and "no worker runs the engine" in (
            await response.json())["error"]
        worker.holds_lease = True
        worker.view.stopped()
        response = await client.get("/v1/books")
        assert response.status == 503 and "starting" in (await response.json())["error"]

    serve(worker, scenario)


def test_alerts_are_the_firing_ones_of_the_book_as_spec_json() -> None:
    worker = Worker()
    worker.view.committed(worker.engine.frames_for((None, "d1"), worker.ts_ms, "position"))
    concentration = alert("cluster_concentration", "AAA", "firing")
    stale = alert("stale_heat", "frame", "firing", "critical")
    worker.view.committed([], [concentration, stale,
                               alert("regime_break", "portfolio", "firing", account=None)])

    async def firing(**params: str) -> Any:
        response = await client_of[0].get("/v1/alerts", params=params)
        return response.status, await response.json()

    client_of: list[TestClient] = []

    async def scenario(client: TestClient) -> None:
        client_of.append(client)
        status, body = await firing(account="a1", timeframe="1h")
        assert status == 200
        assert body == [json.loads(msgspec.json.encode(stale)),
                        json.loads(msgspec.json.encode(concentration))]
        # SPEC's fields, and the levels of the book's desk the alert was judged by.
        assert set(body[0]) == {"ts", "account", "desk", "timeframe", "kind", "subject",
                                "severity", "state", "value", "threshold", "message",
                                "warning_threshold", "critical_threshold"}
        assert [a["kind"] for a in (await firing(desk="d1", timeframe="1h"))[1]] == [
            "regime_break"]
        assert await firing(account="a1", timeframe="10m") == (200, [])
        worker.view.committed([], [alert("stale_heat", "frame", "resolved", "critical")])
        assert [a["kind"] for a in (await firing(account="a1"))[1]] == []  # 10m: shortest
        assert [a["kind"] for a in (await firing(account="a1", timeframe="1h"))[1]] == [
            "cluster_concentration"]
        status, body = await firing(account="a2", timeframe="1h")
        assert status == 404 and "no committed 1h frame" in body["error"]
        assert (await firing(timeframe="1h"))[0] == 400

    serve(worker, scenario)


def test_the_stream_sends_the_latest_frame_then_each_new_one() -> None:
    worker = Worker()
    engine: HeatEngine = worker.engine

    async def scenario(client: TestClient) -> None:
        response = await client.get("/v1/stream", params={"account": "a1", "timeframe": "1h"})
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")

        async def event(name: str = "frame") -> dict[str, Any]:
            lines = []
            while (line := await response.content.readline()) != b"\n":
                lines.append(line.decode())
            assert lines[0] == f"event: {name}\n"
            return dict(json.loads(lines[1].removeprefix("data: ")))

        first = await asyncio.wait_for(event(), 5)
        assert first["ts"] == worker.view.latest("account", "a1", "1h").message.ts  # type: ignore[union-attr]
        worker.view.committed(engine.frames_for(("a1", None), worker.ts_ms + 1000, "bar"))
        second = await asyncio.wait_for(event(), 5)
        assert second["trigger"] == "bar" and second["ts"] > first["ts"]
        # Alert transitions of the book follow, firing and resolved alike; others' do not.
        worker.view.committed([], [alert("stale_heat", "frame", "firing", account="a2"),
                                   alert("stale_heat", "frame", "firing", "critical")])
        fired = await asyncio.wait_for(event("alert"), 5)
        assert (fired["account"], fired["kind"], fired["state"]) == ("a1", "stale_heat",
                                                                     "firing")
        worker.view.committed([], [alert("stale_heat", "frame", "resolved", "critical")])
        assert (await asyncio.wait_for(event("alert"), 5))["state"] == "resolved"
        response.close()

    serve(worker, scenario)
