"""``heat tls``: the compose deployment's certificates (its one-shot ``tls`` service)."""

from __future__ import annotations

from pathlib import Path

import typer

from heatmap.cli.errors import bad_option
from heatmap.stack.deployment_tls import DeploymentTls, KeyHolder, parse_owner

app = typer.Typer(help="TLS certificates of a deployment (the compose stack's tls service).",
                  no_args_is_help=True)


def _owner(option: str, text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        return parse_owner(text)
    except ValueError as error:
        raise bad_option(str(error), option) from error


@app.command()
def ensure(
    ca_dir: Path = typer.Option(..., "--ca-dir", help="Where the clients' copy of the CA "
                                "goes (ca.pem)."),
    kafka_dir: Path = typer.Option(..., "--kafka-dir", help="The brokers' directory "
                                   "(broker.pem: key and certificate; ca.pem)."),
    kafka_names: list[str] = typer.Option(..., "--kafka-name", help="A name the brokers "
                                          "are reached by (repeat; 127.0.0.1 is always "
                                          "included)."),
    kafka_owner: str | None = typer.Option(None, "--kafka-owner", help="UID[:GID] of the "
                                           "brokers' user (the key's owner)."),
    database_dir: Path = typer.Option(..., "--database-dir", help="The database's "
                                      "directory (server.crt, server.key, ca.pem)."),
    database_names: list[str] = typer.Option(..., "--database-name", help="A name the "
                                             "database is reached by (repeat)."),
    database_owner: str | None = typer.Option(None, "--database-owner", help="UID[:GID] of "
                                              "the database server's user (the key's "
                                              "owner)."),
) -> None:
    """Make the CA and the brokers' and database's certificates unless they exist.

    Later starts keep them and only re-apply each key's owner and mode. One line says
    which."""
    deployment = DeploymentTls(
        ca_directory=ca_dir,
        kafka=KeyHolder(kafka_dir, tuple(kafka_names), _owner("--kafka-owner", kafka_owner)),
        database=KeyHolder(database_dir, tuple(database_names),
                           _owner("--database-owner", database_owner)))
    made = deployment.ensure()
    print(f"tls: {'made new' if made else 'kept the'} certificates "
          f"(Kafka: {', '.join(kafka_names)}; database: {', '.join(database_names)})",
          flush=True)
