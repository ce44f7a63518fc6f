"""Start, find and stop the stack's long-running processes through pid files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def spawn(argv: list[str], log_path: Path, pid_path: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start ``argv`` detached in its own session, output appended to ``log_path``.

    Returns the pid, also written to ``pid_path``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True, close_fds=True,
        )
    # Popen can return while the child is still between fork and exec; wait
    # until /proc shows the new program so pid-file checks see its command line.
    deadline = time.monotonic() + 5.0
    while argv[-1] not in (_cmdline(process.pid) or "") and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.01)
    pid_path.write_text(f"{process.pid}\n")
    return process.pid


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return None


def is_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def is_running(pid: int, marker: str) -> bool:
    """Whether ``pid`` is alive and its command line contains ``marker``.

    The marker (a path only our process has on its command line) guards
    against a recycled pid after a crash or reboot.
    """
    cmdline = _cmdline(pid)
    return cmdline is not None and marker in cmdline and is_alive(pid)


def running_pid(pid_path: Path, marker: str) -> int | None:
    """The live pid recorded in ``pid_path``; a stale pid file is removed."""
    try:
        pid = int(pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if is_running(pid, marker):
        return pid
    pid_path.unlink(missing_ok=True)
    return None


def _reap(pid: int) -> None:
    # Our own children must be waited for, or they stay as zombies.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, marker: str, timeout_s: float) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout_s``, then SIGKILL its process group.

    Returns True when the process had to be killed.
    """
    if not is_running(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_running(pid, marker):
            return False
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    for _ in range(50):
        _reap(pid)
        if not is_running(pid, marker):
            break
        time.sleep(0.1)
    return True
