"""TLS for the local PostgreSQL cluster: a root certificate of its own and a server
certificate it signs, for 127.0.0.1 and ``localhost``.

Clients verify the server with ``sslmode=verify-full`` and the root certificate
(``HEAT_DATABASE_SSLROOTCERT``, which ``heat stack env`` prints). The root's private
key is not kept: nothing signs with it after the server certificate is made, and a
key that is not kept cannot leak.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from heatmap.stack.ports import LOOPBACK

# Long enough that a developer's stack never meets an expiry; it is loopback-only.
VALIDITY_DAYS = 3650
# The server presents its certificate under these names.
SERVER_NAMES = ("localhost",)


@dataclass(frozen=True)
class TlsFiles:
    """Where a cluster's certificate files are: ``directory`` holds ``root.crt`` (public),
    ``server.crt`` and ``server.key`` (mode 0600, owned by the server's user)."""

    directory: Path

    @property
    def root_cert(self) -> Path:
        return self.directory / "root.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def exist(self) -> bool:
        return all(path.exists() for path in (self.root_cert, self.server_cert,
                                              self.server_key))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "heat local stack"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def certificates(now: dt.datetime | None = None, client_auth: bool = False
                 ) -> tuple[bytes, bytes, bytes]:
    """A new root certificate, and a server certificate for 127.0.0.1 and ``localhost``
    it signs with the server's key, all PEM: ``(root_cert, server_cert, server_key)``.
    ``client_auth``: the server is also a TLS client with it (a Kafka broker's requests
    to the other brokers)."""
    now = now or dt.datetime.now(dt.UTC)
    # Backdated a little: a client whose clock is slightly behind still accepts it.
    not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=VALIDITY_DAYS)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("heat local stack root")
    root = (x509.CertificateBuilder()
            .subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    usages = [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    if client_auth:
        usages.append(x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
    alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    alt_names += [x509.DNSName(name) for name in SERVER_NAMES]
    server = (x509.CertificateBuilder()
              .subject_name(_name(SERVER_NAMES[0])).issuer_name(root_name)
              .public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(not_before).not_valid_after(not_after)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
              .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  root_key.public_key()), critical=False)
              .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return root.public_bytes(pem), server.public_bytes(pem), _pem_key(server_key)


def ensure(files: TlsFiles, os_user: str | None) -> bool:
    """Write new certificates unless all three files exist; True when written.

    The server refuses a key file that others can read, so the key is mode 0600 and,
    when the server runs as ``os_user``, owned by that user.
    """
    if files.exist():
        return False
    root_cert, server_cert, server_key = certificates()
    files.directory.mkdir(parents=True, exist_ok=True)
    # The server's user must enter it; the key inside is its owner's only.
    os.chmod(files.directory, 0o755)  # noqa: S103
    owner = pwd.getpwnam(os_user) if os_user else None
    for path, content, mode in ((files.server_key, server_key, 0o600),
                                (files.server_cert, server_cert, 0o644),
                                (files.root_cert, root_cert, 0o644)):
        temporary = path.with_suffix(".tmp")
        # Created with its final mode: the key is never readable by others, not even
        # for a moment.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, mode)
        if owner is not None:
            os.chown(temporary, owner.pw_uid, owner.pw_gid)
        temporary.replace(path)
    return True
