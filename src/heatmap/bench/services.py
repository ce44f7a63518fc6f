"""``heat process`` and ``heat sink`` as real child processes of the pipeline benchmark:
started with their own environment and web port, read through ``/metrics`` and
``/health``, stopped or killed by their pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

from heatmap.stack import ports

HEAT = [sys.executable, "-m", "heatmap.cli.main"]
_HTTP_TIMEOUT_S = 5.0


class ServiceError(RuntimeError):
    """A child service exited or never answered; the message names its log."""


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ``HEAT_`` setting, plus ``settings``, so
    a child sees exactly the configuration the benchmark gives it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEAT_")}
    env.update(settings)
    return env


class HeatService:
    """One ``heat <command>`` child on its own web port; output goes to ``log_path``.

    ``port`` is the web port (default: a free one); ``health_path`` where its health
    answers (the ingest services serve ``/healthz``); with ``own_session`` the child
    does not get the terminal's Ctrl-C, so its parent stops it in its own order.
    """

    def __init__(self, command: list[str], env: Mapping[str, str], log_path: Path,
                 port_setting: str, *, port: int | None = None, health_path: str = "/health",
                 own_session: bool = False) -> None:
        self.name = log_path.stem
        self.log_path = log_path
        self.port = port or ports.free_port()
        self.url = f"http://{ports.LOOPBACK}:{self.port}"
        self.health_path = health_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - open while it runs
        self.process = subprocess.Popen(
            [*HEAT, *command], env={**env, port_setting: str(self.port)}, stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=own_session)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path,  # noqa: S310 - loopback http only
                                        timeout=_HTTP_TIMEOUT_S) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def health(self) -> dict[str, Any]:
        """The ``/health`` body ({} while it does not answer)."""
        status, body = self._get(self.health_path)
        if not status:
            return {}
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics`` by name with its labels, e.g.
        ``heat_process_events_total`` or ``heat_sink_rows_total{table="frames"}``."""
        status, body = self._get("/metrics")
        if status != 200:
            return {}
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                labels = ",".join(f'{key}="{value}"' for key, value in
                                  sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def histogram(self, name: str) -> list[tuple[float, float]]:
        """(upper bound, cumulative count) of the histogram ``name``, ascending."""
        buckets = [(float(key.split('le="')[1].split('"')[0]), value)
                   for key, value in self.metrics().items()
                   if key.startswith(f"{name}_bucket{{")]
        return sorted(buckets)

    def wait_for(self, condition: Callable[[HeatService], bool], timeout_s: float,
                 what: str, every_s: float = 0.05) -> float:
        """Poll until ``condition(self)``; returns the monotonic time it held.
        ServiceError when the child exits or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            if condition(self):
                return time.monotonic()
            if not self.running():
                raise ServiceError(f"{self.name} exited ({self.process.returncode}) before "
                                    f"{what}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.name}: no {what} within {timeout_s:.0f} s; "
                                    f"see {self.log_path}")
            time.sleep(every_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, then kill after ``timeout_s``."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def kill(self) -> None:
        """kill -9."""
        if self.running():
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()


def live(service: HeatService) -> bool:
    """The processor worker runs the engine live."""
    return service.health().get("phase") == "live"
