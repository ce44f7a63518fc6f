"""A real local stack (Apache Kafka KRaft + PostgreSQL 15) for the whole test session.

The stack runs on free loopback ports in a temporary state directory, so it
never touches a developer's own ``heat stack``. When it cannot start, every
integration test errors: nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka.admin import NewTopic

from heatmap.settings.database import DatabaseSettings
from heatmap.settings.kafka import KafkaConnection, KafkaSettings, TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.stack import postgres
from heatmap.stack.kafka import StackError
from heatmap.stack.local import LocalStack, StackState
from heatmap.stack.ports import free_port
from heatmap.stack.postgres import PostgresClusterConfig
from heatmap.stack.settings import StackSettings

REPO_ROOT = Path(__file__).parents[2]

# Every storage, SQL and dashboard test runs once per database server kind.
DATABASES = ("postgresql", "timescaledb")
TIMESCALEDB_BIN_DIR = "HEAT_TIMESCALEDB_BIN_DIR"
REQUIRE_TIMESCALEDB = "HEAT_TEST_REQUIRE_TIMESCALEDB"


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


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Three KRaft nodes (broker and controller each) on 127.0.0.2, .3 and .4 for the
    tests of one module; the session's single broker serves the others."""
    from support.kafka_cluster import KafkaCluster

    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


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
        admin = kafka_broker.admin_client(KafkaConnection(bootstrap_servers=stack.kafka_bootstrap))
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            admin.close()
        created.append(name)
        return name

    yield make
    if created:
        admin = kafka_broker.admin_client(KafkaConnection(bootstrap_servers=stack.kafka_bootstrap))
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


@dataclass(frozen=True)
class DatabaseServer:
    """A running PostgreSQL server of the session: plain, or with TimescaleDB preloaded."""

    kind: str
    admin_url: str
    cluster: PostgresClusterConfig

    def stop(self) -> None:
        postgres.stop(self.cluster, timeout_s=30)  # fast shutdown: open sessions are cut off

    def start(self) -> None:
        postgres.start(self.cluster, timeout_s=60)


def _timescaledb_bin_dir() -> Path:
    """``HEAT_TIMESCALEDB_BIN_DIR``, or skip (a machine without TimescaleDB), unless
    ``HEAT_TEST_REQUIRE_TIMESCALEDB=1`` (CI) makes that a failure."""
    bin_dir = os.environ.get(TIMESCALEDB_BIN_DIR)
    if not bin_dir:
        if os.environ.get(REQUIRE_TIMESCALEDB) == "1":
            pytest.fail(f"{REQUIRE_TIMESCALEDB}=1 but {TIMESCALEDB_BIN_DIR} is not set")
        pytest.skip(f"TimescaleDB variant: set {TIMESCALEDB_BIN_DIR} to the bin directory "
                    "of a PostgreSQL 15 with TimescaleDB to run it")
    if not postgres.has_timescaledb(Path(bin_dir)):
        pytest.fail(f"{TIMESCALEDB_BIN_DIR}={bin_dir} has no timescaledb library beside it")
    return Path(bin_dir)


@pytest.fixture(scope="session")
def timescaledb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    """A second cluster from the PostgreSQL copy in ``HEAT_TIMESCALEDB_BIN_DIR``, its job
    scheduler off: tests run each policy in the foreground when they mean to.

    Without the variable the TimescaleDB variants are skipped (a machine without
    TimescaleDB), unless ``HEAT_TEST_REQUIRE_TIMESCALEDB=1`` (CI) makes that a failure.
    A cluster that cannot start always fails.
    """
    bin_dir = _timescaledb_bin_dir()
    try:
        with throwaway_cluster(bin_dir, tmp_path_factory.mktemp("timescaledb"),
                               preload_timescaledb=True) as cluster:
            yield DatabaseServer("timescaledb", postgres.admin_url(cluster), cluster)
    except StackError as error:
        pytest.fail(f"the TimescaleDB cluster did not start: {error}")


