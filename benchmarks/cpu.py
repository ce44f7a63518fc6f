"""Who used the cores during a measurement: CPU per process (with its children) and for
the whole machine, in cores (CPU seconds per wall second). On a shared machine this
says whether a latency was the pipeline's own or a wait for a core."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

import psutil


def listener_pid(address: str) -> int | None:
    """The pid listening on ``host:port`` or a URL's port (None: not found or not ours)."""
    port = urlsplit(address if "//" in address else f"//{address}").port
    try:
        for connection in psutil.net_connections("tcp"):
            if (connection.status == psutil.CONN_LISTEN and connection.laddr
                    and connection.laddr.port == port):
                return connection.pid
    except psutil.AccessDenied:
        return None
    return None


def _cpu_s(process: psutil.Process, children: bool) -> float:
    """CPU seconds of ``process``, and of its live children with ``children`` (0 once
    it is gone)."""
    total = 0.0
    try:
        members = [process, *process.children(recursive=True)] if children else [process]
        for member in members:
            times = member.cpu_times()
            total += times.user + times.system
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return total


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class CpuShares:
    """Cores each named process and the machine used from construction to :meth:`stop`;
    the processes named in ``with_children`` are counted with their children (a
    PostgreSQL server's backends)."""

    def __init__(self, pids: Mapping[str, int | None], with_children: Collection[str] = ()
                 ) -> None:
        self._children = set(with_children)
        self._processes = {}
        for name, pid in pids.items():
            if pid is None:
                continue
            try:
                self._processes[name] = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
        self._started = {name: self._cpu_s(name) for name in self._processes}
        self._machine_started = _machine_busy_s()
        self._wall_started = time.monotonic()

    def _cpu_s(self, name: str) -> float:
        return _cpu_s(self._processes[name], name in self._children)

    def stop(self) -> dict[str, float]:
        """Cores per name, ``machine`` (every core's busy time, other work included) and
        ``cores`` (how many the machine has)."""
        wall_s = time.monotonic() - self._wall_started
        shares = {name: (self._cpu_s(name) - self._started[name]) / wall_s
                  for name in self._processes}
        shares["machine"] = (_machine_busy_s() - self._machine_started) / wall_s
        shares["cores"] = float(psutil.cpu_count() or 0)
        return shares
