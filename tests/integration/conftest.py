"""A real local stack (Apache Kafka KRaft + PostgreSQL 15) for the whole test session.

The stack runs on free loopback ports in a temporary state directory, so it
never touches a developer's own ``heat stack``. When it cannot start, every
integration test errors: nothing is skipped.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import NewTopic

from heatmap.settings.database import DatabaseSettings
from heatmap.settings.kafka import KafkaSettings, TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.stack.local import LocalStack, StackState
from heatmap.stack.ports import free_port
from heatmap.stack.settings import StackSettings


def isolated_stack_settings(state_dir: Path, topics: TopicSettings) -> StackSettings:
    """Settings for a throwaway stack: free ports, own state, shared jar cache."""
    kafka_port = free_port()
    return StackSettings(
        state_dir=state_dir,
        kafka=KafkaSettings(bootstrap=None, topics=topics),
        database=DatabaseSettings(database_url=None),
        kafka_port=kafka_port,
        kafka_controller_port=free_port(),
        postgres_port=free_port(),
        postgres_fsync=False,
        kafka_heap_mb=512,
        start_timeout_s=120,
    )


@pytest.fixture(scope="session")
def stack_topic_settings() -> TopicSettings:
    return TopicSettings(prefix=f"test-{uuid.uuid4().hex[:6]}.")


@pytest.fixture(scope="session")
def local_stack(stack_topic_settings: TopicSettings) -> Iterator[LocalStack]:
    state_dir = Path(tempfile.mkdtemp(prefix="heat-test-stack-"))
    stack = LocalStack(isolated_stack_settings(state_dir, stack_topic_settings))
    try:
        stack.up()
        yield stack
    finally:
        stack.down(purge=True)


@pytest.fixture(scope="session")
def stack(local_stack: LocalStack) -> StackState:
    state = local_stack.load_state()
    assert state is not None
    return state


@pytest.fixture
def make_topic(stack: StackState) -> Iterator[object]:
    """Create uniquely named topics for one test; they are deleted afterwards."""
    created: list[str] = []

    def make(partitions: int = 1, stem: str = "t") -> str:
        name = f"{stem}-{uuid.uuid4().hex[:10]}"
        admin = kafka_broker.admin_client(stack.kafka_bootstrap)
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            admin.close()
        created.append(name)
        return name

    yield make
    if created:
        admin = kafka_broker.admin_client(stack.kafka_bootstrap)
        try:
            admin.delete_topics(created)
        finally:
            admin.close()


@pytest.fixture
def subprocess_env(stack: StackState, stack_topic_settings: TopicSettings) -> dict[str, str]:
    """Environment for a child process pointed at the test stack."""
    return {**os.environ, "HEAT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "HEAT_DATABASE_URL": stack.database_url,
            "HEAT_TOPIC_PREFIX": stack_topic_settings.prefix}


WRITER_PASSWORD = "writer-test-password"
READER_PASSWORD = "reader-test-password"


@pytest.fixture
def fresh_database(stack: StackState) -> Iterator[str]:
    """An empty database of the test cluster (admin URL); dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"heat_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stack.database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield stack.database_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(stack.database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
            sql.Identifier(name)))


@pytest.fixture
def db_settings(fresh_database: str):
    return DatabaseSettings(database_url=fresh_database, writer_password=WRITER_PASSWORD,
                      reader_password=READER_PASSWORD, writer_url=None, reader_url=None,
                      retry_backoff_s=0.2, retry_attempts=40)


@pytest.fixture
def migrated(db_settings):
    from heatmap.db import migrations

    migrations.migrate(db_settings)
    return db_settings
