"""``heat-bench``: throughput benchmarks of portfolio heat, each against a baseline
measured in the same run (not part of the product's package; see README.md here)."""
