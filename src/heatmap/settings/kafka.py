"""The one Kafka configuration of every service: where the brokers are, how the topics
are named and sized, and how producers send.

Environment variables: ``HEAT_KAFKA_BOOTSTRAP``, ``HEAT_KAFKA_SECURITY_PROTOCOL``,
``HEAT_KAFKA_SASL_MECHANISM``, ``_SASL_USERNAME``, ``_SASL_PASSWORD`` (or
``_SASL_PASSWORD_FILE``), ``_SSL_CAFILE``, ``_SSL_CERTFILE``, ``_SSL_KEYFILE``;
``HEAT_TOPIC_PREFIX``, ``HEAT_TOPIC_<TOPIC>_PARTITIONS``, ``HEAT_TOPIC_REPLICATION_FACTOR``
and ``HEAT_TOPIC_MIN_INSYNC_REPLICAS``; ``HEAT_PRODUCER_LINGER_MS``, ``_BATCH_SIZE``,
``_COMPRESSION``, ``_ACKS``, ``_IDEMPOTENCE``, ``_CLOSE_TIMEOUT_S``.

Every Kafka client of the product is built from one :class:`KafkaConnection`, which
renders the keyword arguments of each client library, so how a client reaches and
authenticates to the brokers is decided in one place.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.settings.secrets import secret_value

# The bootstrap a client uses when none is configured: the local stack's preferred port.
LOCAL_BOOTSTRAP = "127.0.0.1:9092"

Acks = Literal["all", "1", "0"]
Compression = Literal["lz4", "gzip", "snappy", "zstd"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaConnection(BaseModel):
    """How one client reaches the brokers and proves who it is.

    Renders the keyword arguments of every client kind the product uses:
    :meth:`kafka_python` (``KafkaProducer``, ``KafkaConsumer``, ``KafkaAdminClient``),
    :meth:`aiokafka` (``AIOKafkaProducer``, ``AIOKafkaConsumer``,
    ``AIOKafkaAdminClient``) and :meth:`faust` (``faust.App``'s ``broker`` and
    ``broker_credentials``). Build clients only through these.

    Parameters
    ----------
    bootstrap_servers : str
        ``host:port[,host:port...]``.
    client_id : str
        Names the client in the brokers' logs, quotas and metrics.
    security_protocol : {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
    sasl_mechanism : {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} or None
        Required with the ``SASL_*`` protocols.
    sasl_username, sasl_password : str, SecretStr or None
    ssl_cafile : Path or None
        The CA that signed the brokers' certificates (None: the system's CAs).
    ssl_certfile, ssl_keyfile : Path or None
        The client's own certificate and key, where brokers require them (mutual TLS).
    """

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = LOCAL_BOOTSTRAP
    client_id: str = "heat"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaConnection:
        if self.uses_sasl and (self.sasl_mechanism is None or self.sasl_username is None
                               or self.sasl_password is None):
            raise ValueError(f"{self.security_protocol} needs HEAT_KAFKA_SASL_MECHANISM, "
                             "HEAT_KAFKA_SASL_USERNAME and HEAT_KAFKA_SASL_PASSWORD (or _FILE)")
        return self

    def named(self, client_id: str) -> KafkaConnection:
        """The same connection under another client id."""
        return self.model_copy(update={"client_id": client_id})

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def _sasl(self) -> dict[str, Any]:
        if not self.uses_sasl:
            return {}
        return {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": (None if self.sasl_password is None
                                        else self.sasl_password.get_secret_value())}

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (hostname checked) for TLS protocols, else None."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            cafile=None if self.ssl_cafile is None else str(self.ssl_cafile))
        if self.ssl_certfile is not None:
            context.load_cert_chain(str(self.ssl_certfile),
                                    None if self.ssl_keyfile is None else str(self.ssl_keyfile))
        return context

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers.split(","),
                                  "client_id": self.client_id,
                                  "security_protocol": self.security_protocol, **self._sasl()}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client (the same
        names as kafka-python's, which aiokafka follows)."""
        return self.kafka_python()

    def faust(self) -> dict[str, Any]:
        """``broker`` and ``broker_credentials`` for ``faust.App``."""
        import faust  # only the Faust services pay for importing it

        credentials: Any = None
        if self.uses_sasl:
            credentials = faust.SASLCredentials(
                username=self.sasl_username, mechanism=self.sasl_mechanism,
                password=(None if self.sasl_password is None
                          else self.sasl_password.get_secret_value()),
                ssl_context=self.ssl_context())
        elif self.uses_tls:
            credentials = faust.SSLCredentials(self.ssl_context())
        return {"broker": [f"kafka://{server}" for server in self.bootstrap_servers.split(",")],
                "broker_credentials": credentials}


