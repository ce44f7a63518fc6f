"""``heat``: the single entry point of every service and tool of portfolio heat."""

from __future__ import annotations

from heatmap.cli import (
    alerts,
    compare,
    db,
    demo,
    grafana,
    ingest,
    process,
    replay,
    sink,
    snapshot,
    stack,
    tls,
    token,
    topics,
    whatif,
)
from heatmap.cli.errors import HeatTyper

# Expected failures end in one line on stderr and an exit code (see heatmap.cli.errors).
app = HeatTyper(
    help="Portfolio heat: where a trading desk's risk is concentrated, live and historically.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(topics.app, name="topics")
app.add_typer(ingest.app, name="ingest")
app.add_typer(db.app, name="db")
app.add_typer(grafana.app, name="grafana")
app.add_typer(token.app, name="token")
app.add_typer(tls.app, name="tls")
app.add_typer(alerts.app, name="alerts")
app.command("process")(process.process)
app.command("sink")(sink.sink)
app.command("snapshot")(snapshot.snapshot)
app.command("demo")(demo.demo)
app.command("whatif")(whatif.whatif)
app.command(
    "replay",
    # Several price paths may follow one --prices (shell globs): they arrive as extra args.
    context_settings={"allow_extra_args": True},
)(replay.replay)
app.command("compare", context_settings={"allow_extra_args": True})(compare.compare)


if __name__ == "__main__":
    app()
