"""The engine supervisor: it keeps an engine running while the worker holds the lease,
whatever ends a run, and stops only when the lease moves (engine runs are stand-ins
here: no broker)."""

from __future__ import annotations

import asyncio

import pytest

from heatmap.process import app
from heatmap.process.settings import ProcessSettings
from heatmap.topics import Topics
from heatmap.web.live import LiveView


class Runs:
    """Stand-in engines: the first run ends with ``first_ending``, later ones run on."""

    def __init__(self, first_ending: BaseException) -> None:
        self.first_ending = first_ending
        self.started = 0
        self.running = asyncio.Event()

    def engine(self, *_: object, **__: object) -> Runs:
        return self

    async def run(self) -> None:
        self.started += 1
        if self.started == 1:
            raise self.first_ending
        self.running.set()
        await asyncio.Event().wait()  # runs until cancelled


@pytest.fixture
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "_RETRY_S", (0.0,))


@pytest.mark.parametrize("ending", [asyncio.CancelledError(), ConnectionError("broker gone")],
                         ids=["cancelled-inside-a-kafka-client", "kafka-error"])
def test_a_run_ended_by_a_kafka_client_is_started_again(
        monkeypatch: pytest.MonkeyPatch, no_retry_wait: None, ending: BaseException) -> None:
    async def scenario() -> tuple[int, str | None]:
        runs = Runs(ending)
        monkeypatch.setattr(app, "ActiveEngine", runs.engine)
        supervisor = app.EngineSupervisor(ProcessSettings(), Topics.from_settings(), LiveView())
        supervisor.lease_changed(True)
        await asyncio.wait_for(runs.running.wait(), timeout=10)
        supervisor.lease_changed(False)
        return runs.started, supervisor.status.last_error

    started, last_error = asyncio.run(scenario())
    assert started == 2
    assert last_error is not None


def test_the_lease_moving_stops_the_engine(monkeypatch: pytest.MonkeyPatch,
                                           no_retry_wait: None) -> None:
    async def scenario() -> bool:
        runs = Runs(ConnectionError("first run fails"))
        monkeypatch.setattr(app, "ActiveEngine", runs.engine)
        supervisor = app.EngineSupervisor(ProcessSettings(), Topics.from_settings(), LiveView())
        supervisor.lease_changed(True)
        await asyncio.wait_for(runs.running.wait(), timeout=10)
        task = supervisor._task
        assert task is not None
        supervisor.lease_changed(False)
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert asyncio.run(scenario())


def test_health_is_503_while_the_live_engine_makes_no_progress() -> None:
    settings = ProcessSettings(stall_report_s=10)
    supervisor = app.EngineSupervisor(settings, Topics.from_settings(), LiveView())
    supervisor.holds_lease = True
    supervisor.status.phase = "live"
    assert supervisor.health()[0]
    supervisor.status.last_progress_s -= 11  # stuck in an await for 11 s
    ok, details = supervisor.health()
    assert not ok
    assert str(details["reason"]).startswith("no engine progress for 11 s")
    supervisor.holds_lease = False  # a standby is healthy whatever its last engine did
    assert supervisor.health()[0]


@pytest.mark.parametrize(("host", "advertised", "expected"), [
    ("127.0.0.1", None, "http://127.0.0.1:9402"),
    ("0.0.0.0", None, "http://{hostname}:9402"),  # noqa: S104
    ("::", None, "http://{hostname}:9402"),
    ("0.0.0.0", "https://heat-process-1.desk.example/",  # noqa: S104
     "https://heat-process-1.desk.example"),
])
def test_each_replica_advertises_an_address_that_reaches_it(
        monkeypatch: pytest.MonkeyPatch, host: str, advertised: str | None,
        expected: str) -> None:
    monkeypatch.setattr(app.socket, "gethostname", lambda: "3f2a9c1d0e7b")
    settings = ProcessSettings(web_host=host, web_advertised_url=advertised)
    assert app.advertised_url(settings, 9402) == expected.format(hostname="3f2a9c1d0e7b")
