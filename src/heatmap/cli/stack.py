"""``heat stack``: the local Apache Kafka (KRaft) broker and PostgreSQL cluster."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from heatmap.cli.errors import CommandFailed, UsageFailed, bad_option
from heatmap.stack.kafka_security import CLIENT_USERS
from heatmap.stack.local import LocalStack

app = typer.Typer(help="Run a local Apache Kafka (KRaft) broker and PostgreSQL 15 cluster.",
                  no_args_is_help=True)
# Progress goes to stdout; stderr holds only the one line of a failure.
console = Console()

NO_STACK = "no stack recorded in HEAT_STATE_DIR: start one with `heat stack up`"


@app.command()
def up(secure: bool = typer.Option(
        False, "--secure", help="Kafka takes clients on SASL_SSL only (SCRAM-SHA-512), "
        "each service as its own user under ACLs; see `heat stack env --service`.")) -> None:
    """Start Kafka and PostgreSQL (idempotent), create the topics and the database."""
    stack = LocalStack()
    started = time.monotonic()
    with console.status("Starting the stack", spinner="dots") as status:
        def step(message: str) -> None:
            status.update(message)
            console.log(message)

        state = stack.up(step, secure=secure)
    console.print(f"[green]Stack up[/green] in {time.monotonic() - started:.1f} s: "
                  f"Kafka {state.kafka_bootstrap}"
                  f"{' (SASL_SSL, SCRAM-SHA-512, ACLs)' if state.kafka_secure else ''}, "
                  f"PostgreSQL on port {state.postgres_port or 'external'}")
    if state.kafka_secure:
        console.print('Point a service at it with:  eval "$(heat stack env --service '
                      f'{"|".join(CLIENT_USERS)})"')
    else:
        console.print('Point clients at it with:  eval "$(heat stack env)"')


@app.command()
def down(purge: bool = typer.Option(False, "--purge", help="Also delete topics' and "
                                    "tables' data.")) -> None:
    """Stop Kafka and PostgreSQL (SIGTERM, then kill after a timeout)."""
    LocalStack().down(purge=purge, step=console.log)
    console.print("[green]Stack down[/green]")


@app.command()
def status() -> None:
    """Show endpoints, pids and health of the stack's services."""
    components = LocalStack().status()
    if not components:
        raise CommandFailed(NO_STACK)
    table = Table("service", "endpoint", "pid", "health", "detail")
    for component in components:
        health = "[green]up[/green]" if component.healthy else "[red]down[/red]"
        table.add_row(component.name, component.endpoint, str(component.pid or "-"), health,
                      component.detail)
    console.print(table)
    down = [component.name for component in components if not component.healthy]
    if down:
        raise CommandFailed(f"{' and '.join(down)} not healthy: start the stack with "
                            "`heat stack up` (`heat stack down` first if it hangs)")


@app.command()
def env(service: str | None = typer.Option(
        None, "--service", help=f"The client whose Kafka user to use on a secure stack: "
        f"{', '.join(CLIENT_USERS)}.")) -> None:
    """Print export lines for the stack: eval "$(heat stack env [--service NAME])"."""
    state = LocalStack().load_state()
    if state is None:
        raise CommandFailed(NO_STACK)
    if state.kafka_secure and service is None:
        raise UsageFailed("the stack's Kafka is secure: name the client, --service "
                          f"{'|'.join(CLIENT_USERS)}")
    if service is not None and service not in CLIENT_USERS:
        raise bad_option(f"unknown service {service!r}: one of {', '.join(CLIENT_USERS)}",
                         "--service")
    print("\n".join(state.env_lines(service)))
