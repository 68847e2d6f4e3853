"""Benchmarks for rmqproxy: see benchmarks/README.md."""
