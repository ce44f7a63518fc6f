"""What the tests add to the product's :class:`heatmap.stack.services.HeatService`: the
environment of a test's services, a liveness check that fails the test with the child's
log, and a Kafka broker of a test's own to kill."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka
from heatmap.stack.kafka import KafkaBrokerConfig
from heatmap.stack.ports import free_port
from heatmap.stack.services import HeatService, child_env
from heatmap.stack.settings import StackSettings


def service_env(bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    """This process's environment without any HEAT_ setting, pointed at ``bootstrap``
    and the topics under ``prefix``, plus ``extra``."""
    return child_env(**{"HEAT_KAFKA_BOOTSTRAP": bootstrap, "HEAT_TOPIC_PREFIX": prefix,
                        "PYTHONPATH": os.environ.get("PYTHONPATH", ""), **extra})


def alive(service: HeatService) -> bool:
    """True while ``service`` runs; fails the test with the end of its log once it exited."""
    assert service.running(), service.log_text()[-4000:]
    return True


class KafkaBroker:
    """A Kafka broker of its own (free ports, data under ``home``) that a test may kill -9
    and start again on the same ports and data; the session's broker is never touched."""

    def __init__(self, home: Path, heap_mb: int = 512) -> None:
        settings = StackSettings()
        self.config = KafkaBrokerConfig(home, free_port(), free_port(), heap_mb)
        self.java = kafka.java_executable(settings.java_home)
        self.lib_dir = kafka.resolve_jars(settings.cache_dir, settings.maven_command)
        self.pid: int | None = None

    @property
    def bootstrap(self) -> str:
        return self.config.bootstrap

    def start(self, timeout_s: float = 120) -> None:
        self.pid = kafka.start_broker(self.config, self.java, self.lib_dir)
        kafka.wait_until_ready(KafkaConnection(bootstrap_servers=self.bootstrap), timeout_s,
                               pid=self.pid)

    def kill(self) -> None:
        """kill -9 (no-op when not running)."""
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)  # our child: reap it
        self.pid = None
