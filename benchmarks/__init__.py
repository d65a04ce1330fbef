"""The benchmark suite: ``python3 benchmarks/run.py`` (see docs/benchmarks.md)."""
