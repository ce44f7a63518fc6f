"""The project's ``docker-compose.yml`` started for real, under its own project name.

The stack runs with stand-in images (``support.docker_images``), random secrets in an
env file of its own and free loopback ports, so it never meets a developer's stack.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import ports
from support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SECRETS = ("HEAT_ADMIN_PASSWORD", "HEAT_WRITER_PASSWORD", "HEAT_READER_PASSWORD",
           "GRAFANA_ADMIN_PASSWORD", "HEAT_KAFKA_BROKER_PASSWORD", "HEAT_KAFKA_ADMIN_PASSWORD",
           "HEAT_KAFKA_INGEST_PASSWORD", "HEAT_KAFKA_PROCESS_PASSWORD",
           "HEAT_KAFKA_SINK_PASSWORD", "HEAT_KAFKA_BOT_PASSWORD")
# The Kafka users the tests log in as from the host: the admin over PLAIN (as the init
# job does), every other one as its SCRAM user.
KAFKA_USERS = {"admin": "heat-admin", "ingest": "heat-ingest", "process": "heat-process",
               "sink": "heat-sink", "bot": "heat-bot"}
HOST_PORTS = ("HEAT_KAFKA_HOST_PORT", "HEAT_DATABASE_HOST_PORT", "HEAT_PROMETHEUS_HOST_PORT",
              "HEAT_ALERTMANAGER_HOST_PORT", "HEAT_GRAFANA_HOST_PORT", "HEAT_KAFKA_2_HOST_PORT",
              "HEAT_KAFKA_3_HOST_PORT")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as received: redirects are not followed."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_get(url: str, params: dict[str, str] | None = None, timeout_s: float = 10,
             token: str | None = None) -> Answer:
    """GET ``url`` (with ``params`` and a bearer ``token``); errors and redirects are
    answers too."""
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url)  # noqa: S310  (the tests' own http:// URLs)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()},
                          response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()},
                      error.read())


class ComposeError(AssertionError):
    """A compose command failed; its output says why."""


def stack_env(settings: dict[str, str]) -> dict[str, str]:
    """The env file's variables: fresh secrets, free ports, then ``settings`` (the
    stand-in images, the pipeline's settings)."""
    taken: set[int] = set()
    env = {name: secrets.token_hex(16) for name in SECRETS}
    for name in HOST_PORTS:
        env[name] = str(ports.pick(None, taken))
        taken.add(int(env[name]))
    return {**env,
            # Each processor replica gets a free port of its own.
            "HEAT_PROCESS_HOST_PORTS": f"{ports.LOOPBACK}:",
            "HEAT_ALERT_WEBHOOK_URL": "none",
            # Small heaps: the whole stack shares two cores and the test's own clients.
            "HEAT_KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m", **settings}


