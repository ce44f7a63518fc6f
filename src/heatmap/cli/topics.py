"""``heat topics``: the product's topics on any Kafka the connection settings name."""

from __future__ import annotations

import typer

from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed
from heatmap.settings.kafka import KafkaSettings
from heatmap.stack import kafka
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
