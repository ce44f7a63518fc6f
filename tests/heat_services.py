"""``heat`` service commands run as real child processes by the integration tests, and a
Kafka broker of a test's own to kill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka
from heatmap.stack.kafka import KafkaBrokerConfig
from heatmap.stack.ports import free_port
from heatmap.stack.settings import StackSettings

HEAT = [sys.executable, "-m", "heatmap.cli.main"]


def service_env(bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    """This process's environment without any HEAT_ setting, pointed at ``bootstrap``
    and the topics under ``prefix``, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEAT_")}
    env.update({"HEAT_KAFKA_BOOTSTRAP": bootstrap, "HEAT_TOPIC_PREFIX": prefix,
                "PYTHONPATH": os.environ.get("PYTHONPATH", ""), **extra})
    return env


class HeatService:
    """One ``heat <command>`` child process, its output in ``log_path``."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.ended = False  # stopped or killed on purpose
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([*HEAT, *command], env=env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        assert self.process.poll() is None, self.log()[-4000:]
        return True

    def url(self) -> str:
        """The web server's URL from the start-up log line ('' before it)."""
        found = re.findall(r'"url": "(http://[^"]+)"', self.log())
        return found[-1] if found else ""

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of ``/health``; (0, {}) while it does not answer."""
        url = self.url()
        if not url:
            return 0, {}
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:  # noqa: S310 (http only)
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (OSError, ValueError):
            return 0, {}

    def stop(self) -> int:
        self.ended = True
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        """kill -9."""
        self.ended = True
        self.process.kill()
        self.process.wait(timeout=30)


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