@dataclass
class ComposeStack:
    """``docker-compose -p PROJECT --env-file ENV -f FILE...`` for one test session."""

    project: str
    env_file: Path
    files: tuple[str, ...] = ("docker-compose.yml",)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, project: str, folder: Path, settings: dict[str, str],
               files: tuple[str, ...] = ("docker-compose.yml",)) -> ComposeStack:
        env = stack_env(settings)
        env_file = folder / f"{project}.env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        return cls(project, env_file, files, env)

    def command(self, *args: str) -> list[str]:
        files = [part for name in self.files for part in ("-f", str(REPO / name))]
        return ["docker-compose", "--project-directory", str(REPO), "-p", self.project,
                "--env-file", str(self.env_file), *files, *args]

    def run(self, *args: str, timeout_s: float = 1800, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(self.command(*args), capture_output=True, text=True,
                                   timeout=timeout_s, cwd=REPO,
                                   env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                        "DOCKER_BUILDKIT": "0"})
        if check and completed.returncode != 0:
            raise ComposeError(f"docker-compose {' '.join(args)} failed "
                                f"({completed.returncode}):\n{completed.stdout[-4000:]}"
                                f"{completed.stderr[-4000:]}")
        return completed

    def containers(self, service: str, every: bool = False) -> list[str]:
        """Container ids of ``service``: the running ones, or ``every`` one (exited too)."""
        found = self.run("ps", "-q", service).stdout.split()
        return found if every else [c for c in found if self.state(c)["Running"]]

    def inspect(self, container: str) -> dict[str, Any]:
        found = subprocess.run(["docker", "inspect", container], capture_output=True,
                               text=True, check=True)
        return json.loads(found.stdout)[0]  # type: ignore[no-any-return]

    def state(self, container: str) -> dict[str, Any]:
        return self.inspect(container)["State"]  # type: ignore[no-any-return]

    def health(self, container: str) -> str:
        """``healthy``, ``unhealthy``, ``starting``, or the state when it has no check."""
        state = self.state(container)
        return str(state.get("Health", {}).get("Status") or state["Status"])

    def host_port(self, container: str, private_port: int) -> int | None:
        """The published port; None while the container is not running."""
        published = self.inspect(container)["NetworkSettings"]["Ports"] or {}
        bindings = published.get(f"{private_port}/tcp")
        return int(bindings[0]["HostPort"]) if bindings else None

    def hostname(self, container: str) -> str:
        return str(self.inspect(container)["Config"]["Hostname"])

    def logs(self, service: str) -> str:
        return self.run("logs", "--no-color", service, check=False).stdout

    def create_token(self, name: str) -> str:
        """A read token for every desk, made as a desk's administrator would."""
        made = self.run("run", "--rm", "tokens", "create", "--name", name, "--all-desks",
                        "--scope", "read")
        return made.stdout.strip().splitlines()[-1]

    def wait_healthy(self, services: list[str], timeout_s: float) -> None:
        def unhealthy() -> list[str]:
            """``service:state`` of each service not running or not healthy (one look)."""
            found = []
            for service in services:
                states = [self.health(container) for container in self.containers(service)]
                found += [f"{service}:{state}" for state in states or ["not running"]
                          if state != "healthy"]
            return found

        wait_until(lambda: not unhealthy(), timeout_s, interval_s=2,
                   message=lambda: f"not healthy after {timeout_s} s: {unhealthy()}")

    def url(self, variable: str, path: str = "") -> str:
        return f"http://{ports.LOOPBACK}:{self.env[variable]}{path}"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{ports.LOOPBACK}:{self.env['HEAT_KAFKA_HOST_PORT']}"

    def ca_file(self) -> Path:
        """The stack's CA on the host, read as docs/deploy.md tells an operator to."""
        path = self.env_file.with_name(f"{self.project}-ca.pem")
        if not path.exists():
            shown = self.run("run", "--rm", "--no-deps", "--entrypoint", "cat", "tls",
                             "/tls/ca/ca.pem")
            path.write_text(shown.stdout)
        return path

    def kafka_connection(self, client: str = "admin", bootstrap: str | None = None
                         ) -> KafkaConnection:
        """``client`` (a key of :data:`KAFKA_USERS`) on the published listener."""
        return KafkaConnection(
            bootstrap_servers=bootstrap or self.kafka_bootstrap, client_id=f"deploy-{client}",
            security_protocol="SASL_SSL",
            sasl_mechanism="PLAIN" if client == "admin" else "SCRAM-SHA-512",
            sasl_username=KAFKA_USERS[client],
            sasl_password=SecretStr(self.env[f"HEAT_KAFKA_{client.upper()}_PASSWORD"]),
            ssl_cafile=self.ca_file())

    @property
    def admin_database_url(self) -> str:
        return self.database_url()

    def database_url(self, database: str = "heat", sslmode: str = "verify-full") -> str:
        """As the admin, over TLS with the server's name checked against the CA."""
        query = urllib.parse.urlencode({"sslmode": sslmode, "sslrootcert": str(self.ca_file())})
        return (f"postgresql://heat_admin:{self.env['HEAT_ADMIN_PASSWORD']}@{ports.LOOPBACK}:"
                f"{self.env['HEAT_DATABASE_HOST_PORT']}/{database}?{query}")


LONG_RUNNING = ("kafka", "timescaledb", "prometheus", "alertmanager", "ingest", "process",
                "sink")


def start_stack(project: str, settings: dict[str, str], files: tuple[str, ...],
                folder: Path, without: tuple[str, ...] = ()) -> ComposeStack:
    """Build, ``up -d`` (with ``without`` scaled to zero) and wait until healthy;
    ``settings`` (images, pipeline settings) go into the stack's env file."""
    stack = ComposeStack.create(project, folder, settings, files)
    stack.run("down", "-v", "--remove-orphans", check=False)  # left by an interrupted run
    stack.run("build")
    stack.run("up", "-d", *(part for name in without for part in ("--scale", f"{name}=0")))
    services = [name for name in LONG_RUNNING if name not in without]
    if "docker-compose.cluster.yml" in files:
        services += ["kafka-2", "kafka-3"]
    stack.wait_healthy(services, timeout_s=600)
    return stack


def process_health(stack: ComposeStack, container: str) -> dict[str, Any] | None:
    """A processor replica's ``/health`` body (its URL and the active replica's)."""
    port = stack.host_port(container, 9402)
    if port is None:
        return None
    url = f"http://{ports.LOOPBACK}:{port}/health"
    try:
        return http_get(url, timeout_s=5).json()  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def active_and_standbys(stack: ComposeStack) -> tuple[str, list[str]]:
    """The processor container holding the lease, and the others (waits for one)."""
    def split() -> tuple[str, list[str]] | None:
        replicas = stack.containers("process")
        bodies = {container: process_health(stack, container) for container in replicas}
        active = [container for container, body in bodies.items()
                  if body and body.get("url") == body.get("active_url")]
        if len(active) != 1:
            return None
        return active[0], [container for container in replicas if container != active[0]]

    return wait_until(split, 120, interval_s=1, message="no single active processor replica")