class TopicSettings(BaseSettings):
    """Topic naming, sizing and replication, from ``HEAT_TOPIC_*`` environment variables.

    Parameters
    ----------
    prefix : str
        Put before every topic name (``heat.prices``), so deployments can share brokers.
    prices_partitions, positions_partitions, accounts_partitions : int
    heat_frames_partitions, alerts_partitions, deadletter_partitions : int
        Partition counts of the topics that have more than one.
    replication_factor : int
        Replicas of every product topic (and of the Faust apps' own topics). 1 suits one
        broker; a cluster uses 3, so that one broker can be lost.
    min_insync_replicas : int
        Replicas that must hold a record before an ``acks=all`` write succeeds; at most
        ``replication_factor``. A cluster uses 2: one broker may be down and writes go
        on, while every acknowledged record is on two brokers.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_TOPIC_", frozen=True, extra="ignore")

    prefix: str = "heat."
    prices_partitions: int = Field(default=6, ge=1)
    positions_partitions: int = Field(default=6, ge=1)
    accounts_partitions: int = Field(default=6, ge=1)
    heat_frames_partitions: int = Field(default=6, ge=1)
    alerts_partitions: int = Field(default=3, ge=1)
    deadletter_partitions: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)

    @field_validator("min_insync_replicas")
    @classmethod
    def _insync_fits_the_replicas(cls, value: int, info: ValidationInfo) -> int:
        replicas = info.data.get("replication_factor")
        if replicas is not None and value > replicas:
            # No write with acks=all could ever succeed.
            raise ValueError(f"{value} exceeds the replication factor {replicas}")
        return value


class ProducerSettings(BaseSettings):
    """How producers send, from ``HEAT_PRODUCER_*`` environment variables.

    Parameters
    ----------
    linger_ms : int
        How long a batch waits for more records before it is sent.
    batch_size : int
        Bytes per partition batch.
    compression : {"lz4", "gzip", "snappy", "zstd"} or None
        Batch compression; ``none`` in the environment means None.
    acks : {"all", "1", "0"}
        Replicas that must have a record before it counts as sent, for every producer
        the product builds except the processor's transactional one (transactions need
        ``all``). ``all`` waits for ``min.insync.replicas`` of the topic.
    idempotence : bool
        Retries can neither duplicate nor reorder records (needs ``acks=all``).
    close_timeout_s : float
        How long closing waits for records still in flight.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_PRODUCER_", frozen=True,
                                      extra="ignore")

    linger_ms: int = Field(default=20, ge=0)
    batch_size: int = Field(default=256 * 1024, gt=0)
    compression: Compression | None = "lz4"
    acks: Acks = "all"
    idempotence: bool = True
    close_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("compression", mode="before")
    @classmethod
    def _none_means_uncompressed(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("idempotence")
    @classmethod
    def _idempotence_waits_for_all(cls, value: bool, info: ValidationInfo) -> bool:
        acks = info.data.get("acks")
        if value and acks is not None and acks != "all":
            raise ValueError(f"needs acks=all (acks is {acks}): set acks to all, or "
                             "idempotence to false")
        return value

    @property
    def client_acks(self) -> int | Literal["all"]:
        """``acks`` as kafka-python and aiokafka take it (a replica count, or ``"all"``)."""
        return "all" if self.acks == "all" else int(self.acks)

    @property
    def faust_acks(self) -> int:
        """``acks`` as Faust's ``producer_acks`` takes it (-1 means all)."""
        return -1 if self.acks == "all" else int(self.acks)


class KafkaSettings(BaseSettings):
    """Where Kafka is and how every client of the product talks to it.

    ``bootstrap`` unset means "not configured": clients then use the local
    stack's :data:`LOCAL_BOOTSTRAP`, and ``heat stack up`` starts a local broker
    instead of using an existing one.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_KAFKA_", frozen=True, extra="ignore")

    bootstrap: str | None = None
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    topics: TopicSettings = Field(default_factory=TopicSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)

    @property
    def bootstrap_servers(self) -> str:
        """The configured bootstrap servers, else the local stack's."""
        return self.bootstrap or LOCAL_BOOTSTRAP

    def connection(self, client_id: str) -> KafkaConnection:
        """How a client named ``client_id`` reaches the brokers."""
        password = secret_value(self.sasl_password, self.sasl_password_file)
        return KafkaConnection(
            bootstrap_servers=self.bootstrap_servers, client_id=client_id,
            security_protocol=self.security_protocol, sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=None if password is None else SecretStr(password),
            ssl_cafile=self.ssl_cafile, ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile)


class ServiceUserPasswords(BaseSettings):
    """The services' own Kafka passwords, given to the set-up job that creates their
    SCRAM users (``heat topics access``): ``HEAT_KAFKA_<SERVICE>_PASSWORD`` or its
    ``_FILE``, for ``INGEST``, ``PROCESS``, ``SINK`` and ``BOT``. A service without one
    gets no user."""

    model_config = SettingsConfigDict(env_prefix="HEAT_KAFKA_", frozen=True, extra="ignore")

    ingest_password: SecretStr | None = None
    ingest_password_file: Path | None = None
    process_password: SecretStr | None = None
    process_password_file: Path | None = None
    sink_password: SecretStr | None = None
    sink_password_file: Path | None = None
    bot_password: SecretStr | None = None
    bot_password_file: Path | None = None

    def given(self) -> dict[str, str]:
        """Each service that has a password (``ingest``, ``process``, ``sink``, ``bot``),
        with it."""
        services = [name.removesuffix("_password") for name in type(self).model_fields
                    if name.endswith("_password")]
        found = {service: secret_value(getattr(self, f"{service}_password"),
                                       getattr(self, f"{service}_password_file"))
                 for service in services}
        return {service: password for service, password in found.items() if password}
