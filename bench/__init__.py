"""Benchmarks of chatflow; see bench/README.md. Run `python -m bench.http_api`."""
