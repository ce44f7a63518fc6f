"""``heat stack``: bring the local Kafka broker and PostgreSQL cluster up and down."""

from __future__ import annotations

import fcntl
import json
import shlex
import shutil
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict, TypeGuard
from urllib.parse import urlsplit, urlunsplit

from heatmap import preflight
from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka, kafka_security, postgres, processes
from heatmap.stack.kafka import KafkaBrokerConfig
from heatmap.stack.kafka_security import SecurityFiles
from heatmap.stack.ports import pick
from heatmap.stack.postgres import PostgresClusterConfig
from heatmap.stack.settings import StackSettings
from heatmap.topics import topic_specs

Step = Callable[[str], None]


@dataclass
class StackState:
    """What ``heat stack up`` started, persisted as ``stack.json`` in the state directory."""

    kafka_bootstrap: str
    kafka_external: bool
    kafka_port: int | None
    kafka_controller_port: int | None
    database_url: str
    database_external: bool
    postgres_port: int | None
    postgres_root: str | None
    topic_prefix: str
    # Absent from the records of stacks started before the secure mode existed.
    kafka_security_dir: str | None = None
    # The root certificate of the local cluster's TLS (None: an external database, or
    # a state recorded before the local cluster served TLS).
    database_sslrootcert: str | None = None
    # The local cluster takes TCP clients over TLS only (a secure stack).
    database_tls_only: bool = False

    @property
    def kafka_secure(self) -> bool:
        return self.kafka_security_dir is not None

    def security_files(self) -> SecurityFiles | None:
        return None if self.kafka_security_dir is None else SecurityFiles(
            Path(self.kafka_security_dir))

    def env_lines(self, client: str | None = None) -> list[str]:
        """Shell lines so that ``eval "$(heat stack env)"`` points clients at the stack.

        A secure stack needs ``client`` (a key of
        :data:`~heatmap.stack.kafka_security.CLIENT_USERS`): its user, password file
        and the CA. Raises StackError without one, or for an unknown one. A plain-text
        stack gives every client the same lines.
        """
        values = {
            "HEAT_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "HEAT_DATABASE_URL": self.database_url,
            "HEAT_TOPIC_PREFIX": self.topic_prefix,
        }
        files = self.security_files()
        choices = "|".join(kafka_security.CLIENT_USERS)
        if files is not None:
            if client is None:
                raise kafka.StackError(f"the stack's Kafka is secure: name the client, "
                                       f"--service {choices}")
            if client not in kafka_security.CLIENT_USERS:
                raise kafka.StackError(f"unknown service {client!r}: one of {choices}")
            values.update(files.env(client))
        if self.database_sslrootcert is not None:
            values["HEAT_DATABASE_SSLMODE"] = "verify-full"
            values["HEAT_DATABASE_SSLROOTCERT"] = self.database_sslrootcert
        return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


class _KafkaFields(TypedDict):
    kafka_bootstrap: str
    kafka_external: bool
    kafka_port: int | None
    kafka_controller_port: int | None
    kafka_security_dir: str | None


class _DatabaseFields(TypedDict):
    database_url: str
    database_external: bool
    postgres_port: int | None
    postgres_root: str | None
    database_sslrootcert: str | None
    database_tls_only: bool


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    endpoint: str
    pid: int | None
    healthy: bool
    detail: str


