"""The local broker's secure mode (``heat stack up --secure``): TLS, SCRAM users, ACLs.

Clients reach the broker on one SASL_SSL listener and authenticate with SCRAM-SHA-512;
every service has a user of its own, and the broker's authorizer lets each do only
what it needs (:func:`service_acls`). The files live in one directory under the stack's
state directory (mode 0700), made on first start and never committed:

- ``ca.pem``: the CA that signed the broker's certificate (clients trust it);
- ``broker.pem``: the broker's key (unencrypted PKCS#8, mode 0600) and certificate,
  valid for ``127.0.0.1`` and ``localhost``, as Kafka's PEM key store reads them;
- ``<user>.password``: each SCRAM user's random password (mode 0600).

The CA's key is not kept: nothing signs with it after the first start, and a key
that is not on disk cannot leak. Losing a file means starting afresh
(``heat stack down --purge``).
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from pathlib import Path

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
)
from pydantic import SecretStr

from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.stack import tls
from heatmap.topics import Topics

MECHANISM = "SCRAM-SHA-512"
SECURITY_PROTOCOL = "SASL_SSL"
# The listener name clients use; inter-broker traffic uses it too (see broker_properties).
CLIENT_LISTENER = "SASL_SSL"

# The broker itself (inter-broker requests) and the stack's own admin work (topics,
# ACLs) run as super users; every service has a user of its own.
BROKER_USER = "heat-broker"
ADMIN_USER = "heat-admin"
SERVICE_USERS = {"ingest": "heat-ingest", "process": "heat-process", "sink": "heat-sink",
                 "bot": "heat-bot"}
# Clients `heat stack env --service` knows: the services, and the admin for
# `heat topics ensure` and other operators' tools.
CLIENT_USERS = {**SERVICE_USERS, "admin": ADMIN_USER}
ALL_USERS = (BROKER_USER, *CLIENT_USERS.values())

_PASSWORD_BYTES = 24


@dataclass(frozen=True)
class SecurityFiles:
    """Where the secure broker's certificates and passwords live.

    Parameters
    ----------
    directory : Path
        The stack's ``kafka-security`` directory.
    """

    directory: Path

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_pem_path(self) -> Path:
        return self.directory / "broker.pem"

    def password_path(self, user: str) -> Path:
        return self.directory / f"{user}.password"

    def password(self, user: str) -> str:
        return self.password_path(user).read_text().strip()

    def complete(self) -> bool:
        return (self.ca_path.exists() and self.broker_pem_path.exists()
                and all(self.password_path(user).exists() for user in ALL_USERS))

    def ensure(self) -> None:
        """Make the certificates and passwords that are missing (all of them on first
        start). A partial set is made anew as a whole: a certificate whose CA is gone
        could not be trusted."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        if not (self.ca_path.exists() and self.broker_pem_path.exists()):
            ca_pem, broker_pem = make_certificates()
            write_private(self.broker_pem_path, broker_pem)
            # Public, but kept with the rest: it is only ever read by this user's clients.
            write_private(self.ca_path, ca_pem)
        for user in ALL_USERS:
            if not self.password_path(user).exists():
                # URL-safe characters only: StorageTool's --add-scram syntax and the
                # JAAS configuration would both misread commas, quotes or brackets.
                write_private(self.password_path(user),
                               secrets.token_urlsafe(_PASSWORD_BYTES).encode())

    def connection(self, bootstrap: str, client: str, client_id: str | None = None
                   ) -> KafkaConnection:
        """The connection of ``client`` (a key of :data:`CLIENT_USERS`)."""
        user = CLIENT_USERS[client]
        return KafkaConnection(
            bootstrap_servers=bootstrap, client_id=client_id or user,
            security_protocol=SECURITY_PROTOCOL, sasl_mechanism=MECHANISM,
            sasl_username=user, sasl_password=SecretStr(self.password(user)),
            ssl_cafile=self.ca_path)

    def env(self, client: str) -> dict[str, str]:
        """The ``HEAT_KAFKA_*`` settings of ``client`` (a key of :data:`CLIENT_USERS`)."""
        user = CLIENT_USERS[client]
        return {"HEAT_KAFKA_SECURITY_PROTOCOL": SECURITY_PROTOCOL,
                "HEAT_KAFKA_SASL_MECHANISM": MECHANISM,
                "HEAT_KAFKA_SASL_USERNAME": user,
                "HEAT_KAFKA_SASL_PASSWORD_FILE": str(self.password_path(user)),
                "HEAT_KAFKA_SSL_CAFILE": str(self.ca_path)}

    def scram_format_arguments(self) -> list[str]:
        """StorageTool ``format`` arguments that create every SCRAM user with its password:
        the users exist before the broker first starts, so the broker can authenticate
        its own inter-broker connections."""
        return [f"--add-scram={MECHANISM}=[name={user},password={self.password(user)}]"
                for user in ALL_USERS]

    def broker_properties(self, host: str, port: int, controller_port: int
                          ) -> dict[str, str]:
        """The ``server.properties`` entries of the secure broker (listeners included)."""
        password = self.password(BROKER_USER)
        scram_login = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                       f'username="{BROKER_USER}" password="{password}";')
        # PLAIN with the one user in the file: the controller checks it without the
        # metadata log, which it serves itself (SCRAM users live there).
        plain_login = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                       f'username="{BROKER_USER}" password="{password}" '
                       f'user_{BROKER_USER}="{password}";')
        return {
            # Clients and the broker's own requests use SASL_SSL. The KRaft controller
            # listener is SASL_PLAINTEXT on loopback: nothing but this node ever connects
            # to it, so TLS would guard no traffic another host could see, while SASL
            # still keeps local processes without the broker's password out.
            "listeners": (f"{CLIENT_LISTENER}://{host}:{port},"
                          f"CONTROLLER://{host}:{controller_port}"),
            "advertised.listeners": f"{CLIENT_LISTENER}://{host}:{port}",
            "inter.broker.listener.name": CLIENT_LISTENER,
            "listener.security.protocol.map":
                f"CONTROLLER:SASL_PLAINTEXT,{CLIENT_LISTENER}:{SECURITY_PROTOCOL}",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.{CLIENT_LISTENER.lower()}.{MECHANISM.lower()}.sasl.jaas.config":
                scram_login,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": plain_login,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.broker_pem_path),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_path),
            "ssl.client.auth": "none",
            "authorizer.class.name":
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{BROKER_USER};User:{ADMIN_USER}",
        }


