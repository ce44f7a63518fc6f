"""``heat-bench``: one module per benchmark command; tables and JSON output shared in
:mod:`benchmarks.cli.results`."""
