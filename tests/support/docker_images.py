"""A Docker engine and the images the deployment test runs, built on this machine.

No image registry is reachable here, so every image comes from a Debian bookworm base
made with ``debootstrap --variant=minbase`` and ``docker import``: stand-ins for the
third-party images (``tests/deploy/images``) and the project's own images on a stand-in
of ``python:3.11-slim``. Images are kept between runs and rebuilt when their inputs
change (Docker's layer cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from heatmap.stack import kafka
from support.waiting import wait_until

IMAGES_DIR = Path(__file__).resolve().parents[1] / "deploy" / "images"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
BASE_IMAGE = "heat-standin/debian:bookworm"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The tags the compose file's image variables are pointed at.
STANDINS = {
    "HEAT_PYTHON_IMAGE": ("python", "heat-standin/python:3.11"),
    "HEAT_KAFKA_IMAGE": ("kafka", "heat-standin/kafka:4.0.2"),
    "HEAT_TIMESCALEDB_IMAGE": ("timescaledb", "heat-standin/timescaledb:2.28.3-pg15"),
    "HEAT_PROMETHEUS_IMAGE": ("prometheus", "heat-standin/prometheus:2"),
    "HEAT_ALERTMANAGER_IMAGE": ("alertmanager", "heat-standin/alertmanager:0"),
}


class DockerUnavailableError(RuntimeError):
    """Docker could not be started or an image could not be built."""


def run(command: list[str], timeout_s: float = 1800, **kwargs: object
        ) -> subprocess.CompletedProcess[str]:
    """Run a command; DockerUnavailableError with its output when it fails."""
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                               **kwargs)  # type: ignore[call-overload]
    if completed.returncode != 0:
        raise DockerUnavailableError(f"{' '.join(command[:4])} ... failed "
                                f"({completed.returncode}):\n{completed.stdout[-3000:]}"
                                f"{completed.stderr[-3000:]}")
    return completed


def engine_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@dataclass
class DockerEngine:
    """The Docker daemon: the running one, or one started here (stopped by ``stop``)."""

    state_dir: Path
    started: subprocess.Popen[bytes] | None = None

    @classmethod
    def ensure(cls, state_dir: Path, timeout_s: float = 60) -> DockerEngine:
        for tool in ("docker", "dockerd", "docker-compose", "debootstrap"):
            if shutil.which(tool) is None:
                raise DockerUnavailableError(
                    f"{tool} not found: run `make test-deploy`, which installs docker.io, "
                    "docker-compose and debootstrap")
        engine = cls(state_dir)
        if engine_answers():
            return engine
        state_dir.mkdir(parents=True, exist_ok=True)
        with open(state_dir / "dockerd.log", "ab") as log:
            process = subprocess.Popen(
                ["dockerd", "--pidfile", str(state_dir / "dockerd.pid")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        engine.started = process
        wait_until(lambda: engine_answers() or process.poll() is not None, timeout_s,
                   interval_s=0.5, message="dockerd did not answer")
        if process.poll() is not None:
            log_text = (state_dir / "dockerd.log").read_text()[-3000:]
            raise DockerUnavailableError(f"dockerd exited:\n{log_text}")
        return engine

    def stop(self, timeout_s: float = 90) -> None:
        """Stop the daemon started here and reap it (an unreaped child stays in /proc)."""
        if self.started is None:
            return
        self.started.terminate()
        try:
            self.started.wait(timeout_s)
        except subprocess.TimeoutExpired:
            # dockerd stops its containers first; one that ignores that is not this
            # test's concern once the stack is down.
            self.started.kill()
            self.started.wait(timeout_s)


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag],
                          capture_output=True).returncode == 0


def build_base_image(work_dir: Path) -> str:
    """The Debian bookworm base (minbase, with updates and security sources)."""
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    rootfs = work_dir / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    run(["debootstrap", "--variant=minbase", "--include=ca-certificates", "bookworm",
         str(rootfs), DEBIAN_MIRROR])
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {DEBIAN_MIRROR} bookworm main\n"
        f"deb {DEBIAN_MIRROR} bookworm-updates main\n"
        f"deb {DEBIAN_SECURITY_MIRROR} bookworm-security main\n")
    # The images trust what this machine trusts (a proxy's own CA, say), so pip and apt
    # inside builds reach the registries the machine reaches.
    shutil.copy(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    return BASE_IMAGE


def build(context: Path, tag: str, base: str, dockerfile: Path | None = None) -> None:
    """``docker build`` with the classic builder (no buildx here)."""
    command = ["docker", "build", "--quiet", "--build-arg", f"BASE_IMAGE={base}", "-t", tag]
    if dockerfile is not None:
        command += ["-f", str(dockerfile)]
    run([*command, str(context)], env={**os.environ, "DOCKER_BUILDKIT": "0"})


def timescaledb_files(bin_dir: Path) -> tuple[list[Path], list[Path]]:
    """The extension's libraries and SQL files in the private PostgreSQL copy that the
    TimescaleDB build installs (``<prefix>/lib/postgresql/15/bin`` is ``bin_dir``)."""
    prefix = bin_dir.parents[3]
    libraries = sorted((prefix / "lib/postgresql/15/lib").glob("timescaledb*.so"))
    extension = sorted((prefix / "share/postgresql/15/extension").glob("timescaledb*"))
    if not libraries or not extension:
        raise DockerUnavailableError(f"no TimescaleDB build under {prefix}")
    return libraries, extension


def build_standins(work_dir: Path, timescaledb_bin_dir: Path, cache_dir: Path
                   ) -> dict[str, str]:
    """Every stand-in image; returns the compose variables that select them."""
    base = build_base_image(work_dir)
    for name, tag in STANDINS.values():
        context = work_dir / name
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(IMAGES_DIR / name, context)
        if name == "kafka":
            shutil.copytree(kafka.resolve_jars(cache_dir), context / "libs")
        if name == "timescaledb":
            libraries, extension = timescaledb_files(timescaledb_bin_dir)
            for folder, files in (("lib", libraries), ("extension", extension)):
                (context / "timescaledb" / folder).mkdir(parents=True)
                for path in files:
                    shutil.copy(path, context / "timescaledb" / folder / path.name)
        build(context, tag, base)
    return {variable: tag for variable, (_, tag) in STANDINS.items()}


def scratch_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="images-", dir=root))
