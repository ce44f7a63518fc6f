"""A minimal Faust app run as a real worker process by the integration tests.

It reads JSON records ``{"n": int}`` from ``$SOURCE_TOPIC`` and writes
``{"n", "doubled"}`` under the same key to ``$SINK_TOPIC``.
"""

from __future__ import annotations

import json
import os

import faust

app = faust.App(
    os.environ["FAUST_APP_ID"],
    broker=f"kafka://{os.environ['HEAT_KAFKA_BOOTSTRAP']}",
    datadir=os.environ["FAUST_DATADIR"],
    web_enabled=False,
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    broker_commit_every=10,
)
source = app.topic(os.environ["SOURCE_TOPIC"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["SINK_TOPIC"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def double(stream):
    async for key, value in stream.items():
        payload = json.loads(value)
        payload["doubled"] = payload["n"] * 2
        await sink.send(key=key, value=json.dumps(payload).encode())


if __name__ == "__main__":
    app.main()