@pytest.fixture(scope="session")
def scheduled_timescaledb_server(tmp_path_factory: pytest.TempPathFactory
                                 ) -> Iterator[DatabaseServer]:
    """A TimescaleDB cluster as production runs it: its job scheduler starts every policy
    (retention, compression, refresh) in background workers as soon as it is added."""
    bin_dir = _timescaledb_bin_dir()
    try:
        with throwaway_cluster(bin_dir, tmp_path_factory.mktemp("timescaledb-scheduled"),
                               preload_timescaledb=True, scheduler=True) as cluster:
            yield DatabaseServer("timescaledb", postgres.admin_url(cluster), cluster)
    except StackError as error:
        pytest.fail(f"the TimescaleDB cluster did not start: {error}")


@contextmanager
def throwaway_cluster(bin_dir: Path, state_dir: Path, preload_timescaledb: bool,
                      scheduler: bool = False) -> Iterator[PostgresClusterConfig]:
    """A running PostgreSQL cluster of ``bin_dir`` on a free port; removed afterwards.
    ``scheduler``: TimescaleDB's background jobs run (off unless asked for)."""
    os_user = postgres.server_os_user("postgres")
    cluster = PostgresClusterConfig(
        root=postgres.cluster_root(state_dir, os_user), port=free_port(), bin_dir=bin_dir,
        os_user=os_user, fsync=False, database="heat",
        preload_timescaledb=preload_timescaledb, timescaledb_scheduler=scheduler)
    try:
        postgres.start_new_or_existing(cluster, timeout_s=120)
        yield cluster
    finally:
        postgres.stop(cluster, timeout_s=30)
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_server(local_stack: LocalStack) -> DatabaseServer:
    """The plain PostgreSQL server of the session's stack."""
    state = local_stack.load_state()
    assert state is not None and state.postgres_port is not None
    return DatabaseServer("postgresql", state.database_url,
                          local_stack.postgres_cluster(state.postgres_port))


@pytest.fixture(scope="session", params=DATABASES)
def database_server(request: pytest.FixtureRequest) -> DatabaseServer:
    """Each database server kind in turn (test ids end in ``[postgresql]``/``[timescaledb]``)."""
    return request.getfixturevalue(f"{request.param}_server")


