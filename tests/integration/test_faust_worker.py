"""A real Faust worker process consumes from and produces to the real broker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from heatmap.stack.local import StackState

APP = Path(__file__).parent / "apps" / "doubler.py"


def test_faust_worker_transforms_and_commits(stack: StackState, make_topic, subprocess_env,
                                              tmp_path: Path) -> None:
    source, sink = make_topic(partitions=2, stem="source"), make_topic(partitions=2, stem="sink")
    app_id = f"doubler-{uuid.uuid4().hex[:8]}"
    env = {**subprocess_env, "FAUST_APP_ID": app_id, "FAUST_DATADIR": str(tmp_path),
           "SOURCE_TOPIC": source, "SINK_TOPIC": sink}

    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    for n in range(50):
        producer.send(source, key=f"k{n % 7}".encode(), value=json.dumps({"n": n}).encode())
    producer.flush()
    producer.close()

    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, str(APP), "worker", "-l", "info"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        consumer = KafkaConsumer(sink, bootstrap_servers=stack.kafka_bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=1000)
        received: dict[int, tuple[bytes, int]] = {}
        deadline = time.monotonic() + 90
        while len(received) < 50 and time.monotonic() < deadline:
            assert worker.poll() is None, log_path.read_text()[-3000:]
            for record in consumer:
                payload = json.loads(record.value)
                received[payload["n"]] = (record.key, payload["doubled"])
        consumer.close()
        assert sorted(received) == list(range(50)), log_path.read_text()[-3000:]
        assert all(doubled == 2 * n for n, (_, doubled) in received.items())
        assert all(key == f"k{n % 7}".encode() for n, (key, _) in received.items())
    finally:
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(timeout=60)
    assert exit_code == 0, log_path.read_text()[-3000:]

    # The worker committed its progress before it stopped: a restart would not redo work.
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        offsets = admin.list_group_offsets(app_id)[app_id]
    finally:
        admin.close()
    assert sum(meta.offset for tp, meta in offsets.items() if tp.topic == source) == 50
