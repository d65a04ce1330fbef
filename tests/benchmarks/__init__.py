"""Tests of the benchmark suite (that it runs; speed is its own report)."""
