"""``heat-bench pipeline``: ``heat process`` and ``heat sink`` end to end (throughput,
latency, failover) and the engine's capacity, each against a baseline of the same run."""

from __future__ import annotations

from pathlib import Path

import typer

from benchmarks.cli.results import console, write_json
from heatmap.cli import checks
from heatmap.cli.errors import CommandFailed, bad_option
from heatmap.settings.database import DatabaseSettings
from heatmap.settings.kafka import KafkaConnection, KafkaSettings

PIPELINE_TARGETS = {"ticks_per_s": 100_000.0, "vs_baseline": 1.0, "kafka_p99_ms": 250.0,
                    "database_p99_ms": 1000.0}


def pipeline(
    quick: bool = typer.Option(False, "--quick", help="A short run (about 3 minutes): fewer "
                               "ticks, one bar close, a smaller capacity grid."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
    figures: str = typer.Option("throughput,latency,latency_large,failover,capacity", "--figures",
                                help="Which figures to measure, comma-separated."),
    profile: Path | None = typer.Option(None, "--profile", help="Profile the processor "
                                        "(py-spy) and the engine host (cProfile) into DIR."),
    logs: Path | None = typer.Option(None, "--logs", help="Keep the services' logs in DIR "
                                     "(default: a temporary directory, removed after a "
                                     "run that succeeds)."),
) -> None:
    """`heat process` and `heat sink` end to end: throughput, latency, failover; capacity.

    Runs real `heat process` and `heat sink` children on HEAT_KAFKA_BOOTSTRAP and scratch
    databases on the server of HEAT_DATABASE_URL, under topic prefixes of its own
    (deleted afterwards). Every figure comes with a baseline from the same run.
    """
    import shutil
    import tempfile

    from benchmarks import pipeline as pipeline_bench
    from benchmarks.cli.pipeline_tables import print_results
    from benchmarks.profiles import py_spy_path

    chosen = [name.strip() for name in figures.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(pipeline_bench.FIGURES))
    if unknown or not chosen:
        raise bad_option(f"figures must be among {', '.join(pipeline_bench.FIGURES)}",
                         "--figures")
    if profile is not None and py_spy_path() is None:
        raise bad_option("py-spy is not installed: pip install py-spy", "--profile")
    needs_services = set(chosen) != {"capacity"}
    bootstrap = KafkaSettings().bootstrap_servers
    database = DatabaseSettings()
    admin_url = ""
    if needs_services:
        checks.kafka_ready(KafkaConnection(bootstrap_servers=bootstrap))
        admin_url = checks.database_url(database)
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    log_dir = logs or Path(tempfile.mkdtemp(prefix="heat-bench-pipeline-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    spec_name = "quick" if quick else "full"
    with console.status("Running the pipeline benchmark") as status:
        def step(message: str) -> None:
            status.update(message)
            console.log(message)

        bench = pipeline_bench.Bench(
            bootstrap=bootstrap, admin_url=admin_url,
            writer_password=database.role_password("heat_writer"), logs=log_dir,
            profile_dir=profile, step=step)
        result = pipeline_bench.run(bench, spec_name, chosen)
    print_results(console, result, PIPELINE_TARGETS)
    write_json(json_out, "pipeline", pipeline_bench.as_dict(result))
    if result.failed:
        raise CommandFailed(f"{', '.join(result.failed)} not measured ("
                            f"{'; '.join(result.failed.values())}); service logs kept in "
                            f"{log_dir}")
    if logs is None:
        shutil.rmtree(log_dir, ignore_errors=True)
