"""``python -m benchmarks``: the same as ``heat-bench``."""

from benchmarks.cli.main import main

main()
