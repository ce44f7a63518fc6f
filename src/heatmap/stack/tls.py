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


def _not_before(now: dt.datetime) -> dt.datetime:
    # Backdated a little: a client whose clock is slightly behind still accepts it.
    return now - dt.timedelta(hours=1)


def _not_after(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(days=VALIDITY_DAYS)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def certificate_authority(now: dt.datetime | None = None
                          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new self-signed root certificate (may sign server certificates only) and its
    key."""
    now = now or dt.datetime.now(dt.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("heat local stack root")
    root = (x509.CertificateBuilder()
            .subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_not_before(now)).not_valid_after(_not_after(now))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    return root, root_key


def server_certificate(root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey,
                       dns_names: tuple[str, ...] = SERVER_NAMES, client_auth: bool = False,
                       now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A server certificate ``root`` signs for 127.0.0.1 and ``dns_names`` (the first
    one is its common name), and its new key, both PEM: ``(certificate, key)``.
    ``client_auth``: the server is also a TLS client with it (a Kafka broker's requests
    to the other brokers)."""
    now = now or dt.datetime.now(dt.UTC)
    server_key = ec.generate_private_key(ec.SECP256R1())
    usages = [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    if client_auth:
        usages.append(x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
    alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    alt_names += [x509.DNSName(name) for name in dns_names]
    server = (x509.CertificateBuilder()
              .subject_name(_name(dns_names[0])).issuer_name(root.subject)
              .public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(_not_before(now)).not_valid_after(_not_after(now))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
              .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  root_key.public_key()), critical=False)
              .sign(root_key, hashes.SHA256()))
    return server.public_bytes(serialization.Encoding.PEM), _pem_key(server_key)


def certificates(now: dt.datetime | None = None, client_auth: bool = False
                 ) -> tuple[bytes, bytes, bytes]:
    """A new root certificate, and a server certificate for 127.0.0.1 and ``localhost``
    it signs with the server's key, all PEM: ``(root_cert, server_cert, server_key)``.
    ``client_auth``: as :func:`server_certificate`."""
    root, root_key = certificate_authority(now)
    server, server_key = server_certificate(root, root_key, client_auth=client_auth,
                                            now=now)
    return root.public_bytes(serialization.Encoding.PEM), server, server_key


def write_owned(path: Path, content: bytes, mode: int,
                owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` by ``content`` with ``mode`` (and ``owner``: uid, gid) from the
    first byte on: a key is never readable by others, not even for a moment."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.chmod(temporary, mode)  # the umask may have taken bits away
    if owner is not None:
        os.chown(temporary, *owner)
    temporary.replace(path)


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
    account = pwd.getpwnam(os_user) if os_user else None
    owner = None if account is None else (account.pw_uid, account.pw_gid)
    for path, content, mode in ((files.server_key, server_key, 0o600),
                                (files.server_cert, server_cert, 0o644),
                                (files.root_cert, root_cert, 0o644)):
        write_owned(path, content, mode, owner)
    return True
