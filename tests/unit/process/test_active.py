"""Stopping the Kafka clients of an engine run (no broker: the clients here only stop)."""

from __future__ import annotations

import asyncio

import pytest

from heatmap.process.active import stop_client


class LeakingClient:
    """Stops like aiokafka's consumer whose fetch was failing: awaiting its own cancelled
    task lets that task's CancelledError out."""

    async def stop(self) -> None:
        inner = asyncio.ensure_future(asyncio.Event().wait())  # blocks until cancelled
        await asyncio.sleep(0)  # let it start
        inner.cancel()
        await inner


class FailingClient:
    async def stop(self) -> None:
        raise ConnectionError("broker gone")


class SlowClient:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.Event().wait()  # blocks until cancelled


@pytest.mark.parametrize("client", [LeakingClient, FailingClient])
def test_a_client_that_does_not_stop_cleanly_does_not_end_the_caller(client: type) -> None:
    async def end_of_run() -> str:
        await stop_client(client())  # type: ignore[arg-type]
        return "the run's own error is raised next"

    assert asyncio.run(end_of_run()) == "the run's own error is raised next"


def test_cancelling_the_run_while_a_client_stops_still_cancels_it() -> None:
    async def cancel_while_stopping() -> bool:
        client = SlowClient()
        task = asyncio.ensure_future(stop_client(client))  # type: ignore[arg-type]
        await client.stopping.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert asyncio.run(cancel_while_stopping())
