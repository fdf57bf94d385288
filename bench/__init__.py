"""Benchmarks: each is `python -m bench.NAME [--quick]` and ends with one JSON line."""
