"""The local cluster's certificates: a root that signs a server certificate for the
loopback address and localhost, the key readable by its owner only."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from heatmap.stack import tls


def test_the_server_certificate_is_signed_by_the_root_for_loopback(tmp_path: Path) -> None:
    files = tls.TlsFiles(tmp_path / "tls")
    assert tls.ensure(files, os_user=None)
    root = x509.load_pem_x509_certificate(files.root_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(root)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_key_is_private_and_kept_across_starts(tmp_path: Path) -> None:
    files = tls.TlsFiles(tmp_path / "tls")
    tls.ensure(files, os_user=None)
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    first = files.server_cert.read_bytes()
    assert not tls.ensure(files, os_user=None)
    assert files.server_cert.read_bytes() == first
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(files.server_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    server = x509.load_pem_x509_certificate(first)
    assert server.public_key() == key.public_key()
