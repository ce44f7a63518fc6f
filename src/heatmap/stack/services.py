"""``heat`` commands as child processes: started with an environment of their own, read
through their web endpoints (``/health``, ``/metrics``), stopped or killed by their pid.

``heat demo`` runs its pipeline this way; the benchmarks and the integration tests run
their services with the same class.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from heatmap.stack import ports

HEAT = [sys.executable, "-m", "heatmap.cli.main"]
_HTTP_TIMEOUT_S = 5.0
# The web server's start-up log line (JSON) names where it listens: "url": "http://...".
_LOGGED_URL = re.compile(r'"url": "(http://[^"]+)"')


class ServiceError(RuntimeError):
    """A child service exited or never answered; the message names its log."""


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ``HEAT_`` setting, plus ``settings``, so
    a child sees exactly the configuration its parent gives it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEAT_")}
    env.update(settings)
    return env


class HeatService:
    """One ``heat <command>`` child; its output (stdout and stderr) is appended to
    ``log_path``.

    With ``port_setting`` (e.g. ``HEAT_WEB_PORT``) the child serves its web endpoints on
    ``port`` (default: a free one) and :attr:`url` is known at once; without, ``env``
    decides the port (``0``: any free one) and :attr:`url` comes from the child's
    start-up log line. ``health_path`` is where its health answers (the ingest
    services serve ``/healthz``); with ``own_session`` the child does not get the
    terminal's Ctrl-C, so its parent stops it in its own order.
    """

    def __init__(self, command: list[str], env: Mapping[str, str], log_path: Path,
                 port_setting: str | None = None, *, port: int | None = None,
                 health_path: str = "/health", own_session: bool = False) -> None:
        self.name = log_path.stem
        self.log_path = log_path
        self.health_path = health_path
        self.ended_on_purpose = False  # stop() or kill() was called
        self._known_url = ""
        child_settings = dict(env)
        if port_setting is not None:
            web_port = port or ports.free_port()
            child_settings[port_setting] = str(web_port)
            self._known_url = f"http://{ports.LOOPBACK}:{web_port}"
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [*HEAT, *command], env=child_settings, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=own_session)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        """Everything the child wrote so far."""
        return self.log_path.read_text(errors="replace")

    @property
    def url(self) -> str:
        """The web server's base URL (``http://127.0.0.1:9402``): on the port given at the
        start, else the last one its log names ('' before the start-up line)."""
        if self._known_url:
            return self._known_url
        found = _LOGGED_URL.findall(self.log_text())
        return found[-1] if found else ""

    def _get(self, path: str) -> tuple[int, bytes]:
        """(HTTP status, body) of ``path``; (0, b"") while the child does not answer."""
        base = self.url
        if not base:
            return 0, b""
        try:
            with urllib.request.urlopen(base + path,  # noqa: S310 - http to the child only
                                        timeout=_HTTP_TIMEOUT_S) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def health_response(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON object) of its health; (0, {}) while it does not answer, and
        {} for a body that is not a JSON object."""
        status, body = self._get(self.health_path)
        if not status:
            return 0, {}
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            return status, {}
        return status, parsed if isinstance(parsed, dict) else {}

    def health(self) -> dict[str, Any]:
        """The health body ({} while it does not answer)."""
        return self.health_response()[1]

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
        """Poll until ``condition(self)`` (every ``every_s`` seconds); returns the
        monotonic time it held. ServiceError when the child exits or ``timeout_s``
        seconds pass."""
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

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, then kill -9 after ``timeout_s`` seconds; returns the exit code."""
        self.ended_on_purpose = True
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait()

    def kill(self) -> None:
        """kill -9 (nothing when it has exited already)."""
        self.ended_on_purpose = True
        if self.running():
            self.process.kill()
            self.process.wait(timeout=30)
