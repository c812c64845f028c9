"""openflr benchmarks: ``python -m bench`` (see docs/BENCHMARKS.md)."""