@contextmanager
def new_database(server: DatabaseServer) -> Iterator[str]:
    """An empty database on ``server`` (its admin URL), dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"heat_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server.admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                sql.Identifier(name)))


def settings_for(database_url: str, **overrides: str):
    """Settings of the migrator and the two roles for a test database (``overrides``:
    other fields, e.g. retention windows)."""
    from heatmap.settings.database import DatabaseSettings

    return DatabaseSettings(database_url=database_url, writer_password=WRITER_PASSWORD,
                      reader_password=READER_PASSWORD, writer_url=None, reader_url=None,
                      retry_backoff_s=0.2, retry_attempts=40, **overrides)


@pytest.fixture
def fresh_database(database_server: DatabaseServer) -> Iterator[str]:
    """An empty database on each server kind (admin URL); dropped afterwards."""
    with new_database(database_server) as url:
        yield url


@pytest.fixture
def db_settings(fresh_database: str):
    return settings_for(fresh_database)


@pytest.fixture
def migrated(db_settings):
    from heatmap.db import migrations

    migrations.migrate(db_settings)
    return db_settings


@contextmanager
def migrated_database(server: DatabaseServer) -> Iterator[object]:
    """A new migrated database on ``server`` (its settings), dropped afterwards."""
    from heatmap.db import migrations

    with new_database(server) as url:
        settings = settings_for(url)
        migrations.migrate(settings)
        yield settings


@pytest.fixture
def timescale_migrated(timescaledb_server: DatabaseServer) -> Iterator[object]:
    """A migrated database on the TimescaleDB server only (its settings)."""
    with migrated_database(timescaledb_server) as settings:
        yield settings


@pytest.fixture
def postgresql_migrated(postgresql_server: DatabaseServer) -> Iterator[object]:
    """A migrated database on the plain PostgreSQL server only (its settings)."""
    with migrated_database(postgresql_server) as settings:
        yield settings


@pytest.fixture
def running(stack: StackState, migrated, tmp_path: Path):
    """Processor and sink workers of one test on fresh topics and a migrated database
    (``running.process()``, ``running.sink()``; a ``Pipeline``); all killed at the end."""
    from support.heat_pipeline import pipeline

    yield from pipeline(stack.kafka_bootstrap, migrated, tmp_path)


@pytest.fixture
def replayed(migrated, tmp_path: Path):
    """A migrated database of each kind holding, as heat_writer wrote them, the real
    5-minute bars of 2018-01-10..12 and the replay fixture (desks alpha and beta), stored as
    --to-db stores them."""
    from heatmap.db.writer import HeatWriter
    from heatmap.engine.params import EngineParams
    from heatmap.replay.run import DatabaseOutput, replay
    from heatmap.settings.database import WRITER_ROLE

    def until_jan_13(path: Path) -> Path:
        header, *rows = path.read_text().splitlines()
        target = tmp_path / path.name
        target.write_text("\n".join([header, *(r for r in rows if r < "2018-01-13")]) + "\n")
        return target

    bars = sorted((REPO_ROOT / "data" / "binance-5m").glob("*.csv"))
    prices = [until_jan_13(path) for path in bars]
    fixture = REPO_ROOT / "tests" / "data" / "replay"
    params = EngineParams(bar_interval_s=300)
    with HeatWriter(migrated.role_url(WRITER_ROLE), migrated) as writer:
        result = replay(prices, until_jan_13(fixture / "positions.csv"),
                        until_jan_13(fixture / "accounts.csv"), params, None,
                        database=DatabaseOutput(writer.write))
    assert result.rows_written["frames"] > 1000
    return migrated


@pytest.fixture(scope="session")
def pipeline_inputs(tmp_path_factory: pytest.TempPathFactory):
    """The real bars and test books up to ``PIPELINE_END``, as the pipeline tests feed them."""
    from support.heat_pipeline import PIPELINE_END, recorded_inputs

    return recorded_inputs(tmp_path_factory.mktemp("pipeline-inputs"), PIPELINE_END)


@pytest.fixture(scope="session")
def pipeline_expected(database_server: DatabaseServer, pipeline_inputs, stack: StackState
                      ) -> Iterator[dict]:
    """The output rows ``heat replay --to-db`` of ``pipeline_inputs`` writes, on each
    database server kind; computed once per session (the database is kept meanwhile)."""
    from support.heat_pipeline import output_rows, replay_to_db

    with migrated_database(database_server) as settings:
        replay_to_db(pipeline_inputs, settings, stack.kafka_bootstrap)
        yield output_rows(settings.admin_url(), pipeline_inputs.last_input_ms)


@pytest.fixture(scope="session")
def restart_inputs(tmp_path_factory: pytest.TempPathFactory):
    """Four days of the real bars and the test books (``RESTART_END``): enough that a
    processor killed after the ingest finished has not applied them all yet."""
    from support.heat_pipeline import RESTART_END, recorded_inputs

    return recorded_inputs(tmp_path_factory.mktemp("restart-inputs"), RESTART_END)


@pytest.fixture(scope="session")
def restart_expected(database_server: DatabaseServer, restart_inputs, stack: StackState
                     ) -> Iterator[dict]:
    """The output rows ``heat replay --to-db`` of ``restart_inputs`` writes."""
    from support.heat_pipeline import output_rows, replay_to_db

    with migrated_database(database_server) as settings:
        replay_to_db(restart_inputs, settings, stack.kafka_bootstrap)
        yield output_rows(settings.admin_url(), restart_inputs.last_input_ms)
