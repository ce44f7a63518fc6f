"""The secure local stack (``heat stack up --secure``): every service works as its own
SCRAM user over SASL_SSL, and everything its ACLs do not allow is refused.

What a refused client gets, as these tests pin it:

- no credentials (plain text, or TLS without SASL; also on the controller's
  listener) and a wrong password: the broker
  closes the connection, so the client never bootstraps (kafka-python:
  ``KafkaTimeoutError: Unable to bootstrap``, its log saying only "socket
  disconnected"; aiokafka: ``KafkaConnectionError``, after logging
  ``SaslAuthenticationFailed ... invalid credentials`` for the wrong password);
- a topic outside the user's ACLs: ``TopicAuthorizationFailedError``;
- another service's consumer group: ``GroupAuthorizationFailedError``;
- another service's transactional id, or any for a user without one:
  ``TransactionalIdAuthorizationFailed``;
- kcat (librdkafka, a client of none of the project's libraries) without
  credentials, over plain text or TLS alone: no metadata ("Failed to acquire
  metadata") and not one record.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka import errors as aiokafka_errors
from kafka import KafkaAdminClient, KafkaProducer
from kafka import errors as kafka_errors
from psycopg import sql
from pydantic import SecretStr

from conftest import DatabaseServer, isolated_stack_settings, migrated_database
from heatmap.db import tables
from heatmap.settings.database import WRITER_ROLE
from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.stack.kafka_security import SERVICE_USERS, SecurityFiles
from heatmap.stack.local import LocalStack, StackState
from heatmap.stack.services import HEAT, HeatService
from heatmap.topics import Topics
from support.heat_pipeline import BAR, TIMEFRAMES, recorded_inputs
from support.heat_services import alive, service_env
from support.topic_records import read_briefly, record_count
from support.waiting import wait_until

PREFIX = "secure."
TOPICS = Topics.from_settings(TopicSettings(prefix=PREFIX))
# The processor's app id for the default engine name: its group and transactional id.
PROCESS_APP = f"{PREFIX}process-engine"
# Inputs up to here: a day of bars and the first positions (frames need positions).
INPUTS_END = "2018-01-11T06"


@pytest.fixture(scope="module")
def secure_stack() -> Iterator[LocalStack]:
    """A secure stack of this module's own (broker, database), removed afterwards."""
    state_dir = Path(tempfile.mkdtemp(prefix="heat-test-secure-"))
    stack = LocalStack(isolated_stack_settings(state_dir, TopicSettings(prefix=PREFIX)))
    try:
        stack.up(secure=True)
        yield stack
    finally:
        stack.down(purge=True)


@pytest.fixture(scope="module")
def state(secure_stack: LocalStack) -> StackState:
    recorded = secure_stack.load_state()
    assert recorded is not None and recorded.kafka_secure
    return recorded


@pytest.fixture(scope="module")
def files(state: StackState) -> SecurityFiles:
    security = state.security_files()
    assert security is not None
    return security


def connection(state: StackState, files: SecurityFiles, client: str) -> KafkaConnection:
    return files.connection(state.kafka_bootstrap, client)


def exported(state: StackState, client: str) -> dict[str, str]:
    """The variables ``eval "$(heat stack env --service client)"`` sets."""
    pairs = (shlex.split(line.removeprefix("export "))[0].split("=", 1)
             for line in state.env_lines(client))
    return dict(pairs)


def client_env(state: StackState, client: str, **extra: str) -> dict[str, str]:
    """A child service's environment: the stack's settings for ``client`` only."""
    kafka = {name: value for name, value in exported(state, client).items()
             if name.startswith("HEAT_KAFKA_")}
    return service_env(state.kafka_bootstrap, PREFIX, **{**kafka, **extra})


def produce(connection: KafkaConnection, topic: str) -> int:
    producer = KafkaProducer(**connection.kafka_python(), acks="all", max_block_ms=10_000)
    try:
        return producer.send(topic, b"value", key=b"key").get(timeout=10).offset
    finally:
        producer.close(timeout=5)


