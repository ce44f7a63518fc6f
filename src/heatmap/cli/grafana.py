"""``heat grafana``: dashboards and alert rules as code, and provisioning a Grafana."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from heatmap.cli.errors import CommandFailed
from heatmap.preflight import first_line

app = typer.Typer(help="Grafana dashboards and alert rules as code; provisioning.",
                  no_args_is_help=True)
console = Console()


@app.command()
def dashboards(
    check: bool = typer.Option(False, "--check", help="Only compare: exit 1 when a "
                               "committed file differs from the generator."),
    root: Path = typer.Option(Path("."), "--root", help="Repository root holding "
                              "dashboards/ and infra/grafana/."),
) -> None:
    """Regenerate dashboards/*.json and the alert rules file (or check them with --check)."""
    from heatmap.grafana import generate

    if check:
        stale = generate.differences(root)
        if stale:
            raise CommandFailed(f"{', '.join(map(str, stale))} differ from the generator: run "
                                "`heat grafana dashboards` and commit the result")
        console.print("Dashboards and alert rules match the generator")
        return
    changed = generate.write(root)
    for path in changed:
        console.print(f"wrote {path}")
    console.print(f"{len(changed)} file(s) changed" if changed else "Nothing changed")


@app.command()
def provision(
    url: str | None = typer.Option(None, "--url", help="Grafana's URL (default: "
                                   "HEAT_GRAFANA_URL, else http://127.0.0.1:3000)."),
    desk_org: list[str] = typer.Option([], "--desk-org", help="DESK=ROLE: also an "
                                       "organisation for the desk whose database data "
                                       "source logs in as ROLE (a desk reader), its "
                                       "password from <ROLE>_PASSWORD_FILE or "
                                       "<ROLE>_PASSWORD. Repeat per desk."),
) -> None:
    """Create or update the folder, data sources, dashboards and alert rules in Grafana.

    Authenticates with HEAT_GRAFANA_TOKEN (or _FILE), else HEAT_GRAFANA_USER and
    HEAT_GRAFANA_PASSWORD (or _FILE). Running it again changes nothing. With
    --desk-org, each desk gets its own organisation (a server admin's user and
    password are needed: a service account token reaches one organisation only).
    """
    from grafana_client.client import GrafanaException
    from niquests.exceptions import RequestException

    from heatmap.grafana.desk_orgs import DeskOrgError, parse, provision_desk_orgs
    from heatmap.grafana.provision import Change, connect
    from heatmap.grafana.provision import provision as run_provision
    from heatmap.grafana.settings import GrafanaSettings

    settings = GrafanaSettings()
    target = url or settings.url
    try:
        desk_orgs = [parse(text) for text in desk_org]
    except DeskOrgError as error:
        raise CommandFailed(str(error)) from error
    if desk_orgs and isinstance(settings.credential(), str):
        raise CommandFailed("--desk-org creates organisations: use a Grafana server admin's "
                            "HEAT_GRAFANA_USER and HEAT_GRAFANA_PASSWORD, not a service "
                            "account token (it reaches one organisation only)")
    table = Table("kind", "name", "change")
    colours = {"created": "green", "updated": "yellow", "unchanged": "dim"}

    def show(change: Change) -> None:
        table.add_row(change.kind, change.name,
                      f"[{colours[change.action]}]{change.action}[/]")

    try:
        api = connect(settings, target)
        changes = run_provision(api, settings, show)
        changes += provision_desk_orgs(
            api, lambda org_id: connect(settings, target, org_id), settings, desk_orgs, show)
    except GrafanaException as error:
        detail = first_line(str(getattr(error, "message", "") or error))
        status = getattr(error, "status_code", 0)
        hint = ("check HEAT_GRAFANA_TOKEN or HEAT_GRAFANA_USER/HEAT_GRAFANA_PASSWORD"
                if status in (401, 403) else "check --url and that Grafana is up")
        raise CommandFailed(f"Grafana at {target} failed ({status or 'no answer'}): "
                            f"{detail}; {hint}") from error
    except RequestException as error:
        raise CommandFailed(f"Grafana at {target} does not answer "
                            f"({type(error).__name__}): check --url and that Grafana is up"
                            ) from error
    console.print(table)
    changed = sum(change.action != "unchanged" for change in changes)
    console.print(f"{changed} change(s)" if changed else "Grafana is up to date")