def write_private(path: Path, content: bytes) -> None:
    """Write ``content`` readable by this user only, from the first byte on."""
    tls.write_owned(path, content, 0o600)


def make_certificates(now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """A new CA and a broker certificate it signed, for ``127.0.0.1`` and ``localhost``.

    Returns the CA certificate (PEM) and the broker's unencrypted PKCS#8 key followed by
    its certificate (PEM), the layout of Kafka's PEM key store.
    """
    # The broker is also a TLS client of itself (inter-broker requests).
    root, certificate, key = tls.certificates(now, client_auth=True)
    return root, key + certificate


def _allow(user: str, operation: ACLOperation, resource: ResourceType, name: str,
           prefixed: bool = False) -> ACL:
    pattern = ResourcePattern(resource, name, ACLResourcePatternType.PREFIXED if prefixed
                              else ACLResourcePatternType.LITERAL)
    return ACL(f"User:{user}", "*", operation, ACLPermissionType.ALLOW, pattern)


def _topics(user: str, names: list[str], *operations: ACLOperation) -> list[ACL]:
    return [_allow(user, operation, ResourceType.TOPIC, name)
            for name in names for operation in operations]


def service_acls(settings: TopicSettings) -> list[ACL]:
    """What each service's user may do; nothing else is allowed.

    The names of the Faust apps' groups and own topics follow the services' settings:
    the processor's app id (group, transactional id, leader topic) is
    ``{prefix}process-{engine name}``, the sink's group ``{prefix}sink`` and its Faust
    host app ``{prefix}sink-host``; a bot's group starts with ``{prefix}bot-``.
    """
    topics = Topics.from_settings(settings)
    prefix = settings.prefix
    inputs = [topics.prices, topics.positions, topics.accounts]
    outputs = [topics.heat_frames, topics.alerts, topics.correlations, topics.alert_levels,
               topics.deadletter]
    internal = [topics.sequence, topics.checkpoints]
    read, write, describe, create = (ACLOperation.READ, ACLOperation.WRITE,
                                     ACLOperation.DESCRIBE, ACLOperation.CREATE)
    ingest, process, sink, bot = (SERVICE_USERS[name]
                                  for name in ("ingest", "process", "sink", "bot"))
    process_app = f"{prefix}process-"
    sink_app = f"{prefix}sink-host"
    return [
        *_topics(ingest, [*inputs, topics.deadletter], write, describe),
        *_topics(process, inputs, read, describe),
        *_topics(process, outputs, write, describe),
        *_topics(process, internal, read, write, describe),
        # Faust's own topics of the app (the lease's leader topic), made at start.
        *(_allow(process, operation, ResourceType.TOPIC, process_app, prefixed=True)
          for operation in (read, write, describe, create)),
        *(_allow(process, operation, ResourceType.GROUP, process_app, prefixed=True)
          for operation in (read, describe)),
        *(_allow(process, operation, ResourceType.TRANSACTIONAL_ID, process_app,
                 prefixed=True) for operation in (write, describe)),
        *_topics(sink, [*outputs, *inputs], read, describe),
        *(_allow(sink, operation, ResourceType.GROUP, f"{prefix}sink")
          for operation in (read, describe)),
        *(_allow(sink, operation, ResourceType.TOPIC, sink_app, prefixed=True)
          for operation in (read, write, describe, create)),
        *(_allow(sink, operation, ResourceType.GROUP, sink_app, prefixed=True)
          for operation in (read, describe)),
        *_topics(bot, [topics.heat_frames, topics.alerts], read, describe),
        *(_allow(bot, operation, ResourceType.GROUP, f"{prefix}bot-", prefixed=True)
          for operation in (read, describe)),
    ]
