"""The compose deployment's certificates (``heat tls ensure``, its one-shot ``tls``
service): one CA, and a certificate it signs for each server that holds a key, each
written into that server's own volume so no container holds another's key.

Layout (every directory also holds the CA as ``ca.pem``, mode 0644):

- the CA directory: ``ca.pem`` only, for the clients (services, Grafana, the host);
- the Kafka directory: ``broker.pem``, the brokers' unencrypted PKCS#8 key followed by
  their certificate (Kafka's PEM key store), mode 0600, owned by the brokers' user;
- the database directory: ``server.crt`` (0644) and ``server.key`` (0600, owned by
  the database's user: PostgreSQL refuses a key others can read).

The CA's key is never written: nothing signs after the first start, and a key that is
not on disk cannot leak. A name added later needs new certificates for all
(remove the volumes; the next start makes them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from heatmap.stack import tls

CA_FILE = "ca.pem"
BROKER_FILE = "broker.pem"
DATABASE_CERT_FILE = "server.crt"
DATABASE_KEY_FILE = "server.key"
_PUBLIC, _PRIVATE = 0o644, 0o600


@dataclass(frozen=True)
class KeyHolder:
    """A server's directory, the names its certificate is valid for (besides
    127.0.0.1), and the user (uid, gid) its key must belong to."""

    directory: Path
    dns_names: tuple[str, ...]
    owner: tuple[int, int] | None = None


@dataclass(frozen=True)
class DeploymentTls:
    """Where the deployment's certificates go."""

    ca_directory: Path
    kafka: KeyHolder
    database: KeyHolder

    def _files(self) -> list[Path]:
        return [self.ca_directory / CA_FILE,
                self.kafka.directory / CA_FILE, self.kafka.directory / BROKER_FILE,
                self.database.directory / CA_FILE,
                self.database.directory / DATABASE_CERT_FILE,
                self.database.directory / DATABASE_KEY_FILE]

    def complete(self) -> bool:
        """Every file there, and every directory holding the same CA."""
        if not all(path.exists() for path in self._files()):
            return False
        ca = (self.ca_directory / CA_FILE).read_bytes()
        return all((holder.directory / CA_FILE).read_bytes() == ca
                   for holder in (self.kafka, self.database))

    def ensure(self) -> bool:
        """Make every certificate anew unless the set is complete (a partial set cannot
        be mended: the CA's key is gone); True when made. Either way each key gets its
        holder's owner and mode 0600, so a changed owner is applied on the next start."""
        made = not self.complete()
        if made:
            self._make()
        for path, holder in ((self.kafka.directory / BROKER_FILE, self.kafka),
                             (self.database.directory / DATABASE_KEY_FILE, self.database)):
            path.chmod(_PRIVATE)
            if holder.owner is not None:
                os.chown(path, *holder.owner)
        return made

    def _make(self) -> None:
        root, root_key = tls.certificate_authority()
        ca = root.public_bytes(serialization.Encoding.PEM)
        # The brokers are TLS clients of each other too (inter-broker requests).
        broker_cert, broker_key = tls.server_certificate(root, root_key, self.kafka.dns_names,
                                                         client_auth=True)
        database_cert, database_key = tls.server_certificate(root, root_key,
                                                             self.database.dns_names)
        for directory in (self.ca_directory, self.kafka.directory, self.database.directory):
            directory.mkdir(parents=True, exist_ok=True)
            # Entered by the server's user and, for the CA, by every client's.
            directory.chmod(0o755)
        tls.write_owned(self.kafka.directory / BROKER_FILE, broker_key + broker_cert, _PRIVATE,
                        self.kafka.owner)
        tls.write_owned(self.database.directory / DATABASE_KEY_FILE, database_key, _PRIVATE,
                        self.database.owner)
        tls.write_owned(self.database.directory / DATABASE_CERT_FILE, database_cert, _PUBLIC)
        # The CA last: its presence everywhere is what marks the set complete.
        for directory in (self.kafka.directory, self.database.directory, self.ca_directory):
            tls.write_owned(directory / CA_FILE, ca, _PUBLIC)


def parse_owner(text: str) -> tuple[int, int]:
    """``UID`` or ``UID:GID`` (numbers: the user may not exist where the files are made);
    the group defaults to the user's number."""
    uid, _, gid = text.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise ValueError(f"{text!r} is not UID or UID:GID (numbers)")
    return int(uid), int(gid or uid)