def kcat(bootstrap: str, *arguments: str, settings: dict[str, str] | None = None,
         timeout_s: float = 30) -> tuple[int | None, str, str]:
    """Run kcat against ``bootstrap``: (exit code or None on timeout, stdout, stderr).
    A client that cannot get in retries until the timeout; what it printed until then
    is what it read."""
    if shutil.which("kcat") is None:
        pytest.fail("kcat is needed (Debian package kcat; infra/bootstrap.sh installs it)")
    options = [item for name, value in (settings or {}).items()
               for item in ("-X", f"{name}={value}")]
    command = ["kcat", "-b", bootstrap, "-m", "5", *options, *arguments]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as timed_out:
        return None, _text(timed_out.stdout), _text(timed_out.stderr)
    return done.returncode, done.stdout, done.stderr


def _text(output: str | bytes | None) -> str:
    return output.decode() if isinstance(output, bytes) else output or ""


async def transaction(connection: KafkaConnection, transactional_id: str, topic: str) -> None:
    producer = AIOKafkaProducer(**connection.aiokafka(), transactional_id=transactional_id)
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"value", key=b"key")
    finally:
        await producer.stop()


def test_pipeline_runs_with_each_services_own_user(
        secure_stack: LocalStack, state: StackState, files: SecurityFiles,
        tmp_path: Path) -> None:
    """ingest replay -> process -> sink -> frames in PostgreSQL, each service as its own
    Kafka user over SASL_SSL, the sink reaching the database over verified TLS."""
    # First of the module: the tests below write raw records to the topics.
    assert state.postgres_port is not None
    server = DatabaseServer("postgresql", state.database_url,
                            secure_stack.postgres_cluster(state.postgres_port,
                                                          tls_only=state.database_tls_only))
    inputs = recorded_inputs(tmp_path / "inputs", INPUTS_END)
    # The sink's TLS settings as `heat stack env --service sink` gives them: every
    # connection verifies the server's certificate against the stack's root.
    database_tls = {name: value for name, value in exported(state, "sink").items()
                    if name.startswith("HEAT_DATABASE_SSL")}
    assert database_tls == {"HEAT_DATABASE_SSLMODE": "verify-full",
                            "HEAT_DATABASE_SSLROOTCERT": str(state.database_sslrootcert)}
    with migrated_database(server) as database:
        database_env = {"HEAT_DATABASE_URL": database.admin_url(),  # type: ignore[attr-defined]
                        "HEAT_WRITER_PASSWORD":
                            database.role_password(WRITER_ROLE) or "",  # type: ignore[attr-defined]
                        **database_tls}
        pipeline = {"HEAT_BAR_INTERVAL": BAR, "HEAT_TIMEFRAMES": TIMEFRAMES}
        processor = HeatService(["process"], client_env(
            state, "process", HEAT_WEB_PORT="0", **pipeline), tmp_path / "process.log")
        sink = HeatService(["sink"], client_env(
            state, "sink", HEAT_SINK_WEB_PORT="0", **pipeline, **database_env),
            tmp_path / "sink.log")
        try:
            ingest = subprocess.run([*HEAT, "ingest", "replay", *inputs.args(), "--speed", "0"],
                                    env=client_env(state, "ingest"), capture_output=True,
                                    text=True, timeout=300)
            assert ingest.returncode == 0, ingest.stderr[-3000:]
            # The deadletter path: a bad line goes there, as the ingest user.
            hostile = subprocess.run([*HEAT, "ingest", "positions", "--stdin"],
                                     env=client_env(state, "ingest"), input="{not json\n",
                                     capture_output=True, text=True, timeout=120)
            assert hostile.returncode == 0, hostile.stderr[-3000:]

            def stored_frames() -> int:
                assert alive(processor) and alive(sink)
                with psycopg.connect(database.admin_url()) as db:  # type: ignore[attr-defined]
                    row = db.execute(sql.SQL("SELECT count(*) FROM {}").format(
                        sql.Identifier("heat", tables.FRAMES.name))).fetchone()
                return 0 if row is None else int(row[0])

            wait_until(stored_frames, timeout_s=120, interval_s=0.5,
                       message=lambda: f"no frame stored; process log: "
                       f"{processor.log_text()[-3000:]}; sink log: {sink.log_text()[-3000:]}")
            # Every connection the sink holds as the writer is encrypted.
            with psycopg.connect(database.admin_url()) as db:  # type: ignore[attr-defined]
                writer_ssl = db.execute(
                    "SELECT a.pid, s.ssl FROM pg_stat_activity a "
                    "JOIN pg_stat_ssl s ON s.pid = a.pid "
                    "WHERE a.usename = %s AND a.datname = current_database()",
                    (WRITER_ROLE,)).fetchall()
            assert writer_ssl, "the sink holds no connection as heat_writer"
            assert all(ssl for _, ssl in writer_ssl), writer_ssl
            admin = connection(state, files, "admin")
            assert record_count(admin, TOPICS.deadletter) >= 1
            # A desk bot reads the frames under its own group.
            assert asyncio.run(read_briefly(connection(state, files, "bot"), TOPICS.heat_frames,
                                       f"{PREFIX}bot-desk")) > 0
        finally:
            processor.kill()
            sink.kill()


