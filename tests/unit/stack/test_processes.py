import sys
from pathlib import Path

from heatmap.stack import processes
from support.waiting import wait_until


def test_spawn_find_and_terminate(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker-arg")
    pid_path = tmp_path / "sleeper.pid"
    pid = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)", marker],
                          tmp_path / "sleeper.log", pid_path)
    assert processes.running_pid(pid_path, marker) == pid
    assert processes.terminate(pid, marker, timeout_s=10) is False
    assert not processes.is_running(pid, marker)
    # The pid file is now stale: it is recognised and removed.
    assert processes.running_pid(pid_path, marker) is None
    assert not pid_path.exists()


def test_a_process_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    marker = str(tmp_path / "stubborn")
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ignoring SIGTERM', flush=True); time.sleep(60)")
    log = tmp_path / "log"
    pid = processes.spawn([sys.executable, "-c", code, marker], log, tmp_path / "pid")
    wait_until(lambda: "ignoring SIGTERM" in log.read_text(), timeout_s=30)
    assert processes.terminate(pid, marker, timeout_s=1) is True
    assert not processes.is_running(pid, marker)


def test_a_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    pid_path = tmp_path / "pid"
    pid_path.write_text("1\n")
    assert processes.running_pid(pid_path, "/definitely/not/in/init/cmdline") is None
