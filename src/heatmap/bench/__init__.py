"""``heat bench``: throughput benchmarks, each against a baseline measured in the same run."""
