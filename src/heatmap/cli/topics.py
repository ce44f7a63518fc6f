"""``heat topics``: the product's topics on any Kafka the connection settings name."""

from __future__ import annotations

import typer

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed, UsageFailed
from heatmap.settings.kafka import KafkaSettings, ServiceUserPasswords
from heatmap.stack import kafka, kafka_security
from heatmap.topics import topic_specs

app = typer.Typer(help="The product's Kafka topics (HEAT_KAFKA_*, HEAT_TOPIC_*).",
                  no_args_is_help=True)


@app.command()
def ensure(check: bool = typer.Option(
        False, "--check", help="Create nothing: report missing topics and exit 1.")) -> None:
    """Create the topics that are missing and check the others; one line per topic.

    Needs nothing but the Kafka connection and topic settings (no state directory, no
    home directory), so an init job can run it before the services start. Exit 1 when
    Kafka does not answer, a topic could not be created, or one exists with fewer
    partitions or another replication factor than configured.
    """
    settings = KafkaSettings()
    connection = settings.connection("heat-topics")
    checks.kafka_ready(connection)
    outcomes = kafka.ensure_topics(connection, topic_specs(settings.topics), create=not check)
    for outcome in outcomes:
        print(outcome.line(), flush=True)
    wrong = [outcome for outcome in outcomes if not outcome.ok]
    if wrong:
        kinds = sorted({outcome.outcome for outcome in wrong})
        raise CommandFailed(f"{len(wrong)} of {len(outcomes)} topics {'/'.join(kinds)}: "
                            "see the lines above")


@app.command()
def access() -> None:
    """Give each service its own Kafka user and the ACLs for its own work.

    A SCRAM-SHA-512 user for each ``HEAT_KAFKA_<SERVICE>_PASSWORD`` (or ``_FILE``) given,
    made or its password replaced, and the ACLs that let each do only its own work; one
    line per user.

    Runs as a super user of a broker with an authorizer (the set-up job's connection);
    an ACL that exists is kept. Exit 1 when Kafka refuses, 2 when no password is given.
    """
    settings = KafkaSettings()
    passwords = ServiceUserPasswords().given()
    if not passwords:
        raise UsageFailed("no service password given: set HEAT_KAFKA_INGEST_PASSWORD, "
                          "_PROCESS_, _SINK_ and _BOT_ (or their _FILE)")
    connection = settings.connection("heat-access")
    checks.kafka_ready(connection)
    users = {kafka_security.SERVICE_USERS[service]: password
             for service, password in passwords.items()}
    kafka.upsert_scram_users(connection, users, kafka_security.MECHANISM)
    kafka.create_acls(connection, kafka_security.service_acls(settings.topics))
    for service, user in kafka_security.SERVICE_USERS.items():
        state = (f"{kafka_security.MECHANISM} user, ACLs applied" if service in passwords
                 else "no password given: no user")
        print(f"{user:<14} {service:<8} {state}", flush=True)
