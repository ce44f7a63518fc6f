"""The compose deployment's certificates: one CA, each key private to its server."""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from heatmap.stack.deployment_tls import DeploymentTls, KeyHolder, parse_owner


def deployment(root: Path) -> DeploymentTls:
    return DeploymentTls(
        ca_directory=root / "ca",
        kafka=KeyHolder(root / "kafka", ("kafka", "kafka-2", "localhost")),
        database=KeyHolder(root / "database", ("timescaledb",)))


def names(pem: bytes) -> list[str]:
    certificate = x509.load_pem_x509_certificate(pem)
    alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in alt]


def test_each_server_gets_its_own_key_signed_by_one_ca(tmp_path: Path) -> None:
    tls = deployment(tmp_path)
    assert tls.ensure()
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == ["ca.pem"]
    assert sorted(p.name for p in (tmp_path / "kafka").iterdir()) == ["broker.pem", "ca.pem"]
    assert sorted(p.name for p in (tmp_path / "database").iterdir()) == [
        "ca.pem", "server.crt", "server.key"]
    for key in (tmp_path / "kafka" / "broker.pem", tmp_path / "database" / "server.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for public in (tmp_path / "ca" / "ca.pem", tmp_path / "database" / "server.crt"):
        assert stat.S_IMODE(public.stat().st_mode) == 0o644
    ca = tmp_path / "ca" / "ca.pem"
    # The broker's PEM key store: key first, then its certificate; both verify with the CA.
    broker = (tmp_path / "kafka" / "broker.pem").read_bytes()
    assert broker.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert names(broker[broker.index(b"-----BEGIN CERTIFICATE-----"):]) == [
        "127.0.0.1", "kafka", "kafka-2", "localhost"]
    assert names((tmp_path / "database" / "server.crt").read_bytes()) == [
        "127.0.0.1", "timescaledb"]
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(tmp_path / "kafka" / "broker.pem"))
    context.load_cert_chain(str(tmp_path / "database" / "server.crt"),
                            str(tmp_path / "database" / "server.key"))


def test_a_complete_set_is_kept_and_a_partial_one_made_anew(tmp_path: Path) -> None:
    tls = deployment(tmp_path)
    tls.ensure()
    ca = (tmp_path / "ca" / "ca.pem").read_bytes()
    assert not tls.ensure()
    assert (tmp_path / "ca" / "ca.pem").read_bytes() == ca
    (tmp_path / "database" / "server.key").unlink()
    assert tls.ensure()
    renewed = (tmp_path / "ca" / "ca.pem").read_bytes()
    assert renewed != ca
    assert all((tmp_path / name / "ca.pem").read_bytes() == renewed
               for name in ("kafka", "database"))


def test_a_key_made_too_open_is_closed_on_the_next_start(tmp_path: Path) -> None:
    tls = deployment(tmp_path)
    tls.ensure()
    key = tmp_path / "kafka" / "broker.pem"
    key.chmod(0o644)
    assert not tls.ensure()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_each_key_belongs_to_its_servers_user(tmp_path: Path) -> None:
    tls = DeploymentTls(ca_directory=tmp_path / "ca",
                        kafka=KeyHolder(tmp_path / "kafka", ("kafka",), (1000, 1000)),
                        database=KeyHolder(tmp_path / "database", ("db",), (70, 70)))
    tls.ensure()
    assert (tmp_path / "kafka" / "broker.pem").stat().st_uid == 1000
    assert (tmp_path / "database" / "server.key").stat().st_uid == 70
    assert (tmp_path / "database" / "server.crt").stat().st_uid == 0


def test_owners_are_numbers() -> None:
    assert parse_owner("70") == (70, 70)
    assert parse_owner("1000:0") == (1000, 0)
    for wrong in ("postgres", "70:x", ""):
        with pytest.raises(ValueError, match="UID or UID:GID"):
            parse_owner(wrong)
