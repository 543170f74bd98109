"""Latency and throughput benchmarks: ``python -m bench <scenario> [--smoke]`` (bench/README.md)."""