def test_the_secure_stacks_postgresql_takes_tls_clients_only(
        secure_stack: LocalStack, state: StackState) -> None:
    """pg_hba.conf has hostssl lines and no host line: a client without TLS is refused,
    one verifying the stack's certificate gets in."""
    assert state.database_tls_only and state.postgres_port is not None
    config = secure_stack.postgres_cluster(state.postgres_port, tls_only=True)
    kinds = {line.split()[0] for line in
             (config.data_dir / "pg_hba.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    assert kinds == {"local", "hostssl"}, kinds
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(state.database_url, sslmode="disable", connect_timeout=5).close()
    assert state.database_sslrootcert is not None
    with psycopg.connect(state.database_url, sslmode="verify-full",
                         sslrootcert=state.database_sslrootcert) as verified:
        row = verified.execute("SELECT ssl FROM pg_stat_ssl "
                               "WHERE pid = pg_backend_pid()").fetchone()
    assert row == (True,)


def test_files_are_private_and_env_names_every_setting(state: StackState,
                                                       files: SecurityFiles) -> None:
    assert files.directory.stat().st_mode & 0o777 == 0o700
    # server.properties holds the broker's own password.
    for path in [files.broker_pem_path, files.directory.parent / "kafka" / "server.properties",
                 *(files.password_path(user)
                                          for user in SERVICE_USERS.values())]:
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert exported(state, "process") == {
        "HEAT_KAFKA_BOOTSTRAP": state.kafka_bootstrap, "HEAT_DATABASE_URL": state.database_url,
        "HEAT_TOPIC_PREFIX": PREFIX, "HEAT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "HEAT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "HEAT_KAFKA_SASL_USERNAME": "heat-process",
        "HEAT_KAFKA_SASL_PASSWORD_FILE": str(files.password_path("heat-process")),
        "HEAT_KAFKA_SSL_CAFILE": str(files.ca_path),
        "HEAT_DATABASE_SSLMODE": "verify-full",
        "HEAT_DATABASE_SSLROOTCERT": str(state.database_sslrootcert)}
    env = service_env("unused", "unused.", HEAT_STATE_DIR=str(files.directory.parent))
    bare = subprocess.run([*HEAT, "stack", "env"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert bare.returncode == 2
    assert bare.stderr.strip().splitlines() == [
        "error: the stack's Kafka is secure: name the client, "
        "--service ingest|process|sink|bot|admin"], bare.stderr


def test_clients_without_valid_credentials_never_get_in(
        state: StackState, files: SecurityFiles, caplog: pytest.LogCaptureFixture) -> None:
    bootstrap = state.kafka_bootstrap
    plain = KafkaConnection(bootstrap_servers=bootstrap)
    tls_only = KafkaConnection(bootstrap_servers=bootstrap, security_protocol="SSL",
                               ssl_cafile=files.ca_path)
    wrong = connection(state, files, "ingest").model_copy(
        update={"sasl_password": SecretStr("not-the-password")})
    # The controller's listener takes the broker's own password only.
    assert state.kafka_controller_port is not None
    controller = KafkaConnection(bootstrap_servers=f"127.0.0.1:{state.kafka_controller_port}")
    # kafka-python sees the broker close the connection, whatever the reason.
    for refused in (plain, tls_only, wrong, controller):
        with pytest.raises(kafka_errors.KafkaTimeoutError, match="Unable to bootstrap"):
            KafkaAdminClient(**refused.kafka_python(), bootstrap_timeout_ms=3000,
                             request_timeout_ms=3000)
    # A service started with a wrong password stops with one line saying so.
    password_file = files.directory.parent / "wrong.password"
    password_file.write_text("not-the-password\n")
    env = client_env(state, "ingest", HEAT_KAFKA_SASL_PASSWORD_FILE=str(password_file),
                     HEAT_CONNECT_TIMEOUT_S="2")
    started = subprocess.run([*HEAT, "ingest", "positions", "--stdin"], env=env, input="",
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 1, started.stderr
    [line] = started.stderr.strip().splitlines()
    assert "no Kafka answer within 2 s (as SASL user heat-ingest: a wrong user name or " \
           "password is refused the same way)" in line, line
    # aiokafka reads the broker's answer to the wrong password before the connection ends.

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), \
            pytest.raises(aiokafka_errors.KafkaConnectionError):
        asyncio.run(read_briefly(wrong, TOPICS.prices, None))
    assert "SaslAuthenticationFailed" in caplog.text
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text


def test_each_user_is_refused_what_is_not_its_own(state: StackState,
                                                  files: SecurityFiles) -> None:
    ingest, process, sink, bot = (connection(state, files, name)
                                  for name in ("ingest", "process", "sink", "bot"))
    # Writing outside its topics.
    for user, topic in ((ingest, TOPICS.heat_frames), (ingest, TOPICS.sequence),
                        (bot, TOPICS.prices), (sink, TOPICS.alerts)):
        with pytest.raises(kafka_errors.TopicAuthorizationFailedError):
            produce(user, topic)
    # Reading outside its topics.
    for user, topic, group in ((bot, TOPICS.prices, f"{PREFIX}bot-desk"),
                               (ingest, TOPICS.prices, None),
                               (bot, TOPICS.checkpoints, f"{PREFIX}bot-desk")):
        with pytest.raises(aiokafka_errors.TopicAuthorizationFailedError):
            asyncio.run(read_briefly(user, topic, group))
    # Another service's group: the bot may read the frames, but not as the sink.
    with pytest.raises(aiokafka_errors.GroupAuthorizationFailedError):
        asyncio.run(read_briefly(bot, TOPICS.heat_frames, f"{PREFIX}sink"))
    with pytest.raises(aiokafka_errors.GroupAuthorizationFailedError):
        asyncio.run(read_briefly(sink, TOPICS.heat_frames, PROCESS_APP))
    # The processor's transactional id is its alone, and it has no other.
    for user, transactional_id in ((sink, PROCESS_APP), (ingest, PROCESS_APP),
                                   (process, "another-transactional-id")):
        with pytest.raises(aiokafka_errors.TransactionalIdAuthorizationFailed):
            asyncio.run(transaction(user, transactional_id, TOPICS.heat_frames))


def test_each_client_kind_works_as_its_own_user(state: StackState,
                                                files: SecurityFiles) -> None:
    ingest, process, sink, bot = (connection(state, files, name)
                                  for name in ("ingest", "process", "sink", "bot"))
    produce(ingest, TOPICS.accounts)
    produce(ingest, TOPICS.deadletter)
    assert asyncio.run(read_briefly(process, TOPICS.accounts, None)) >= 1
    asyncio.run(transaction(process, PROCESS_APP, TOPICS.alerts))
    for topic in (TOPICS.sequence, TOPICS.checkpoints):
        asyncio.run(transaction(process, PROCESS_APP, topic))
        assert asyncio.run(read_briefly(process, topic, None)) >= 1
    assert asyncio.run(read_briefly(sink, TOPICS.alerts, f"{PREFIX}sink")) >= 1
    assert asyncio.run(read_briefly(bot, TOPICS.alerts, f"{PREFIX}bot-desk")) >= 1


def test_access_gives_a_service_its_user_and_replaces_its_password(
        state: StackState, files: SecurityFiles) -> None:
    """`heat topics access` (a deployment's set-up job) as the admin: the bot's SCRAM
    credential is replaced by the one given, the old password stops working."""
    bot = connection(state, files, "bot")
    old_password = files.password(SERVICE_USERS["bot"])

    def access(password: str) -> str:
        env = client_env(state, "admin", HEAT_KAFKA_BOT_PASSWORD=password)
        done = subprocess.run([*HEAT, "topics", "access"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    lines = access("a-new-bot-password").splitlines()
    assert [line.split()[:2] for line in lines] == [[user, service] for service, user
                                                    in SERVICE_USERS.items()]
    assert "no password given" in lines[0] and "ACLs applied" in lines[-1]
    try:
        renewed = bot.model_copy(update={"sasl_password": SecretStr("a-new-bot-password")})
        assert asyncio.run(read_briefly(renewed, TOPICS.heat_frames, f"{PREFIX}bot-desk")) >= 0
        with pytest.raises(kafka_errors.KafkaTimeoutError, match="Unable to bootstrap"):
            KafkaAdminClient(**bot.kafka_python(), bootstrap_timeout_ms=3000,
                             request_timeout_ms=3000)
    finally:
        access(old_password)
    # Without a password it changes nothing and says what to set.
    done = subprocess.run([*HEAT, "topics", "access"], env=client_env(state, "admin"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "HEAT_KAFKA_INGEST_PASSWORD" in done.stderr.strip()


def test_a_restarted_stack_stays_secure_with_the_same_users(
        secure_stack: LocalStack, files: SecurityFiles) -> None:
    # Last of the module: it restarts the broker.
    password = files.password("heat-ingest")
    secure_stack.down(only=("kafka",))
    restarted = secure_stack.up()  # without --secure: a secure stack stays secure
    assert restarted.kafka_secure and restarted.database_tls_only
    assert files.password("heat-ingest") == password
    produce(connection(restarted, files, "ingest"), TOPICS.prices)
    with pytest.raises(kafka_errors.TopicAuthorizationFailedError):
        produce(connection(restarted, files, "bot"), TOPICS.prices)


def test_kcat_reads_nothing_without_credentials(state: StackState, files: SecurityFiles,
                                                stack: StackState) -> None:
    """An independent client (kcat, librdkafka) gets no metadata and no record without a
    user, over plain text or TLS alone.

    The same kcat reads the plain stack's broker, so its refusal here is the broker's.
    It is not run with a user: Debian bookworm's librdkafka (2.0) cannot complete SCRAM
    with Kafka 4.0 brokers (fixed in librdkafka 2.6.1); the users' own reads and refusals
    are the kafka-python and aiokafka tests above.
    """
    code, listed, said = kcat(stack.kafka_bootstrap, "-L")
    assert code == 0 and "broker" in listed, said
    tls_only = {"security.protocol": "SSL", "ssl.ca.location": str(files.ca_path)}
    for settings in (None, tls_only):
        code, _, said = kcat(state.kafka_bootstrap, "-L", settings=settings)
        assert code not in (0, None) and "Failed to acquire metadata" in said, said
        # After the pipeline test: the topic holds records, and none come out.
        code, read, said = kcat(state.kafka_bootstrap, "-C", "-t", TOPICS.positions, "-o",
                                "beginning", "-e", "-q", settings=settings, timeout_s=20)
        assert code != 0 and read == "", (code, read, said)
