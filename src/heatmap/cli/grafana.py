"""``heat grafana``: dashboards and alert rules as code, and provisioning a Grafana."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from heatmap.cli.errors import CommandFailed

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