class LocalStack:
    """The local stack of one state directory.

    Parameters
    ----------
    settings : StackSettings
        Ports, directories, external endpoints, and (in ``settings.kafka.topics``)
        the prefix and partition counts of the topics ``up`` creates.
    """

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        self.topics = self.settings.kafka.topics
        self.state_dir = self.settings.state_dir
        self.kafka_home = self.state_dir / "kafka"
        self.security_files = SecurityFiles(self.state_dir / "kafka-security")
        self.state_path = self.state_dir / "stack.json"

    # -- state -------------------------------------------------------------------------------

    def load_state(self) -> StackState | None:
        try:
            return StackState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _save_state(self, state: StackState) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(state), indent=2))
        temporary.chmod(0o600)
        temporary.replace(self.state_path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def postgres_cluster(self, port: int, tls_only: bool = False) -> PostgresClusterConfig:
        """The local cluster on ``port``; ``tls_only``: as a secure stack runs it."""
        os_user = postgres.server_os_user(self.settings.postgres_os_user)
        return PostgresClusterConfig(
            root=postgres.cluster_root(self.state_dir, os_user), port=port,
            bin_dir=self.settings.postgres_bin_dir, os_user=os_user,
            fsync=self.settings.postgres_fsync, database=self.settings.database_name,
            tls=True, tls_only=tls_only,
        )

    def _kafka_marker(self) -> str:
        return str(self.kafka_home / "server.properties")

    def kafka_pid(self) -> int | None:
        """Our broker's pid when it runs (a stale pid file is removed)."""
        return processes.running_pid(self.kafka_home / "kafka.pid", self._kafka_marker())

    # -- up ----------------------------------------------------------------------------------

    def up(self, step: Step = lambda _: None, secure: bool = False) -> StackState:
        """Start whatever is not running yet; idempotent. Returns the endpoints.

        ``secure``: the local broker takes clients on SASL_SSL only, each service as a
        SCRAM user of its own under ACLs (:mod:`heatmap.stack.kafka_security`), and the
        local PostgreSQL takes clients over TLS only. A stack started secure stays
        secure; a plain-text broker's data cannot become secure (its users are made
        when the storage is formatted): purge it first.
        """
        with self._locked():
            previous = self.load_state()
            self._check_postgres_programs(previous)
            kafka_fields = self._kafka_up(previous, step, secure)
            tls_only = (secure or kafka_fields["kafka_security_dir"] is not None
                        or bool(previous and previous.database_tls_only))
            database_fields = self._postgres_up(previous, step, tls_only)
            state = StackState(**kafka_fields, **database_fields, topic_prefix=self.topics.prefix)
            self._save_state(state)
            return state

    @property
    def _configured_database_url(self) -> str | None:
        """HEAT_DATABASE_URL (or its _FILE): an existing database to use instead of a local
        one."""
        database = self.settings.database
        return database.admin_url() if database.has_admin_url() else None

    def _database_is_external(self, previous: StackState | None) -> bool:
        return _is_external(self._configured_database_url,
                            previous.database_url if previous and not previous.database_external
                            else None)

    def _check_postgres_programs(self, previous: StackState | None) -> None:
        """Fail before starting anything when the local PostgreSQL could not run."""
        if not self._database_is_external(previous):
            postgres.require_programs(self.settings.postgres_bin_dir)

    def _kafka_up(self, previous: StackState | None, step: Step, secure: bool
                  ) -> _KafkaFields:
        timeout_s = self.settings.start_timeout_s
        configured = self.settings.kafka.bootstrap
        if _is_external(configured, previous.kafka_bootstrap
                        if previous and not previous.kafka_external else None):
            if secure:
                raise kafka.StackError("--secure configures the local broker; "
                                       "HEAT_KAFKA_BOOTSTRAP names an existing one: unset it, "
                                       "or secure that cluster itself")
            bootstrap = configured
            step(f"Using the Kafka cluster at {bootstrap}")
            # An existing broker is expected to run: say so in seconds, not start_timeout_s.
            connection = self._kafka_connection(bootstrap, external=True)
            preflight.require_kafka(
                connection, preflight.PreflightSettings().connect_timeout_s,
                remedy="start it, or unset HEAT_KAFKA_BOOTSTRAP so that `heat stack up` "
                "runs a local broker")
            self._create_topics(connection, step)
            return {"kafka_bootstrap": bootstrap, "kafka_external": True, "kafka_port": None,
                    "kafka_controller_port": None, "kafka_security_dir": None}
        formatted = (self.kafka_home / "data" / "meta.properties").exists()
        was_secure = bool(previous and previous.kafka_secure) or (
            formatted and self.security_files.complete())
        if secure and formatted and not was_secure:
            raise kafka.StackError("the local Kafka was started without --secure and its "
                                   "users are made only on a new broker: `heat stack down "
                                   "--purge`, then `heat stack up --secure`")
        secure = secure or was_secure
        security = self.security_files if secure else None
        if security is not None and not security.complete():
            step("Making the broker's certificates and the SCRAM users' passwords")
            security.ensure()
        running = self.kafka_pid()
        if running and previous and previous.kafka_port and previous.kafka_controller_port:
            port, controller_port = previous.kafka_port, previous.kafka_controller_port
            step(f"Kafka already running (pid {running})")
        else:
            if running:  # running but without a usable record: restart it cleanly
                processes.terminate(running, self._kafka_marker(), self.settings.stop_timeout_s)
            java = kafka.java_executable(self.settings.java_home)
            step("Resolving the Kafka jars with Maven (first run downloads them)")
            lib_dir = kafka.resolve_jars(self.settings.cache_dir, self.settings.maven_command)
            # Keep the ports of an earlier run when free, so exported endpoints stay valid.
            port = pick(previous.kafka_port if previous and previous.kafka_port
                        else self.settings.kafka_port)
            controller_port = pick(
                previous.kafka_controller_port if previous and previous.kafka_controller_port
                else self.settings.kafka_controller_port, taken={port})
            config = KafkaBrokerConfig(self.kafka_home, port, controller_port,
                                       self.settings.kafka_heap_mb, security=security)
            step(f"Starting Kafka (KRaft{', SASL_SSL' if security else ''}) on "
                 f"127.0.0.1:{port}")
            running = kafka.start_broker(config, java, lib_dir)
        bootstrap = f"127.0.0.1:{port}"
        step("Waiting for Kafka to answer metadata requests")
        connection = self._kafka_connection(bootstrap, external=False, secure=secure)
        kafka.wait_until_ready(connection, timeout_s, pid=running)
        self._create_topics(connection, step)
        if security is not None:
            step("ACLs: each service's user may do what it needs, nothing else")
            kafka.create_acls(connection, kafka_security.service_acls(self.topics))
        return {"kafka_bootstrap": bootstrap, "kafka_external": False, "kafka_port": port,
                "kafka_controller_port": controller_port,
                "kafka_security_dir": None if security is None else str(security.directory)}

    def _kafka_connection(self, bootstrap: str, external: bool, secure: bool = False
                          ) -> KafkaConnection:
        """The configured connection (credentials, TLS) to an existing cluster; the
        local broker listens in plain text on loopback, or (``secure``) on SASL_SSL,
        where the stack works as its admin user."""
        if not external and secure:
            return self.security_files.connection(bootstrap, "admin", client_id="heat-stack")
        if not external:
            return KafkaConnection(bootstrap_servers=bootstrap, client_id="heat-stack")
        connection = self.settings.kafka.connection("heat-stack")
        return connection.model_copy(update={"bootstrap_servers": bootstrap})

    def _create_topics(self, connection: KafkaConnection, step: Step) -> None:
        outcomes = kafka.ensure_topics(connection, topic_specs(self.topics))
        created = sum(outcome.outcome == "created" for outcome in outcomes)
        step(f"Topics: {created} created" if created else "Topics: all present")
        for outcome in outcomes:
            if not outcome.ok:
                step(outcome.line())
        failed = [outcome.line() for outcome in outcomes if outcome.outcome == "failed"]
        if failed:
            raise kafka.StackError(f"Kafka refused to create a topic: {failed[0]}")

    def _postgres_up(self, previous: StackState | None, step: Step, tls_only: bool
                     ) -> _DatabaseFields:
        configured = self._configured_database_url
        if configured is not None and self._database_is_external(previous):
            step("Using the PostgreSQL database from HEAT_DATABASE_URL")
            preflight.require_postgres(
                configured, preflight.PreflightSettings().connect_timeout_s,
                remedy="start it, or unset HEAT_DATABASE_URL so that `heat stack up` runs a "
                "local PostgreSQL")
            return {"database_url": configured, "database_external": True,
                    "postgres_port": None, "postgres_root": None, "database_sslrootcert": None,
                    "database_tls_only": False}
        preferred = previous.postgres_port if previous and previous.postgres_port else None
        config = self.postgres_cluster(preferred or self.settings.postgres_port, tls_only)
        # A running cluster is reached on the port it really listens on, even when an
        # interrupted `up` never recorded it.
        listening = postgres.running_port(config)
        if listening is not None:
            config = self.postgres_cluster(listening, tls_only)
        if postgres.pid(config) is not None:
            step(f"PostgreSQL already running (pid {postgres.pid(config)})")
            if postgres.write_hba(config):
                step("PostgreSQL takes clients over TLS only" if tls_only
                     else "PostgreSQL takes clients with or without TLS")
                postgres.reload(config)
            postgres.ensure_database(config, self.settings.start_timeout_s)
        else:
            config = self.postgres_cluster(pick(config.port), tls_only)
            postgres.start_new_or_existing(config, self.settings.start_timeout_s, step)
        return {"database_url": postgres.admin_url(config), "database_external": False,
                "postgres_port": config.port, "postgres_root": str(config.root),
                # A cluster still running from before it served TLS has no certificate yet.
                "database_sslrootcert": (str(config.tls_files.root_cert)
                                         if config.tls_files.exist() else None),
                "database_tls_only": tls_only}

    # -- down / status -----------------------------------------------------------------------

    def down(self, purge: bool = False, step: Step = lambda _: None,
             only: Collection[str] = ("kafka", "postgres")) -> None:
        """Stop both services (or ``only`` those named: ``kafka``, ``postgres``) with
        SIGTERM, wait, then kill; ``purge`` also deletes their data."""
        with self._locked():
            state = self.load_state()
            running = self.kafka_pid() if "kafka" in only else None
            if running:
                step(f"Stopping Kafka (pid {running})")
                if processes.terminate(running, self._kafka_marker(),
                                       self.settings.stop_timeout_s):
                    step("Kafka did not stop in time and was killed")
            # Our cluster lives at a known place: stop it even without a state record.
            config = self.postgres_cluster(self.settings.postgres_port)
            if ("postgres" in only and not (state and state.database_external)
                    and postgres.pid(config) is not None):
                step(f"Stopping PostgreSQL (pid {postgres.pid(config)})")
                postgres.stop(config, self.settings.stop_timeout_s)
            if purge:
                if not (state and state.database_external):
                    shutil.rmtree(config.root, ignore_errors=True)
                shutil.rmtree(self.state_dir, ignore_errors=True)
                step("Removed the stack's data")

    def status(self) -> list[ComponentStatus]:
        state = self.load_state()
        if state is None:
            return []
        components = []
        kafka_pid = self.kafka_pid()
        try:
            names = kafka.topic_names(
                self._kafka_connection(state.kafka_bootstrap, state.kafka_external,
                                       state.kafka_secure))
            product = {spec.name for spec in topic_specs(self.topics)}
            kafka_ok = True
            detail = f"{len(product & names)}/{len(product)} topics"
        except Exception as error:
            kafka_ok, detail = False, type(error).__name__
        components.append(ComponentStatus("kafka", state.kafka_bootstrap,
                                          None if state.kafka_external else kafka_pid,
                                          kafka_ok, detail))
        database_pid = None
        if state.postgres_port and state.postgres_root:
            database_pid = postgres.pid(self.postgres_cluster(state.postgres_port))
        healthy = postgres.is_healthy(state.database_url)
        components.append(ComponentStatus("postgres", _redact(state.database_url), database_pid,
                                          healthy, "select 1 ok" if healthy else "unreachable"))
        return components


def _is_external(configured: str | None, ours: str | None) -> TypeGuard[str]:
    """Whether a configured endpoint names a service the stack must not start.

    After ``eval "$(heat stack env)"`` the environment names our own services;
    those stay ours, so ``up`` restarts them and ``down`` stops them.
    """
    return bool(configured) and configured != ours


def _redact(url: str) -> str:
    """The URL without its password, for display."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
