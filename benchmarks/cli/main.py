"""``heat-bench``: the benchmarks' command line, beside (not inside) the product's ``heat``.

Failures end in one line on stderr with an exit code, as ``heat`` commands do
(:class:`heatmap.cli.errors.HeatTyper`).
"""

from __future__ import annotations

from benchmarks.cli import engine, ingest, pipeline, storage, whatif
from heatmap.cli.errors import HeatTyper

PROG_NAME = "heat-bench"

app = HeatTyper(
    help="Benchmarks; each reports ratios against a baseline from the same run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("engine")(engine.engine)
app.command("storage")(storage.storage)
app.command("ingest")(ingest.ingest)
app.command("pipeline")(pipeline.pipeline)
app.command("whatif")(whatif.whatif)


def main() -> None:
    """The ``heat-bench`` console script (and ``python -m benchmarks``)."""
    app(prog_name=PROG_NAME)


if __name__ == "__main__":
    main()
