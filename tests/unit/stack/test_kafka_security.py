"""The secure broker's files, properties and ACLs, without a broker."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from kafka.admin import ACLOperation, ACLResourcePatternType, ResourceType

from heatmap.settings.kafka import TopicSettings
from heatmap.stack.kafka import KafkaBrokerConfig, StackError
from heatmap.stack.kafka_security import ALL_USERS, SecurityFiles, make_certificates, service_acls
from heatmap.stack.local import StackState


def _allowed(user: str) -> set[tuple[str, str, str, bool]]:
    """(operation, resource type, name, prefixed) of every ACL of ``user``."""
    return {(acl.operation.name, acl.resource_pattern.resource_type.name,
             acl.resource_pattern.resource_name,
             acl.resource_pattern.pattern_type is ACLResourcePatternType.PREFIXED)
            for acl in service_acls(TopicSettings(prefix="p.")) if acl.principal == f"User:{user}"}


def test_the_broker_certificate_is_for_loopback_and_signed_by_the_ca() -> None:
    ca_pem, broker_pem = make_certificates()
    ca = x509.load_pem_x509_certificate(ca_pem)
    assert broker_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # unencrypted PKCS#8
    broker = x509.load_pem_x509_certificate(broker_pem[broker_pem.index(b"-----BEGIN CERT"):])
    broker.verify_directly_issued_by(ca)
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_files_are_made_once_and_private(tmp_path: Path) -> None:
    files = SecurityFiles(tmp_path / "security")
    files.ensure()
    passwords = {user: files.password(user) for user in ALL_USERS}
    files.ensure()
    assert {user: files.password(user) for user in ALL_USERS} == passwords
    assert len(set(passwords.values())) == len(ALL_USERS)
    assert files.directory.stat().st_mode & 0o777 == 0o700
    for path in files.directory.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    arguments = files.scram_format_arguments()
    assert (f"--add-scram=SCRAM-SHA-512=[name=heat-ingest,password={passwords['heat-ingest']}]"
            in arguments)


def test_secure_broker_properties(tmp_path: Path) -> None:
    files = SecurityFiles(tmp_path)
    files.ensure()
    text = KafkaBrokerConfig(tmp_path, 19092, 19093, 512, security=files).server_properties()
    properties = dict(line.split("=", 1) for line in text.splitlines())
    assert properties["listeners"] == "SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert properties["advertised.listeners"] == "SASL_SSL://127.0.0.1:19092"
    assert properties["listener.security.protocol.map"] == ("CONTROLLER:SASL_PLAINTEXT,"
                                                            "SASL_SSL:SASL_SSL")
    assert properties["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert properties["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer")
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert "User:heat-broker" in properties["super.users"].split(";")
    assert properties["super.users"] == "User:heat-broker;User:heat-admin"  # no ANONYMOUS
    assert files.password("heat-broker") in properties[
        "listener.name.controller.plain.sasl.jaas.config"]


def test_ingest_writes_inputs_and_deadletter_only() -> None:
    assert _allowed("heat-ingest") == {
        (operation, "TOPIC", f"p.{topic}", False)
        for topic in ("prices", "positions", "accounts", "deadletter")
        for operation in ("WRITE", "DESCRIBE")}


def test_the_processor_alone_has_a_transactional_id() -> None:
    process = _allowed("heat-process")
    assert ("WRITE", "TRANSACTIONAL_ID", "p.process-", True) in process
    assert ("READ", "TOPIC", "p.prices", False) in process
    assert ("WRITE", "TOPIC", "p.prices", False) not in process
    assert ("WRITE", "TOPIC", "p.heat-frames", False) in process
    assert {("READ", "TOPIC", "p.checkpoints", False),
            ("WRITE", "TOPIC", "p.checkpoints", False)} <= process
    assert ("READ", "GROUP", "p.process-", True) in process
    for user in ("heat-ingest", "heat-sink", "heat-bot"):
        assert not any(resource == "TRANSACTIONAL_ID" for _, resource, _, _ in _allowed(user))


def test_sink_reads_and_bot_reads_frames_and_alerts_only() -> None:
    sink = _allowed("heat-sink")
    assert not any(operation == "WRITE" and name.startswith("p.") and name != "p.sink-host"
                   for operation, _, name, _ in sink)
    assert ("READ", "GROUP", "p.sink", False) in sink
    assert {name for operation, resource, name, _ in _allowed("heat-bot")
            if operation == "READ" and resource == "TOPIC"} == {"p.heat-frames", "p.alerts"}
    assert ("READ", "GROUP", "p.bot-", True) in _allowed("heat-bot")
    every = service_acls(TopicSettings(prefix="p."))
    assert all(acl.operation is not ACLOperation.ALL for acl in every)
    assert all(acl.resource_pattern.resource_type is not ResourceType.CLUSTER for acl in every)


def test_env_of_a_secure_stack_needs_a_service(tmp_path: Path) -> None:
    state = StackState("127.0.0.1:19092", False, 19092, 19093, "postgresql://x/heat", False,
                       5432, None, "p.", kafka_security_dir=str(tmp_path))
    with pytest.raises(StackError, match="--service"):
        state.env_lines()
    lines = state.env_lines("bot")
    assert "export HEAT_KAFKA_SASL_USERNAME=heat-bot" in lines
    assert f"export HEAT_KAFKA_SSL_CAFILE={tmp_path / 'ca.pem'}" in lines
    plain = StackState("127.0.0.1:19092", False, 19092, 19093, "postgresql://x/heat", False,
                       5432, None, "p.")
    assert not any("SASL" in line for line in plain.env_lines("bot"))
