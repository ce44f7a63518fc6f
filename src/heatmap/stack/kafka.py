"""A local Apache Kafka node in KRaft mode (combined broker + controller), alone or as
one of a cluster's nodes (:mod:`heatmap.stack.kafka_cluster`), and the product's topics
on any Kafka (:func:`ensure_topics`).

The jars come from Maven Central through ``infra/kafka/pom.xml`` and are
copied into a cache directory once per POM content; the broker then runs as
a plain Java process.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka import errors as kafka_errors
from kafka.admin import ACL, UserScramCredentialUpsertion
from kafka.errors import KafkaError

from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka_topics, processes
from heatmap.stack.kafka_security import SecurityFiles, write_private
from heatmap.stack.kafka_topics import TopicOutcome
from heatmap.stack.ports import LOOPBACK
from heatmap.topics import TopicSpec

LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
"""


class StackError(RuntimeError):
    """A stack service could not be prepared, started or reached."""


def pom_path() -> Path:
    """The POM that lists the broker's jars (shipped with the package)."""
    return Path(str(resources.files("heatmap.stack") / "resources" / "kafka-pom.xml"))


def java_executable(java_home: Path | None) -> str:
    """The ``java`` to run the broker with; Kafka 4 needs Java 17 or newer."""
    java = str(java_home / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise StackError("java not found: install a Java 17 runtime (openjdk-17-jre-headless)")
    version = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', version)
    if not match or int(match.group(1)) < 17:
        raise StackError(f"Kafka 4 needs Java >= 17; {java} reports: {version.strip()}")
    return java


def resolve_jars(cache_dir: Path, maven_command: str = "mvn") -> Path:
    """Copy the broker's runtime jars into the cache (once per POM content).

    Returns the directory holding the jars.
    """
    pom = pom_path()
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    lib_dir = cache_dir / "kafka" / digest / "lib"
    complete_marker = lib_dir / ".complete"
    if complete_marker.exists():
        return lib_dir
    if shutil.which(maven_command) is None:
        raise StackError(f"{maven_command} not found: install Maven to resolve the Kafka jars")
    staging = lib_dir.with_name(f"lib.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    completed = subprocess.run(
        [maven_command, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        capture_output=True, text=True,
    )
    if completed.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise StackError(f"Maven could not resolve the Kafka jars:\n{completed.stdout[-4000:]}")
    (staging / ".complete").write_text(digest)
    shutil.rmtree(lib_dir, ignore_errors=True)
    staging.rename(lib_dir)
    return lib_dir


@dataclass(frozen=True)
class KafkaBrokerConfig:
    """Everything that decides how one local node (broker and controller) runs.

    Parameters
    ----------
    home : Path
        Broker directory: ``server.properties``, ``data/``, ``server.log``, pid file.
    port, controller_port : int
        Ports of the client listener and of the KRaft controller on ``host``.
    heap_mb : int
        Fixed JVM heap, in MiB.
    host : str
        The loopback address both listeners bind to.
    node_id : int
        This node's id in the cluster.
    quorum_voters : str
        ``controller.quorum.voters`` of a cluster (``id@host:port,...``); empty for a
        node that is its own one-voter quorum.
    internal_replication_factor, internal_min_insync_replicas : int
        Replicas of the broker's own topics (consumer offsets, transaction state) and how
        many must be in sync for a write; also the defaults of topics created without.
    security : SecurityFiles or None
        Certificates and SCRAM passwords of a secure broker (clients on SASL_SSL, ACLs
        enforced); None: one plain-text listener, no authorization.
    """

    home: Path
    port: int
    controller_port: int
    heap_mb: int
    host: str = LOOPBACK
    node_id: int = 1
    quorum_voters: str = ""
    internal_replication_factor: int = 1
    internal_min_insync_replicas: int = 1
    security: SecurityFiles | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def properties_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def pid_path(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def server_properties(self) -> str:
        """The broker's ``server.properties`` text."""
        replicas, in_sync = (str(self.internal_replication_factor),
                             str(self.internal_min_insync_replicas))
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": (self.quorum_voters or
                                         f"{self.node_id}@{self.host}:{self.controller_port}"),
            "listeners": (f"PLAINTEXT://{self.host}:{self.port},"
                          f"CONTROLLER://{self.host}:{self.controller_port}"),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            # The broker's own topics: one replica on one node; on a cluster enough that a
            # lost node neither loses committed offsets or transactions nor stops them.
            "default.replication.factor": replicas,
            "min.insync.replicas": in_sync,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": in_sync,
            # A local stack has a handful of transactional producers; fewer partitions
            # make the first one's start (which creates the topic) quicker.
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": in_sync,
            # Consumers join at once instead of waiting for more members.
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.check.interval.ms": "60000",
            # A restarted node waits for its previous session to expire before it
            # is unfenced; a short session keeps restarts quick on one node.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
            # Large records (checkpoints, correlation matrices) need nothing here: their
            # topics raise max.message.bytes (16 MiB) over the broker-wide
            # message.max.bytes (1 MiB). On Kafka 4.0 replica.fetch.max.bytes,
            # replica.fetch.response.max.bytes and the consumers' fetch sizes are not
            # absolute maxima (a first record batch above them is still returned), and
            # socket.request.max.bytes (100 MiB) admits a 16 MiB produce request.
        }
        if self.security is not None:
            settings.update(self.security.broker_properties(self.host, self.port,
                                                            self.controller_port))
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def is_formatted(self) -> bool:
        return (self.home / "data" / "meta.properties").exists()


def jvm_command(java: str, lib_dir: Path, heap_mb: int, main_class: str,
                args: list[str], home: Path) -> list[str]:
    """The ``java`` command line for a Kafka main class on the cached classpath."""
    return [
        java, f"-Xms{heap_mb}m", f"-Xmx{heap_mb}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={home}",
        "-cp", f"{lib_dir}/*", main_class, *args,
    ]


def start_broker(config: KafkaBrokerConfig, java: str, lib_dir: Path,
                 cluster_id: str | None = None) -> int:
    """Format the KRaft storage when new (with ``cluster_id``: the nodes of one cluster
    share it; None: a new id), then start the broker; returns its pid."""
    config.home.mkdir(parents=True, exist_ok=True)
    # Private: a secure broker's properties hold its own password.
    write_private(config.properties_path, config.server_properties().encode())
    (config.home / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    if not config.is_formatted():
        cluster_id = cluster_id or kafka_uuid()
        # A secure broker's SCRAM users exist from the start, before any listener opens.
        scram_users = ([] if config.security is None
                       else config.security.scram_format_arguments())
        formatted = subprocess.run(
            jvm_command(java, lib_dir, 256, "kafka.tools.StorageTool",
                        # --option=value: no value can be read as an option.
                        ["format", f"--cluster-id={cluster_id}",
                         f"--config={config.properties_path}", *scram_users], config.home),
            capture_output=True, text=True,
        )
        if formatted.returncode != 0:
            raise StackError(f"Kafka storage format failed:\n{formatted.stdout}{formatted.stderr}")
    command = jvm_command(java, lib_dir, config.heap_mb, "kafka.Kafka",
                          [str(config.properties_path)], config.home)
    return processes.spawn(command, config.log_path, config.pid_path, cwd=config.home)


# Ids Kafka reserves (the all-zero "unset" id and the metadata topic's id) are never issued.
_RESERVED_KAFKA_UUIDS = frozenset({bytes(16), bytes(15) + b"\x01"})


def kafka_uuid(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A cluster id as Kafka's ``Uuid.randomUuid()`` makes one.

    16 random bytes in URL-safe base64 without padding; like Kafka, draw again
    for a reserved id or one that starts with ``-`` (command lines would read it
    as an option).
    """
    while True:
        raw = random_bytes()
        text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if raw not in _RESERVED_KAFKA_UUIDS and not text.startswith("-"):
            return text


def admin_client(connection: KafkaConnection, timeout_s: float = 10.0) -> KafkaAdminClient:
    return KafkaAdminClient(**connection.kafka_python(), request_timeout_ms=int(timeout_s * 1000))


def accepts_connections(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """Whether the first bootstrap address accepts a TCP connection (a cheap liveness probe)."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until_ready(connection: KafkaConnection, timeout_s: float, pid: int | None = None
                     ) -> None:
    """Block until the broker answers a metadata request (or fail after ``timeout_s``)."""
    bootstrap = connection.bootstrap_servers
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if pid is not None and not processes.is_alive(pid):
            raise StackError("the Kafka broker exited during start-up")
        if not accepts_connections(bootstrap):
            time.sleep(0.2)
            continue
        try:
            admin = admin_client(connection, timeout_s=5.0)
            try:
                if admin.describe_cluster().get("brokers"):
                    return
            finally:
                admin.close()
        except (KafkaError, OSError, ValueError) as error:
            last_error = error
        time.sleep(0.5)
    raise StackError(f"Kafka at {bootstrap} did not answer within {timeout_s:.0f} s: {last_error}")


def ensure_topics(connection: KafkaConnection, specs: list[TopicSpec], create: bool = True,
                  ready_timeout_s: float = 30.0) -> list[TopicOutcome]:
    """Create the topics of ``specs`` that do not exist yet (with their partitions,
    replication factor and configs) and check those that do; one outcome per spec.

    Returns once every topic that exists has a leader for each partition (within
    ``ready_timeout_s``), so clients can use them at once. With ``create`` False
    nothing is created (a missing topic is reported as such). Idempotent: a topic
    created meanwhile by someone else counts as existing. A request that went to a
    broker that is down is tried again (another broker answers once the cluster has
    fenced it), until ``ready_timeout_s``.
    """
    deadline_s = time.monotonic() + ready_timeout_s
    while True:
        try:
            return _ensure_topics(connection, specs, create, ready_timeout_s)
        except _BROKER_DOWN:
            # kafka-python's admin client sends each request to one broker, and until the
            # cluster fences a dead one its metadata still lists it: a new client picks
            # again a moment later (creating is idempotent).
            if time.monotonic() + _RETRY_PAUSE_S > deadline_s:
                raise
            time.sleep(_RETRY_PAUSE_S)


_BROKER_DOWN = (kafka_errors.KafkaConnectionError, kafka_errors.NodeNotReadyError,
                kafka_errors.RequestTimedOutError)
_RETRY_PAUSE_S = 0.5


def _ensure_topics(connection: KafkaConnection, specs: list[TopicSpec], create: bool,
                   ready_timeout_s: float) -> list[TopicOutcome]:
    admin = admin_client(connection)
    try:
        existing = set(admin.list_topics())
        wanted = [spec for spec in specs if spec.name not in existing]
        refusals: dict[str, str] = {}
        if wanted and create:
            answer = admin.create_topics(
                {spec.name: {"num_partitions": spec.partitions,
                             "replication_factor": spec.replication_factor,
                             "configs": dict(spec.configs)} for spec in wanted},
                raise_errors=False)
            for topic in answer.get("topics", []):
                error = kafka_errors.for_code(topic.get("error_code", 0))
                if error is kafka_errors.TopicAlreadyExistsError:  # created meanwhile
                    existing.add(topic["name"])
                elif error is not kafka_errors.NoError:
                    refusals[topic["name"]] = (topic.get("error_message")
                                               or error.__name__).splitlines()[0]
        fresh = {spec.name for spec in wanted} - existing if create else set()
        present = [spec.name for spec in specs
                   if (spec.name in existing or spec.name in fresh)
                   and spec.name not in refusals]
        admin.wait_for_topics(present, timeout_ms=int(ready_timeout_s * 1000))
        described = {topic["name"]: topic for topic in admin.describe_topics(present)
                     } if present else {}
    finally:
        admin.close()
    outcomes = []
    for spec in specs:
        if spec.name in refusals:
            outcomes.append(kafka_topics.refused(spec, refusals[spec.name]))
        elif spec.name in existing:
            outcomes.append(kafka_topics.found(spec, described[spec.name]))
        elif spec.name in fresh:
            outcomes.append(kafka_topics.created(spec))
        else:
            outcomes.append(kafka_topics.missing(spec))
    return outcomes


def create_acls(connection: KafkaConnection, acls: list[ACL]) -> None:
    """Create ``acls`` as ``connection`` (a super user); an ACL that exists is kept.

    Raises StackError with the broker's first refusal.
    """
    admin = admin_client(connection)
    try:
        answer = admin.create_acls(acls)
    finally:
        admin.close()
    failed: list[Any] = answer.get("failed") or []  # (ACL, error) pairs
    if failed:
        acl, error = failed[0]
        raise StackError(f"Kafka refused the ACL {acl}: {error}")


def upsert_scram_users(connection: KafkaConnection, passwords: dict[str, str],
                       mechanism: str) -> None:
    """Create each user of ``passwords`` (user -> password) with a ``mechanism``
    (``SCRAM-SHA-512``) credential, or replace the one it has, as ``connection`` (a super
    user). The broker stores only a salted hash. Raises StackError with its first
    refusal."""
    admin = admin_client(connection)
    try:
        answer = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, mechanism, password)
             for user, password in passwords.items()])
    finally:
        admin.close()
    refused = {user: error for user, error in answer.items() if error}
    if refused:
        user, error = next(iter(refused.items()))
        raise StackError(f"Kafka refused the SCRAM credential of {user}: {error}")


def delete_topics(connection: KafkaConnection, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a run's own, and those Faust
    made for its workers); returns the names deleted."""
    admin = admin_client(connection)
    try:
        names = [name for name in admin.list_topics() if name.startswith(prefix)]
        if names:
            admin.delete_topics(names)
        return names
    finally:
        admin.close()


def topic_names(connection: KafkaConnection) -> set[str]:
    """Names of the broker's topics; raises StackError when it does not answer."""
    if not accepts_connections(connection.bootstrap_servers):
        raise StackError(f"nothing listens on {connection.bootstrap_servers}")
    admin = admin_client(connection, timeout_s=5.0)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()
