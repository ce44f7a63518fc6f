"""The shared Kafka and database settings: environment names, choices, composition."""

import pytest
from pydantic import ValidationError

from heatmap.ingest.settings import IngestSettings
from heatmap.settings.database import READER_ROLE, WRITER_ROLE, DatabaseSettings
from heatmap.settings.kafka import LOCAL_BOOTSTRAP, KafkaSettings
from heatmap.stack.settings import StackSettings

SHARED_VARIABLES = ("HEAT_KAFKA_BOOTSTRAP", "HEAT_DATABASE_URL", "HEAT_TOPIC_PREFIX",
                    "HEAT_TOPIC_REPLICATION_FACTOR", "HEAT_TOPIC_MIN_INSYNC_REPLICAS",
                    "HEAT_PRODUCER_ACKS", "HEAT_PRODUCER_COMPRESSION",
                    "HEAT_PRODUCER_LINGER_MS", "HEAT_PRODUCER_IDEMPOTENCE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SHARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_service_reads_the_same_kafka_and_database_variables(
        clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEAT_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    clean_env.setenv("HEAT_DATABASE_URL", "postgresql://owner:pw@db/heat")
    clean_env.setenv("HEAT_TOPIC_PREFIX", "desk1.")
    clean_env.setenv("HEAT_PRODUCER_ACKS", "1")
    clean_env.setenv("HEAT_PRODUCER_IDEMPOTENCE", "false")
    clean_env.setenv("HEAT_PRODUCER_COMPRESSION", "none")
    clean_env.setenv("HEAT_PRODUCER_LINGER_MS", "5")
    ingest, stack = IngestSettings(), StackSettings()
    for kafka in (ingest.kafka, stack.kafka):
        assert kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
        assert kafka.topics.prefix == "desk1."
        assert kafka.producer.client_acks == 1
        assert kafka.producer.compression is None
        assert kafka.producer.linger_ms == 5
    assert stack.database.admin_url() == "postgresql://owner:pw@db/heat"


def test_unset_endpoints_mean_the_local_stack(clean_env: pytest.MonkeyPatch) -> None:
    stack = StackSettings()
    assert stack.kafka.bootstrap is None and stack.database.database_url is None
    assert IngestSettings().kafka.bootstrap_servers == LOCAL_BOOTSTRAP
    producer = KafkaSettings().producer
    assert (producer.acks, producer.client_acks, producer.compression) == ("all", "all", "lz4")


@pytest.mark.parametrize(("variable", "value"), [("HEAT_PRODUCER_ACKS", "2"),
                                                 ("HEAT_PRODUCER_COMPRESSION", "brotli")])
def test_producer_choices_are_checked(clean_env: pytest.MonkeyPatch, variable: str,
                                      value: str) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ValidationError):
        KafkaSettings()


def test_replication_and_acks_come_from_the_environment(clean_env: pytest.MonkeyPatch
                                                        ) -> None:
    defaults = KafkaSettings()
    assert (defaults.topics.replication_factor, defaults.topics.min_insync_replicas) == (1, 1)
    assert (defaults.producer.acks, defaults.producer.faust_acks) == ("all", -1)
    clean_env.setenv("HEAT_TOPIC_REPLICATION_FACTOR", "3")
    clean_env.setenv("HEAT_TOPIC_MIN_INSYNC_REPLICAS", "2")
    for kafka in (IngestSettings().kafka, StackSettings().kafka, KafkaSettings()):
        assert (kafka.topics.replication_factor, kafka.topics.min_insync_replicas) == (3, 2)


def test_more_insync_replicas_than_replicas_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEAT_TOPIC_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(ValidationError, match="exceeds the replication factor"):
        KafkaSettings()


def test_idempotent_producers_wait_for_all_replicas(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEAT_PRODUCER_ACKS", "1")
    with pytest.raises(ValidationError, match="needs acks=all"):
        KafkaSettings()
    clean_env.setenv("HEAT_PRODUCER_IDEMPOTENCE", "false")
    producer = KafkaSettings().producer
    assert (producer.client_acks, producer.faust_acks) == (1, 1)


def test_role_urls_are_derived_from_the_admin_url() -> None:
    settings = DatabaseSettings(
        database_url="postgresql://admin:pw@db.internal:6543/heat?sslmode=require",
        writer_password="w/p@ss", reader_password="r", writer_url=None, reader_url=None)
    assert settings.role_url(WRITER_ROLE) == (
        "postgresql://heat_writer:w%2Fp%40ss@db.internal:6543/heat?sslmode=require")
    assert settings.role_url(READER_ROLE).startswith("postgresql://heat_reader:r@db.internal")


def test_ipv6_hosts_keep_their_brackets() -> None:
    settings = DatabaseSettings(database_url="postgresql://a:b@[::1]:5432/heat",
                                writer_password="w", writer_url=None)
    assert settings.role_url(WRITER_ROLE) == "postgresql://heat_writer:w@[::1]:5432/heat"


def test_a_role_without_url_or_password_is_an_error() -> None:
    settings = DatabaseSettings(database_url="postgresql://a:b@h/heat", writer_password=None,
                                writer_password_file=None, writer_url=None)
    with pytest.raises(ValueError):
        settings.role_url(WRITER_ROLE)
