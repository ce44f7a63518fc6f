"""One Kafka connection config renders every client kind; every client is built from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from heatmap.settings.kafka import KafkaConnection, KafkaSettings, ServiceUserPasswords

ROOT = Path(__file__).parents[3]
# The product, and the benchmarks beside it (their clients reach the broker under test).
SOURCES = (ROOT / "src" / "heatmap", ROOT / "benchmarks")
CLIENTS = {"KafkaProducer", "KafkaConsumer", "KafkaAdminClient", "AIOKafkaProducer",
           "AIOKafkaConsumer", "AIOKafkaAdminClient", "App"}
RENDERERS = {"kafka_python", "aiokafka", "faust"}


def test_plaintext_renders_the_servers_and_the_client_id() -> None:
    connection = KafkaConnection(bootstrap_servers="a:9092,b:9092", client_id="heat-x")
    for render in (connection.kafka_python, connection.aiokafka):
        assert render() == {"bootstrap_servers": ["a:9092", "b:9092"], "client_id": "heat-x",
                            "security_protocol": "PLAINTEXT"}
    assert connection.faust() == {"broker": ["kafka://a:9092", "kafka://b:9092"],
                                  "broker_credentials": None}


def test_sasl_ssl_carries_credentials_and_a_verifying_tls_context() -> None:
    connection = KafkaConnection(bootstrap_servers="a:9093", security_protocol="SASL_SSL",
                                 sasl_mechanism="SCRAM-SHA-512", sasl_username="heat-process",
                                 sasl_password=SecretStr("s3cret"))
    kwargs = connection.aiokafka()
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "heat-process"
    assert kwargs["sasl_plain_password"] == "s3cret"
    assert kwargs["ssl_context"].check_hostname
    credentials = connection.faust()["broker_credentials"]
    assert credentials.username == "heat-process"
    assert str(credentials.protocol.value) == "SASL_SSL"
    assert "s3cret" not in repr(connection)


def test_sasl_without_credentials_is_refused_in_one_sentence() -> None:
    with pytest.raises(ValidationError, match="HEAT_KAFKA_SASL_MECHANISM"):
        KafkaConnection(security_protocol="SASL_SSL")


def test_settings_read_the_password_from_its_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    monkeypatch.setenv("HEAT_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("HEAT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("HEAT_KAFKA_SASL_USERNAME", "heat-sink")
    monkeypatch.setenv("HEAT_KAFKA_SASL_PASSWORD_FILE", str(secret))
    kwargs = KafkaSettings().connection("heat-sink").kafka_python()
    assert kwargs["sasl_plain_password"] == "from-file"
    assert kwargs["client_id"] == "heat-sink"


def _client_calls(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in CLIENTS and (name != "App" or ast.unparse(func) == "faust.App"):
                calls.append(node)
    return calls


def _built_from_a_connection(call: ast.Call) -> bool:
    spread = [kw.value for kw in call.keywords if kw.arg is None]
    named = {kw.arg for kw in call.keywords}
    return (any(isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and value.func.attr in RENDERERS for value in spread)
            and not named & {"bootstrap_servers", "broker", "broker_credentials",
                             "security_protocol", "client_id"})


def test_every_kafka_client_in_the_product_is_built_from_the_connection_config() -> None:
    found, wrong = 0, []
    for path in sorted(path for source in SOURCES for path in source.rglob("*.py")):
        for call in _client_calls(ast.parse(path.read_text())):
            found += 1
            if not _built_from_a_connection(call):
                wrong.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert found >= 8
    assert not wrong, f"Kafka clients built without KafkaConnection: {wrong}"


def test_service_passwords_come_from_variables_or_files(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "sink.password"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("HEAT_KAFKA_INGEST_PASSWORD", "from-a-variable")
    monkeypatch.setenv("HEAT_KAFKA_SINK_PASSWORD_FILE", str(secret))
    # A service without a password gets no user: it is left out.
    assert ServiceUserPasswords().given() == {"ingest": "from-a-variable",
                                              "sink": "from-a-file"}
